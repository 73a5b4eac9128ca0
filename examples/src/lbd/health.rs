//! A listener's health check (`check = { http = "/path", ... }` or `{ tcp = true, ... }`),
//! mapped onto `health-check`'s [`MonitorConfig`].

use std::time::Duration;

use health_check::MonitorConfig;
use serde::Deserialize;
use toml::Spanned;

use super::config::count_of;
use crate::diagnostics::{Report, duration_of};

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
        let value = duration_of(r, v, key(&format!("check.{k}")), default);
        if let (Some(s), true) = (v, value.is_zero()) {
            r.at(
                s.span(),
                key(&format!("check.{k}")),
                "is zero: checks need a positive time".into(),
            );
        }
        value
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
        monitor: MonitorConfig {
            interval,
            timeout,
            fastinter,
            downinter,
            rise: rise?,
            fall: fall?,
            ..d
        },
    })
}
