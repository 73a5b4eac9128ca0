//! A listener's health check (`check = { http = "/path", ... }` or `{ tcp = true, ... }`),
//! mapped onto `health-check`'s [`MonitorConfig`], and the check of each server
//! ([`HealthCheck::checker`]).

use std::sync::Arc;
use std::time::Duration;

use health_check::{Check, HttpCheck, MonitorConfig, TcpCheck, Tls};
use serde::Deserialize;
use toml::Spanned;

use super::config::{Server, count_of};
use crate::diagnostics::{Report, positive_duration};
use lb_core::proxy::tls::{self, Alpn, TlsError};

/// The servers' health check (`check = { http = "/path", ... }` or `{ tcp = true, ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is probed.
    pub probe: Probe,
    /// Schedule and thresholds: `interval` (default 2 s), `timeout` (default: the interval, as
    /// HAProxy's without `timeout check`), `rise` (2), `fall` (3), `fastinter`, `downinter`.
    /// `id` and `weight` are per server, set when the monitors start.
    pub monitor: MonitorConfig,
}

impl HealthCheck {
    /// The check of `server`, for a [`Monitor`](health_check::Monitor) with
    /// [`monitor`](HealthCheck::monitor) (its `id` and `weight` set per server):
    /// - [`Probe::Http`]: `GET path` to the server's address (`Host` the address), 2xx/3xx
    ///   healthy; over TLS (ALPN `http/1.1`) when the server has `tls`, its certificate
    ///   checked as its `verify` and `ca` say, as the proxy's own connections
    ///   ([`tls::client_config`]), HAProxy's `check` on a `server ... ssl`;
    /// - [`Probe::Tcp`]: a TCP connect, TLS or not (HAProxy's plain `check`).
    ///
    /// Fails only when the server's TLS settings cannot be loaded (its `ca` file).
    pub fn checker(&self, server: &Server) -> Result<Arc<dyn Check>, TlsError> {
        Ok(match &self.probe {
            Probe::Tcp => Arc::new(TcpCheck::new(server.addr)),
            Probe::Http { path } => {
                let check = HttpCheck::new(server.addr).path(path.clone());
                match server.tls {
                    None => Arc::new(check),
                    Some(verify) => {
                        let config =
                            tls::client_config(verify.into(), server.ca.as_deref(), Alpn::Http1)?;
                        Arc::new(check.tls(Tls::with_config(config)))
                    }
                }
            }
        })
    }
}

/// What a health check probes on each server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET path` over HTTP/1.1, healthy on 2xx/3xx (HAProxy's `option httpchk GET path`);
    /// over TLS when the server has `tls`.
    Http {
        /// The path, with a leading `/`.
        path: String,
    },
    /// A TCP connect (HAProxy's plain `check`).
    Tcp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckToml {
    http: Option<Spanned<String>>,
    tcp: Option<Spanned<bool>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    fastinter: Option<Spanned<String>>,
    downinter: Option<Spanned<String>>,
    rise: Option<Spanned<i64>>,
    fall: Option<Spanned<i64>>,
}

/// Checks listener `key("")`'s `check`; `None` when it has mistakes (reported).
pub(crate) fn check(
    r: &mut Report<'_>,
    c: &Spanned<CheckToml>,
    key: &dyn Fn(&str) -> String,
) -> Option<HealthCheck> {
    let t = c.get_ref();
    let before = r.errors.len();
    let probe = match (&t.http, &t.tcp) {
        (Some(path), None) => {
            if !path.get_ref().starts_with('/') {
                r.at(
                    path.span(),
                    key("check.http"),
                    format!(
                        "{:?}: the path to GET, starting with '/' (e.g. \"/health\")",
                        path.get_ref()
                    ),
                );
            }
            Some(Probe::Http {
                path: path.get_ref().clone(),
            })
        }
        (None, Some(tcp)) if *tcp.get_ref() => Some(Probe::Tcp),
        (None, Some(tcp)) => {
            r.at(
                tcp.span(),
                key("check.tcp"),
                "tcp = false: leave `check` out for no health check".into(),
            );
            None
        }
        (Some(_), Some(tcp)) => {
            r.at(
                tcp.span(),
                key("check.tcp"),
                "a check is `http = \"/path\"` or `tcp = true`, not both".into(),
            );
            None
        }
        (None, None) => {
            r.at(
                c.span(),
                key("check"),
                "says what to probe: add `http = \"/health\"` or `tcp = true`".into(),
            );
            None
        }
    };
    let d = MonitorConfig::default();
    let mut positive = |v: &Option<Spanned<String>>, k: &str, default: Duration| {
        let why = "checks need a positive time";
        positive_duration(r, v, key(&format!("check.{k}")), default, why)
    };
    let interval = positive(&t.interval, "interval", d.interval);
    let timeout = positive(&t.timeout, "timeout", interval);
    let fastinter = t
        .fastinter
        .as_ref()
        .map(|_| positive(&t.fastinter, "fastinter", interval));
    let downinter = t
        .downinter
        .as_ref()
        .map(|_| positive(&t.downinter, "downinter", interval));
    let rise = t
        .rise
        .as_ref()
        .map_or(Some(d.rise), |v| count_of(r, v, key("check.rise"), 1, ""));
    let fall = t
        .fall
        .as_ref()
        .map_or(Some(d.fall), |v| count_of(r, v, key("check.fall"), 1, ""));
    if r.errors.len() != before {
        return None;
    }
    Some(HealthCheck {
        probe: probe?,
        monitor: {
            let mut m = d
                .interval(interval)
                .timeout(timeout)
                .rise(rise?)
                .fall(fall?);
            (m.fastinter, m.downinter) = (fastinter, downinter);
            m
        },
    })
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
