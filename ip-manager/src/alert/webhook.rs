//! [`Webhook`]: alerts as an HTTP POST of a JSON object.

use std::time::Duration;

use async_trait::async_trait;

use super::{Alert, AlertError, Sink, rfc3339};

/// A webhook's address (`http://` or `https://`).
pub type Url = reqwest::Url;

/// POSTs each alert as `{"source", "host", "subject", "time", "fields": {...}}`
/// (`Content-Type: application/json`); any 2xx answer is a delivery.
#[derive(Clone, Debug)]
#[must_use = "give it to `AlertsBuilder::sink`"]
pub struct Webhook {
    url: Url,
    client: reqwest::Client,
    timeout: Duration,
}

impl Webhook {
    /// POSTs to `url`, 5 s timeout.
    pub fn new(url: Url) -> Webhook {
        Webhook {
            url,
            client: reqwest::Client::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Bounds one delivery.
    pub fn timeout(mut self, timeout: Duration) -> Webhook {
        self.timeout = timeout;
        self
    }
}

/// The JSON object posted for `alert`.
pub(super) fn json(source: &str, host: &str, alert: &Alert) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = alert
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({
        "source": source,
        "host": host,
        "subject": alert.subject,
        "time": rfc3339(alert.at),
        "fields": fields,
    })
}

#[async_trait]
impl Sink for Webhook {
    fn describe(&self) -> String {
        format!("webhook {}", self.url)
    }

    async fn deliver(&self, source: &str, host: &str, alert: &Alert) -> Result<(), AlertError> {
        let failed = |detail: String| AlertError::Delivery {
            destination: self.describe(),
            detail,
        };
        let answer = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .json(&json(source, host, alert))
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(failed(format!("answered {}", answer.status())))
        }
    }
}
