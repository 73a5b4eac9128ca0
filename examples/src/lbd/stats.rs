//! A listener's stats page (`stats = { bind, uri, auth }`): lb-core's
//! [`lb_core::stats_page`], HTML at `uri`, Prometheus text at `/metrics`, on an address of its
//! own.

use std::collections::HashMap;
use std::net::SocketAddr;

use lb_core::stats_page::{Credentials, StatsSettings};
pub use lb_core::stats_page::{DEFAULT_URI, METRICS_URI};
use serde::Deserialize;
use toml::Spanned;

use super::config::check_bind;
use crate::diagnostics::Report;

/// A checked stats page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Its own address (not the listener's).
    pub bind: SocketAddr,
    /// The HTML page's path (default [`DEFAULT_URI`]).
    pub uri: String,
    /// Basic authentication, if any: user and password (`auth = "user:pass"`, as HAProxy's
    /// `stats auth`). It guards both the page and `/metrics`.
    pub auth: Option<(String, String)>,
}

impl Stats {
    /// The page's settings in lb-core's terms: titled `lbd statistics` (also the realm), its
    /// metrics named `lbd_*`.
    pub fn settings(&self) -> StatsSettings {
        let mut settings = StatsSettings::new(self.bind);
        settings.uri.clone_from(&self.uri);
        settings.auth = self
            .auth
            .as_ref()
            .map(|(user, pass)| Credentials::new(user, pass));
        settings.title = "lbd statistics".into();
        settings.metrics_prefix = "lbd".into();
        settings
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsToml {
    bind: Spanned<String>,
    uri: Option<Spanned<String>>,
    auth: Option<Spanned<String>>,
}

/// Checks one listener's `stats` (`key` is `listen[i].stats`); its bind joins `binds`.
pub(crate) fn check(
    r: &mut Report<'_>,
    s: &Spanned<StatsToml>,
    key: String,
    binds: &mut HashMap<SocketAddr, String>,
) -> Option<Stats> {
    let t = s.get_ref();
    let before = r.errors.len();
    let bind = check_bind(r, &t.bind, format!("{key}.bind"), binds);
    let uri = match &t.uri {
        None => DEFAULT_URI.to_owned(),
        Some(u) => {
            let path = u.get_ref();
            if !path.starts_with('/') {
                r.at(
                    u.span(),
                    format!("{key}.uri"),
                    format!("{path:?}: a path starting with '/', e.g. \"{DEFAULT_URI}\""),
                );
            } else if path == METRICS_URI {
                r.at(
                    u.span(),
                    format!("{key}.uri"),
                    format!("{METRICS_URI} serves the Prometheus metrics: pick another path"),
                );
            }
            path.clone()
        }
    };
    let auth = t
        .auth
        .as_ref()
        .and_then(|a| match a.get_ref().split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Some((user.to_owned(), pass.to_owned()))
            }
            _ => {
                r.at(
                    a.span(),
                    format!("{key}.auth"),
                    "is \"user:password\", both non-empty (e.g. \"admin:secret\")".into(),
                );
                None
            }
        });
    if let (Some(b), None, true) = (bind, &t.auth, r.errors.len() == before)
        && !b.ip().is_loopback()
    {
        r.warn(
            t.bind.span(),
            format!("{key}.bind"),
            format!("{b} is not a loopback address and there is no auth: anyone who reaches it reads the stats (add auth = \"user:password\")"),
        );
    }
    if r.errors.len() != before {
        return None;
    }
    Some(Stats {
        bind: bind?,
        uri,
        auth,
    })
}
