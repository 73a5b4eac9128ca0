//! `/metrics`: the snapshot in the Prometheus text exposition format 0.0.4.
//!
//! Every name starts with the page's metrics prefix
//! ([`StatsSettings::metrics_prefix`](super::StatsSettings::metrics_prefix), `lb` unless set;
//! lbd's is `lbd`). Listener series carry a `listener` label, server series `listener` and
//! `server`:
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `lb_uptime_seconds`, `lb_start_time_seconds` | gauge | the service's uptime and start (Unix time) |
//! | `lb_listener_sessions_current`, `_max`, `_limit` | gauge | client sessions now, at most, `maxconn` |
//! | `lb_listener_sessions_total`, `lb_listener_requests_total` | counter | client sessions, HTTP requests |
//! | `lb_listener_bytes_in_total`, `_bytes_out_total` | counter | bytes from and to clients |
//! | `lb_listener_responses_total{code}` | counter | responses by class (`1xx` ... `5xx`, `other`) |
//! | `lb_listener_servers_up` | gauge | servers taking traffic |
//! | `lb_server_up` | gauge | 1 when the server takes traffic (UP or no check) |
//! | `lb_server_state{state}` | gauge | 1 for its state (`up`, `down`, `maint`, `nocheck`), 0 for the others |
//! | `lb_server_last_change_seconds` | gauge | time since the state last changed |
//! | `lb_server_weight` | gauge | weight now |
//! | `lb_server_sessions_current`, `_max`, `_limit` | gauge | sessions now, at most, `maxconn` |
//! | `lb_server_sessions_total`, `lb_server_requests_total` | counter | sessions, HTTP requests |
//! | `lb_server_bytes_in_total`, `_bytes_out_total` | counter | bytes to and from it |
//! | `lb_server_responses_total{code}` | counter | its responses by class |
//! | `lb_server_connect_errors_total`, `_response_errors_total` | counter | failed connects, failed responses |
//! | `lb_server_queue_current`, `_max` | gauge | requests waiting for a slot |
//! | `lb_server_check_failures` | gauge | consecutive failed checks (down at `fall`) |
//! | `lb_server_checks_total` | counter | checks run |
//!
//! ```
//! use lb_core::stats_page::{Snapshot, metrics};
//!
//! let text = metrics::render(&Snapshot::default(), "lbd");
//! assert!(text.contains("\n# TYPE lbd_uptime_seconds gauge\n"));
//! ```

use super::prometheus::{Family, Metric, count, flag};
use super::snapshot::{Counters, ServerState, ServerStatus, Snapshot};

/// A family of [`Counters`] for listeners and for servers: the two names (after the prefix),
/// type, help, and the value (if there is one).
type CountersMetric = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    fn(&Counters) -> Option<u64>,
);

#[rustfmt::skip]
const COUNTERS_METRICS: [CountersMetric; 7] = [
    ("listener_sessions_current", "server_sessions_current", "gauge", "Sessions now.", |c| Some(c.current)),
    ("listener_sessions_max", "server_sessions_max", "gauge", "The most sessions at once since start.", |c| Some(c.max)),
    ("listener_sessions_limit", "server_sessions_limit", "gauge", "The maxconn.", |c| c.limit.map(u64::from)),
    ("listener_sessions_total", "server_sessions_total", "counter", "Sessions since start.", |c| Some(c.total)),
    ("listener_requests_total", "server_requests_total", "counter", "HTTP requests since start.", |c| Some(c.requests)),
    ("listener_bytes_in_total", "server_bytes_in_total", "counter", "Bytes in: from clients (listener), to the server (server).", |c| Some(c.bytes_in)),
    ("listener_bytes_out_total", "server_bytes_out_total", "counter", "Bytes out: to clients (listener), from the server (server).", |c| Some(c.bytes_out)),
];

/// The per-server families of [`ServerStatus`] fields.
#[rustfmt::skip]
const SERVER_METRICS: [Metric<ServerStatus>; 9] = [
    ("server_up", "gauge", "1 when the server takes traffic (UP or not checked).", |s| Some(flag(s.state.takes_traffic()))),
    ("server_last_change_seconds", "gauge", "Time since the server's state last changed.", |s| Some(s.since.as_secs_f64())),
    ("server_weight", "gauge", "The server's weight now.", |s| Some(f64::from(s.weight))),
    ("server_connect_errors_total", "counter", "Connects to the server that failed.", |s| Some(count(s.connect_errors))),
    ("server_response_errors_total", "counter", "Responses from the server that failed (reset, timeout, malformed).", |s| Some(count(s.response_errors))),
    ("server_queue_current", "gauge", "Requests waiting for a slot on the server now.", |s| Some(count(s.queue.current))),
    ("server_queue_max", "gauge", "The most requests waiting at once since start.", |s| Some(count(s.queue.max))),
    ("server_check_failures", "gauge", "Consecutive failed health checks (the server goes down at fall).", |s| s.check.as_ref().map(|c| f64::from(c.failures))),
    ("server_checks_total", "counter", "Health checks run.", |s| s.check.as_ref().map(|c| count(c.checks))),
];

