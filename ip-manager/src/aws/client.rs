//! A small client for AWS Query APIs (EC2, IAM): a form POST signed with the official SigV4
//! signer, an XML answer, typed errors, and retries with backoff and jitter.

use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::credentials::Credentials;
use super::xml;
use crate::Error;

/// The EC2 API version this client speaks.
pub const EC2_API_VERSION: &str = "2016-11-15";

/// How long one call may keep retrying, in total.
const RETRY_BUDGET: Duration = Duration::from_secs(20);

/// Signs and sends Query API calls to one service endpoint.
#[derive(Clone, Debug)]
pub struct QueryClient {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    service: &'static str,
    version: &'static str,
    credentials: Credentials,
}

impl QueryClient {
    /// A client for EC2 in `region`. The endpoint is `AWS_ENDPOINT_URL_EC2`, then
    /// `AWS_ENDPOINT_URL`, then `https://ec2.{region}.amazonaws.com`.
    pub fn ec2(region: &str, credentials: Credentials) -> Result<QueryClient, Error> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_EC2")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|_| format!("https://ec2.{region}.amazonaws.com"));
        QueryClient::new(&endpoint, region, "ec2", EC2_API_VERSION, credentials)
    }

    /// A client for `service` (signing name) at `endpoint`, speaking API `version`.
    pub fn new(
        endpoint: &str,
        region: &str,
        service: &'static str,
        version: &'static str,
        credentials: Credentials,
    ) -> Result<QueryClient, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Aws {
                action: "creating the HTTP client".into(),
                code: "Client".into(),
                message: e.to_string(),
            })?;
        Ok(QueryClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned() + "/",
            region: region.to_owned(),
            service,
            version,
            credentials,
        })
    }

    /// Calls `action` with `params` and returns the XML answer. Throttling and 5xx answers are
    /// retried with exponential backoff and jitter for at most 20 s in total.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.call_once(action, params).await {
                Err(Error::Aws { code, .. })
                    if retryable(&code) && started.elapsed() + delay < RETRY_BUDGET =>
                {
                    tokio::time::sleep(delay + jitter(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, action: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        let mut form = vec![("Action", action), ("Version", self.version)];
        form.extend_from_slice(params);
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signing_failed = |e: String| Error::Aws {
            action: action.to_owned(),
            code: "Signing".into(),
            message: e,
        };
        let identity: Identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            self.credentials.session_token.clone(),
            None,
            "ip-manager",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing_failed(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| signing_failed(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| signing_failed(e.to_string()))?
            .into_parts();
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", content_type);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| Error::Aws {
            action: action.to_owned(),
            code: if e.is_timeout() {
                "Timeout".into()
            } else {
                "Connection".into()
            },
            message: format!("{} unreachable: {e}", self.endpoint),
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(text);
        }
        let code = xml::text(&text, "Code").unwrap_or(if status.is_server_error() {
            "ServerError"
        } else {
            "Unknown"
        });
        let message = xml::text(&text, "Message").unwrap_or(status.as_str());
        Err(Error::Aws {
            action: action.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
        })
    }
}

fn retryable(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ServerError"
            | "InternalError"
            | "ServiceUnavailable"
            | "Unavailable"
            | "Timeout"
            | "Connection"
    )
}

/// Up to half of `d`, from the clock's nanoseconds: spreads retries without an RNG crate.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// RFC 3986 unreserved characters stay, everything else is %-encoded (what SigV4 expects).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding_is_rfc3986() {
        assert_eq!(super::encode("a b/c=d&e~"), "a%20b%2Fc%3Dd%26e~");
        assert!(super::retryable("RequestLimitExceeded"));
        assert!(!super::retryable("InvalidAllocationID.NotFound"));
    }
}
