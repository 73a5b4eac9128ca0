//! Where and how the page is served: [`StatsSettings`], checked by
//! [`StatsServer::start`](super::StatsServer::start).

use std::net::SocketAddr;

use super::auth::Credentials;
use super::error::StatsError;

/// Where the HTML page is served unless told otherwise (HAProxy's `stats uri` default is
/// `/haproxy?stats`; this one is shorter).
pub const DEFAULT_URI: &str = "/stats";

/// Where the Prometheus text is served, beside the page.
pub const METRICS_URI: &str = "/metrics";

/// The page's title (and the realm of its basic authentication) unless told otherwise.
pub const DEFAULT_TITLE: &str = "lb statistics";

/// The first word of every metric name unless told otherwise (`lb_server_up`, ...).
pub const DEFAULT_METRICS_PREFIX: &str = "lb";

/// A stats page: its own address, its paths, who may read it, and its names.
///
/// ```
/// use lb_core::stats_page::{Credentials, StatsSettings};
///
/// let mut settings = StatsSettings::new("127.0.0.1:8404".parse().unwrap());
/// settings.auth = Some(Credentials::new("admin", "secret"));
/// settings.title = "lbd statistics".into(); // the page's heading and the realm
/// settings.metrics_prefix = "lbd".into(); // lbd_server_up, ...
/// assert_eq!(settings.uri, "/stats");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSettings {
    /// Its own address (not a proxy's); port 0 lets the system choose
    /// ([`StatsServer::local_addr`](super::StatsServer::local_addr) says which).
    pub bind: SocketAddr,
    /// The HTML page's path (default [`DEFAULT_URI`]); its JSON is at `uri;json` and
    /// `uri?format=json`. A path starting with `/`, other than [`METRICS_URI`].
    pub uri: String,
    /// Basic authentication, if any. It guards every path, `/metrics` included.
    pub auth: Option<Credentials>,
    /// The page's `<title>` and heading, and the realm a browser shows when it asks for the
    /// user and password (default [`DEFAULT_TITLE`]).
    pub title: String,
    /// The first word of the metric names (default [`DEFAULT_METRICS_PREFIX`]): letters,
    /// digits, `_` and `:`, not starting with a digit.
    pub metrics_prefix: String,
}

impl StatsSettings {
    /// A page on `bind` at [`DEFAULT_URI`], without authentication, titled [`DEFAULT_TITLE`],
    /// its metrics named `lb_*`.
    pub fn new(bind: SocketAddr) -> Self {
        StatsSettings {
            bind,
            uri: DEFAULT_URI.to_owned(),
            auth: None,
            title: DEFAULT_TITLE.to_owned(),
            metrics_prefix: DEFAULT_METRICS_PREFIX.to_owned(),
        }
    }

    /// The first thing wrong with these settings, if any.
    pub(super) fn check(&self) -> Result<(), StatsError> {
        if !self.uri.starts_with('/') || self.uri == METRICS_URI {
            return Err(StatsError::Uri {
                uri: self.uri.clone(),
            });
        }
        let mut prefix = self.metrics_prefix.chars();
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        if !prefix
            .next()
            .is_some_and(|c| name_char(c) && !c.is_ascii_digit())
            || !prefix.all(name_char)
        {
            return Err(StatsError::MetricsPrefix {
                prefix: self.metrics_prefix.clone(),
            });
        }
        if self.title.chars().any(char::is_control) {
            return Err(StatsError::Title {
                title: self.title.clone(),
            });
        }
        if let Some(auth) = &self.auth
            && !auth.is_usable()
        {
            return Err(StatsError::User {
                user: auth.user().to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_anything_listens() {
        let ok = StatsSettings::new("127.0.0.1:0".parse().unwrap());
        assert!(ok.check().is_ok());
        let with = |change: fn(&mut StatsSettings)| {
            let mut s = ok.clone();
            change(&mut s);
            s.check().map_err(|e| e.to_string())
        };
        assert!(with(|s| s.metrics_prefix = "a:b_9".into()).is_ok());
        for (change, text) in [
            (
                (|s| s.uri = "stats".into()) as fn(&mut StatsSettings),
                "stats page uri \"stats\": give a path starting with '/', other than /metrics (e.g. \"/stats\")",
            ),
            (|s| s.uri = "/metrics".into(), "stats page uri \"/metrics\""),
            (
                |s| s.metrics_prefix = "9lb".into(),
                "metrics prefix \"9lb\"",
            ),
            (
                |s| s.metrics_prefix = "lb-x".into(),
                "metrics prefix \"lb-x\"",
            ),
            (|s| s.metrics_prefix = String::new(), "metrics prefix \"\""),
            (|s| s.title = "a\nb".into(), "title \"a\\nb\""),
            (
                |s| s.auth = Some(Credentials::new("a:b", "c")),
                "user \"a:b\"",
            ),
            (|s| s.auth = Some(Credentials::new("", "c")), "user \"\""),
        ] {
            let error = with(change).expect_err(text);
            assert!(error.contains(text), "{error}");
        }
    }
}