/// The snapshot in the Prometheus text exposition format 0.0.4, every name starting with
/// `prefix` and `_` (a name as Prometheus takes them: letters, digits, `_` and `:`, not
/// starting with a digit).
pub fn render(snapshot: &Snapshot, prefix: &str) -> String {
    let mut out = String::with_capacity(8192);
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let started = snapshot
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let help = "Time since the service started.";
    let mut f = Family::new(&mut out, name("uptime_seconds"), "gauge", help);
    f.sample(&[], snapshot.uptime.as_secs_f64());
    let help = "When the service started, in seconds since the Unix epoch.";
    let mut f = Family::new(&mut out, name("start_time_seconds"), "gauge", help);
    f.sample(&[], started.as_secs_f64());
    let listeners = &snapshot.listeners;
    let servers = || {
        listeners
            .iter()
            .flat_map(|l| l.servers.iter().map(move |s| (l.name.as_str(), s)))
    };
    for (listener_name, server_name, kind, help, value) in COUNTERS_METRICS {
        let mut f = Family::new(&mut out, name(listener_name), kind, help);
        for l in listeners {
            if let Some(v) = value(&l.counters) {
                f.sample(&[("listener", &l.name)], count(v));
            }
        }
        let mut f = Family::new(&mut out, name(server_name), kind, help);
        for (l, s) in servers() {
            if let Some(v) = value(&s.counters) {
                f.sample(&[("listener", l), ("server", &s.name)], count(v));
            }
        }
    }
    let help = "Responses sent to clients, by status class.";
    let mut f = Family::new(&mut out, name("listener_responses_total"), "counter", help);
    for l in listeners {
        for (code, n) in l.counters.responses.by_class() {
            f.sample(&[("listener", &l.name), ("code", code)], count(n));
        }
    }
    let help = "Servers taking traffic (UP or not checked).";
    let mut f = Family::new(&mut out, name("listener_servers_up"), "gauge", help);
    for l in listeners {
        let up = l.servers.iter().filter(|s| s.state.takes_traffic()).count();
        f.sample(&[("listener", &l.name)], up as f64);
    }
    for (suffix, kind, help, value) in SERVER_METRICS {
        let mut f = Family::new(&mut out, name(suffix), kind, help);
        for (l, s) in servers() {
            if let Some(v) = value(s) {
                f.sample(&[("listener", l), ("server", &s.name)], v);
            }
        }
    }
    let help = "1 for the state the server is in (up, down, maint, nocheck), 0 for the others.";
    let mut f = Family::new(&mut out, name("server_state"), "gauge", help);
    for (l, s) in servers() {
        for state in ServerState::ALL {
            let labels = [
                ("listener", l),
                ("server", &s.name),
                ("state", state.slug()),
            ];
            f.sample(&labels, flag(s.state == state));
        }
    }
    let help = "Responses from the server, by status class.";
    let mut f = Family::new(&mut out, name("server_responses_total"), "counter", help);
    for (l, s) in servers() {
        for (code, n) in s.counters.responses.by_class() {
            f.sample(
                &[("listener", l), ("server", &s.name), ("code", code)],
                count(n),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn the_exposition_has_every_family_typed_and_escaped_labels() {
        let text = render(&fixture::snapshot(), "lbd");
        let web = r#"listener="web <&>""#;
        for line in [
            "lbd_uptime_seconds 3725".to_owned(),
            "lbd_start_time_seconds 1700000000".into(),
            format!("lbd_listener_sessions_current{{{web}}} 6"),
            format!("lbd_listener_sessions_limit{{{web}}} 3000"),
            format!("lbd_listener_requests_total{{{web}}} 17034"),
            format!("lbd_listener_responses_total{{{web},code=\"5xx\"}} 34"),
            format!("lbd_listener_servers_up{{{web}}} 2"),
            "lbd_listener_servers_up{listener=\"db\"} 1".into(),
            format!("lbd_server_up{{{web},server=\"web1\"}} 1"),
            format!("lbd_server_up{{{web},server=\"web2\"}} 0"),
            format!("lbd_server_up{{{web},server=\"web\\\"3\\\"\"}} 1"),
            format!("lbd_server_state{{{web},server=\"web2\",state=\"down\"}} 1"),
            format!("lbd_server_state{{{web},server=\"web2\",state=\"up\"}} 0"),
            "lbd_server_state{listener=\"db\",server=\"pg2\",state=\"maint\"} 1".into(),
            "lbd_server_up{listener=\"db\",server=\"pg1\"} 1".into(),
            format!("lbd_server_last_change_seconds{{{web},server=\"web1\"}} 133"),
            format!("lbd_server_sessions_total{{{web},server=\"web1\"}} 1234"),
            format!("lbd_server_bytes_out_total{{{web},server=\"web1\"}} 3145728"),
            format!("lbd_server_responses_total{{{web},server=\"web1\",code=\"2xx\"}} 5000"),
            format!("lbd_server_connect_errors_total{{{web},server=\"web2\"}} 3"),
            format!("lbd_server_queue_current{{{web},server=\"web2\"}} 4"),
            format!("lbd_server_check_failures{{{web},server=\"web\\\"3\\\"\"}} 1"),
            format!("lbd_server_checks_total{{{web},server=\"web1\"}} 40"),
            "# TYPE lbd_server_sessions_total counter".into(),
            "# TYPE lbd_server_up gauge".into(),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line}\n{text}");
        }
        // Unchecked servers have no check series; a listener without maxconn no limit.
        assert!(!text.contains("server_checks_total{listener=\"db\""));
        assert!(!text.contains("listener_sessions_limit{listener=\"db\""));
        // Every sample belongs to the family declared above it; every family once.
        let mut declared: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name), "{name} twice");
                declared.push(name);
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(&name), declared.last(), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
