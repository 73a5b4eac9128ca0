//! The daemons' `[alerts]` table (keepalived's `notification_email` / `smtp_server` /
//! `smtp_connect_timeout`, HAProxy's `mailers`), checked with file:line, and turned into
//! [`ip_manager::alert::Alerts`], whose delivery failures are logged:
//!
//! ```toml
//! [alerts]
//! mail = { server = "127.0.0.1:25", from = "vrrpd@lb1.example", to = ["ops@example.com"] }
//! # mail.timeout = "30s", mail.security = "none" | "starttls" | "tls",
//! # mail.user / mail.password (SMTP AUTH; with starttls or tls),
//! # mail.ca = "/etc/ha/relay-ca.pem" (a CA trusted besides the web's roots)
//! webhook = { url = "http://127.0.0.1:9093/hook", timeout = "5s" }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ip_manager::alert::{AlertFailure, Alerts, Mail, MailSecurity};
use serde::Deserialize;
use toml::Spanned;
use tracing::warn;

use crate::diagnostics::{Report, duration_of};

/// `[alerts]` as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsToml {
    mail: Option<Spanned<MailToml>>,
    webhook: Option<Spanned<WebhookToml>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MailToml {
    server: String,
    from: String,
    to: Vec<String>,
    timeout: Option<Spanned<String>>,
    security: Option<String>,
    user: Option<String>,
    password: Option<String>,
    ca: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WebhookToml {
    url: String,
    timeout: Option<Spanned<String>>,
}

/// A checked `[alerts]`: every value is known to make a working [`Alerts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    mail: Option<MailConfig>,
    webhook: Option<(String, Duration)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MailConfig {
    server: String,
    from: String,
    to: Vec<String>,
    timeout: Duration,
    security: MailSecurity,
    credentials: Option<(String, String)>,
    /// The CA certificate (PEM) read from `ca`.
    ca: Option<Vec<u8>>,
}

impl MailConfig {
    fn mail(&self) -> Result<Mail, ip_manager::alert::AlertError> {
        let mut mail = Mail::new(&self.server, &self.from, &self.to)?
            .timeout(self.timeout)
            .security(self.security);
        if let Some((user, password)) = &self.credentials {
            mail = mail.credentials(user, password);
        }
        if let Some(pem) = &self.ca {
            mail = mail.root_certificate(pem)?;
        }
        Ok(mail)
    }
}

/// Checks `[alerts]`, reporting each mistake at its place.
pub(crate) fn check(r: &mut Report<'_>, raw: &AlertsToml) -> Option<AlertsConfig> {
    let mut ok = true;
    let mail = raw.mail.as_ref().and_then(|m| {
        let t = m.get_ref();
        let security = match t.security.as_deref() {
            None | Some("none") => MailSecurity::None,
            Some("starttls") => MailSecurity::StartTls,
            Some("tls") => MailSecurity::Tls,
            Some(other) => {
                r.at(
                    m.span(),
                    "alerts.mail.security".into(),
                    format!("{other:?}: use \"none\", \"starttls\" or \"tls\""),
                );
                ok = false;
                MailSecurity::None
            }
        };
        let credentials = match (&t.user, &t.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => {
                r.at(
                    m.span(),
                    "alerts.mail.user".into(),
                    "SMTP AUTH needs both `user` and `password`".into(),
                );
                ok = false;
                None
            }
        };
        let ca = t.ca.as_ref().and_then(|path| match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                r.at(
                    m.span(),
                    "alerts.mail.ca".into(),
                    format!("{path}: {e} (a PEM file with the relay's CA certificate)"),
                );
                ok = false;
                None
            }
        });
        let config = MailConfig {
            server: t.server.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            timeout: duration_of(
                r,
                &t.timeout,
                "alerts.mail.timeout".into(),
                Duration::from_secs(30),
            ),
            security,
            credentials,
            ca,
        };
        match config.mail() {
            Ok(_) => Some(config),
            Err(e) => {
                r.at(m.span(), "alerts.mail".into(), e.to_string());
                ok = false;
                None
            }
        }
    });
    let webhook = raw.webhook.as_ref().and_then(|w| {
        let t = w.get_ref();
        let timeout = duration_of(
            r,
            &t.timeout,
            "alerts.webhook.timeout".into(),
            Duration::from_secs(5),
        );
        match t.url.parse::<ip_manager::alert::Url>() {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some((t.url.clone(), timeout)),
            _ => {
                r.at(
                    w.span(),
                    "alerts.webhook.url".into(),
                    format!("{:?} is not an http:// or https:// URL", t.url),
                );
                ok = false;
                None
            }
        }
    });
    ok.then_some(AlertsConfig { mail, webhook })
}

