//! A listener's stats page (`stats = { bind, uri, auth }`): HTML at `uri`, Prometheus text at
//! `/metrics`, on an address of its own.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::config::check_bind;
use crate::diagnostics::Report;

/// Where the HTML page is served when `uri` is not given (HAProxy's `stats uri` default is
/// `/haproxy?stats`; lbd's is shorter).
pub const DEFAULT_URI: &str = "/stats";
/// Where the Prometheus text is served, beside the page.
pub const METRICS_URI: &str = "/metrics";

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
