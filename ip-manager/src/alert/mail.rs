//! [`Mail`]: alerts as mails over SMTP (lettre), keepalived's `notification_email`.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Alert, AlertError, Sink, rfc3339};

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailSecurity {
    /// Plain SMTP (a local relay; keepalived's only way).
    #[default]
    None,
    /// STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// A mail destination: the SMTP server, the sender, the recipients.
#[derive(Clone, Debug)]
#[must_use = "give it to `AlertsBuilder::mail`"]
pub struct Mail {
    host: String,
    port: u16,
    from: Mailbox,
    to: Vec<Mailbox>,
    security: MailSecurity,
    credentials: Option<(String, String)>,
    timeout: Duration,
    /// A CA (PEM) trusted besides the web's roots (a company's own mail relay).
    root: Option<Vec<u8>>,
}

impl Mail {
    /// Mails from `from` to every address of `to` through the SMTP server `server`
    /// (`host` or `host:port`, port 25 by default), plain SMTP, 30 s timeout (keepalived's
    /// `smtp_connect_timeout` default).
    pub fn new<T: AsRef<str>>(
        server: &str,
        from: &str,
        to: impl IntoIterator<Item = T>,
    ) -> Result<Mail, AlertError> {
        let (host, port) = split_server(server)?;
        let parse = |what: &str, a: &str| {
            a.parse::<Mailbox>().map_err(|e| {
                AlertError::Config(format!(
                    "{what} {a:?} is not a mail address ({e}): write it as user@domain"
                ))
            })
        };
        let to = to
            .into_iter()
            .map(|a| parse("recipient", a.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(AlertError::Config(
                "no recipient: give at least one address to mail alerts to".into(),
            ));
        }
        Ok(Mail {
            host,
            port,
            from: parse("sender", from)?,
            to,
            security: MailSecurity::None,
            credentials: None,
            timeout: Duration::from_secs(30),
            root: None,
        })
    }

    /// STARTTLS or TLS (the server's certificate checked against the web's roots).
    pub fn security(mut self, security: MailSecurity) -> Mail {
        self.security = security;
        self
    }

    /// Trusts the CA certificate `pem` (PEM) for the server's certificate, besides the web's
    /// roots: a relay whose certificate a company's own CA signed.
    pub fn root_certificate(mut self, pem: &[u8]) -> Result<Mail, AlertError> {
        Certificate::from_pem(pem).map_err(|e| {
            AlertError::Config(format!("the CA certificate is not usable PEM: {e}"))
        })?;
        self.root = Some(pem.to_vec());
        Ok(self)
    }

    /// SMTP AUTH (PLAIN or LOGIN, as the server offers).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Mail {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Bounds one delivery, the whole SMTP exchange (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Mail {
        self.timeout = timeout;
        self
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, AlertError> {
        let tls = |wrap: fn(TlsParameters) -> Tls| {
            let mut parameters = TlsParameters::builder(self.host.clone());
            if let Some(pem) = &self.root {
                // Checked when it was given.
                if let Ok(ca) = Certificate::from_pem(pem) {
                    parameters = parameters.add_root_certificate(ca);
                }
            }
            parameters
                .build_rustls()
                .map(wrap)
                .map_err(|e| AlertError::Config(format!("TLS for {}: {e}", self.host)))
        };
        let tls = match self.security {
            MailSecurity::None => Tls::None,
            MailSecurity::StartTls => tls(Tls::Required)?,
            MailSecurity::Tls => tls(Tls::Wrapper)?,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some((user, password)) = &self.credentials {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(b.build())
    }
}

/// `host[:port]` (an IPv6 address in brackets when a port follows).
fn split_server(server: &str) -> Result<(String, u16), AlertError> {
    let bad = || {
        AlertError::Config(format!(
            "SMTP server {server:?}: write it as host, host:port or [IPv6]:port"
        ))
    };
    if let Ok(addr) = server.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if server.parse::<std::net::IpAddr>().is_ok() {
        return Ok((server.to_owned(), 25));
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        None if !server.is_empty() => Ok((server.to_owned(), 25)),
        _ => Err(bad()),
    }
}

/// The mail's text: the subject again, each field on a line, where and when.
pub(super) fn body(source: &str, host: &str, alert: &Alert) -> String {
    let mut text = format!("{}\n\n", alert.subject);
    for (name, value) in &alert.fields {
        let _ = writeln!(text, "{name}: {value}");
    }
    let _ = writeln!(text, "host: {host}");
    let _ = writeln!(text, "daemon: {source}");
    let _ = writeln!(text, "time: {}", rfc3339(alert.at));
    text
}

#[async_trait]
impl Sink for Mail {
    fn describe(&self) -> String {
        format!("mail via {}:{}", self.host, self.port)
    }

    async fn deliver(&self, source: &str, host: &str, alert: &Alert) -> Result<(), AlertError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(format!("[{source}@{host}] {}", alert.subject))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let failed = |detail: String| AlertError::Delivery {
            destination: self.describe(),
            detail,
        };
        let message = message
            .body(body(source, host, alert))
            .map_err(|e| failed(e.to_string()))?;
        // lettre bounds each command, not the server's greeting: a server that accepts and
        // stays silent would hold the queue forever. The whole exchange is bounded here.
        let transport = self.transport()?;
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(sent) => sent.map(drop).map_err(|e| failed(e.to_string())),
            Err(_) => Err(failed(format!("no answer within {:?}", self.timeout))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_addresses_parse_or_say_how_to_write_them() {
        assert_eq!(
            split_server("smtp.example").ok(),
            Some(("smtp.example".into(), 25))
        );
        assert_eq!(
            split_server("smtp.example:587").ok(),
            Some(("smtp.example".into(), 587))
        );
        assert_eq!(split_server("10.0.0.1").ok(), Some(("10.0.0.1".into(), 25)));
        assert_eq!(split_server("[::1]:2525").ok(), Some(("::1".into(), 2525)));
        assert_eq!(split_server("::1").ok(), Some(("::1".into(), 25)));
        for bad in ["", "smtp:port", ":25"] {
            let e = split_server(bad).expect_err(bad).to_string();
            assert!(e.contains("host:port"), "{e}");
        }
        let e = Mail::new("127.0.0.1", "vrrpd", ["ops@example.com"]).expect_err("bad sender");
        assert!(
            e.to_string()
                .contains("sender \"vrrpd\" is not a mail address"),
            "{e}"
        );
        let none: [&str; 0] = [];
        let e = Mail::new("127.0.0.1", "vrrpd@lb1", none).expect_err("no recipient");
        assert!(e.to_string().contains("no recipient"), "{e}");
    }

    #[test]
    fn the_body_names_every_field_the_host_the_daemon_and_the_time() {
        let alert = Alert::new("VI_1: BACKUP -> MASTER")
            .field("instance", "VI_1")
            .field("reason", "master down timer expired");
        let text = body("vrrpd", "lb1", &alert);
        assert!(text.starts_with("VI_1: BACKUP -> MASTER\n\ninstance: VI_1\nreason: master down timer expired\nhost: lb1\ndaemon: vrrpd\ntime: "), "{text}");
    }
}