impl AlertsConfig {
    /// Starts the alerts of daemon `source` (needs a tokio runtime); their losses are logged.
    pub fn start(&self, source: &str) -> Arc<Alerts> {
        let (failures, mut failed) = tokio::sync::mpsc::channel::<AlertFailure>(64);
        tokio::spawn(async move {
            while let Some(f) = failed.recv().await {
                warn!(destination = %f.destination, subject = %f.subject, "alert lost: {}", f.error);
            }
        });
        let mut builder = Alerts::builder(source).failures(failures);
        // Both were built once when the file was checked.
        if let Some(Ok(mail)) = self.mail.as_ref().map(MailConfig::mail) {
            builder = builder.mail(mail);
        }
        if let Some((url, timeout)) = &self.webhook
            && let Ok(url) = url.parse()
        {
            builder = builder.sink(ip_manager::alert::Webhook::new(url).timeout(*timeout));
        }
        Arc::new(builder.start())
    }
}

/// Delivers what is queued (at most `within`).
pub async fn flush(alerts: Option<Arc<Alerts>>, within: Duration) {
    if let Some(alerts) = alerts {
        alerts.flush(within).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{assert_mentions, parse_toml, refused};

    #[derive(Deserialize)]
    struct File {
        alerts: AlertsToml,
    }

    fn parse(file: &str, text: &str) -> Result<AlertsConfig, Vec<crate::diagnostics::ConfigError>> {
        let (mut r, raw): (_, File) = parse_toml(file, text)?;
        let c = check(&mut r, &raw.alerts);
        if r.errors.is_empty() {
            Ok(c.expect("checked"))
        } else {
            Err(r.errors)
        }
    }

    #[test]
    fn mail_and_webhook_are_read_with_their_defaults() {
        let c = parse(
            "v.toml",
            "[alerts]\nmail = { server = \"127.0.0.1\", from = \"vrrpd@lb1\", to = [\"ops@example.com\"], security = \"starttls\", user = \"u\", password = \"p\" }\nwebhook = { url = \"http://127.0.0.1:9093/hook\" }\n",
        )
        .expect("valid");
        let mail = c.mail.expect("mail");
        assert_eq!(mail.timeout, Duration::from_secs(30));
        assert_eq!(mail.security, MailSecurity::StartTls);
        assert_eq!(
            c.webhook,
            Some(("http://127.0.0.1:9093/hook".into(), Duration::from_secs(5)))
        );
    }

    #[test]
    fn each_mistake_is_named_with_its_line_and_the_fix() {
        let errors = refused(
            parse,
            "v.toml",
            "[alerts]\nmail = { server = \"smtp:x\", from = \"vrrpd\", to = [] , security = \"ssl\", user = \"u\" }\nwebhook = { url = \"ftp://x\", timeout = \"soon\" }\n",
        );
        assert_mentions(
            &errors,
            "v.toml:2:8: alerts.mail.security: \"ssl\": use \"none\", \"starttls\" or \"tls\"",
        );
        assert_mentions(
            &errors,
            "alerts.mail.user: SMTP AUTH needs both `user` and `password`",
        );
        assert_mentions(
            &errors,
            "alerts.mail: SMTP server \"smtp:x\": write it as host, host:port or [IPv6]:port",
        );
        assert_mentions(
            &errors,
            "v.toml:3:11: alerts.webhook.url: \"ftp://x\" is not an http:// or https:// URL",
        );
        assert_mentions(&errors, "alerts.webhook.timeout");
    }
}
