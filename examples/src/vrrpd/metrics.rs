//! Prometheus metrics: [`render`] turns a [`Status`] into the text exposition format 0.0.4,
//! served at `GET /metrics` on `metrics.bind` by the daemons' minimal HTTP/1.1 responder (one
//! request per connection; other paths are 404, other methods 405).
//!
//! Instance series carry `instance`, `interface` and `vrid` labels:
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `vrrpd_instance_state{state}` | gauge | 1 for the state the instance is in (`init`, `backup`, `master`, `fault`), 0 for the others |
//! | `vrrpd_instance_priority` | gauge | effective priority (base plus tracked weights) |
//! | `vrrpd_instance_base_priority` | gauge | configured priority |
//! | `vrrpd_instance_master_adver_interval_seconds` | gauge | Master_Adver_Interval |
//! | `vrrpd_instance_holds_virtual_addresses` | gauge | 1 when every virtual address is on the interface |
//! | `vrrpd_instance_link_up` | gauge | the interface's link as the router heard it |
//! | `vrrpd_instance_tracked_check_up{check}` | gauge | a tracked check as the router heard it |
//! | `vrrpd_instance_last_transition_timestamp_seconds` | gauge | when the state last changed |
//! | `vrrpd_instance_transitions_total` | counter | state changes |
//! | `vrrpd_instance_became_master_total` | counter | times it became Master |
//! | `vrrpd_instance_split_brains_total` | counter | split brains heard as Master (another Master, losing priority, not stepping down) |
//! | `vrrpd_instance_split_brain` | gauge | of those, going on now |
//! | `vrrpd_instance_second_owner_episodes_total` | counter | split brains seen on the wire: another host answering for a virtual address while Master |
//! | `vrrpd_instance_second_owner` | gauge | of those, going on now |
//! | `vrrpd_instance_adverts_sent_total` | counter | adverts sent |
//! | `vrrpd_instance_adverts_received_total` | counter | adverts received for its VRID |
//! | `vrrpd_instance_adverts_accepted_total` | counter | adverts that passed every check |
//! | `vrrpd_instance_adverts_dropped_total{reason}` | counter | adverts dropped, by reason (`ttl`, `checksum`, ...) |
//! | `vrrpd_instance_state_seconds_total{state}` | counter | time spent in each state |
//! | `vrrpd_instance_announce_frames_sent_total` | counter | gratuitous ARPs / unsolicited NAs sent |
//! | `vrrpd_instance_announce_frames_retried_total` | counter | of those, sent on the second try (an error left on the socket, e.g. by a link flap) |
//! | `vrrpd_instance_announce_frames_failed_total` | counter | announcement frames given up after two failed sends |
//! | `vrrpd_instance_vip_restored_total` | counter | virtual addresses put back on the Master after they were removed behind its back |
//! | `vrrpd_instance_vip_stale_removed_total` | counter | virtual addresses removed while not Master (left by a crash) |
//! | `vrrpd_instance_reconcile_failures_total` | counter | reconciliation reads, restores or removals that failed |
//!
//! Drivers (`interface`, `family` labels): `vrrpd_driver_malformed_total`,
//! `vrrpd_driver_unknown_vrid_total`, `vrrpd_driver_send_errors_total`. Checks (`check`,
//! `kind`): `vrrpd_check_up`, `vrrpd_check_runs_total`. The daemon:
//! `vrrpd_reloads_total{result="success"|"failure"}`, `vrrpd_start_time_seconds`.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use super::registry::Registry;
use super::status::{DriverStatus, InstanceStatus, Status};
use crate::http_responder::{self, Request, Response};
pub use crate::prometheus::CONTENT_TYPE;
use crate::prometheus::{Family, Metric, count, flag};

/// A sample of instance `i`, with one more label if given.
fn instance(f: &mut Family<'_>, i: &InstanceStatus, extra: Option<(&str, &str)>, value: f64) {
    let vrid = i.vrid.to_string();
    let mut labels = vec![
        ("instance", i.name.as_str()),
        ("interface", i.interface.as_str()),
        ("vrid", vrid.as_str()),
    ];
    labels.extend(extra);
    f.sample(&labels, value);
}

/// The per-instance families of [`InstanceStatus`] fields.
#[rustfmt::skip]
const INSTANCE_METRICS: [Metric<InstanceStatus>; 21] = [
    ("vrrpd_instance_priority", "gauge", "Effective priority: the base priority plus the weights of the tracked objects.", |i| i.effective_priority.map(f64::from)),
    ("vrrpd_instance_base_priority", "gauge", "Configured priority.", |i| Some(f64::from(i.base_priority))),
    ("vrrpd_instance_master_adver_interval_seconds", "gauge", "Master_Adver_Interval (RFC 5798).", |i| i.master_adver_interval_ms.map(|ms| count(ms) / 1000.0)),
    ("vrrpd_instance_holds_virtual_addresses", "gauge", "1 when every virtual address of the instance is on its interface.", |i| i.holds_virtual_addresses.map(flag)),
    ("vrrpd_instance_link_up", "gauge", "The interface's link as the router last heard it.", |i| i.link_up.map(flag)),
    ("vrrpd_instance_last_transition_timestamp_seconds", "gauge", "When the state last changed, in seconds since the Unix epoch.", |i| i.last_transition.as_ref().map(|t| t.unix_time)),
    ("vrrpd_instance_transitions_total", "counter", "State changes.", |i| i.counters.as_ref().map(|c| count(c.transitions))),
    ("vrrpd_instance_became_master_total", "counter", "Times the instance became Master.", |i| i.counters.as_ref().map(|c| count(c.became_master))),
    ("vrrpd_instance_split_brains_total", "counter", "Split brains heard as Master: another Master with a losing priority that does not step down.", |i| i.counters.as_ref().map(|c| count(c.split_brains))),
    ("vrrpd_instance_split_brain", "gauge", "Split brains heard as Master going on now.", |i| i.counters.as_ref().map(|c| count(c.split_brains_now))),
    ("vrrpd_instance_second_owner_episodes_total", "counter", "Split brains seen on the wire: another host answering for a virtual address while Master.", |i| i.second_owner.as_ref().map(|s| count(s.episodes))),
    ("vrrpd_instance_second_owner", "gauge", "Other holders of a virtual address answering now.", |i| i.second_owner.as_ref().map(|s| count(s.now))),
    ("vrrpd_instance_adverts_sent_total", "counter", "Advertisements sent (one per destination).", |i| i.counters.as_ref().map(|c| count(c.adverts_sent))),
    ("vrrpd_instance_adverts_received_total", "counter", "Advertisements received for the instance's VRID.", |i| i.counters.as_ref().map(|c| count(c.adverts_received))),
    ("vrrpd_instance_adverts_accepted_total", "counter", "Advertisements that passed every check.", |i| i.counters.as_ref().map(|c| count(c.adverts_accepted))),
    ("vrrpd_instance_announce_frames_sent_total", "counter", "Gratuitous ARPs / unsolicited NAs sent after takeovers.", |i| i.announcements.as_ref().map(|a| count(a.frames_sent))),
    ("vrrpd_instance_announce_frames_retried_total", "counter", "Announcement frames sent on the second try (the first returned an error left on the socket, e.g. by a link flap).", |i| i.announcements.as_ref().map(|a| count(a.frames_retried))),
    ("vrrpd_instance_announce_frames_failed_total", "counter", "Announcement frames given up after two failed sends; the rest of the sequence still went out.", |i| i.announcements.as_ref().map(|a| count(a.frames_failed))),
    ("vrrpd_instance_vip_restored_total", "counter", "Virtual addresses put back on the Master after they were removed behind its back.", |i| i.reconciliation.as_ref().map(|r| count(r.restored))),
    ("vrrpd_instance_vip_stale_removed_total", "counter", "Virtual addresses removed while not Master (left by a crash).", |i| i.reconciliation.as_ref().map(|r| count(r.stale_removed))),
    ("vrrpd_instance_reconcile_failures_total", "counter", "Reconciliation reads, restores or removals that failed.", |i| i.reconciliation.as_ref().map(|r| count(r.failures))),
];

/// A per-instance family with one more label: name, type, help, the label, and an
/// instance's samples as (label value, value).
type LabelledMetric = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    fn(&InstanceStatus) -> Vec<(String, f64)>,
);

#[rustfmt::skip]
const LABELLED_METRICS: [LabelledMetric; 4] = [
    ("vrrpd_instance_state", "gauge", "1 for the state the instance is in, 0 for the others.", "state", |i| {
        let Some(state) = &i.state else { return Vec::new() };
        ["INIT", "BACKUP", "MASTER", "FAULT"].iter().map(|s| (s.to_ascii_lowercase(), flag(state == *s))).collect()
    }),
    ("vrrpd_instance_tracked_check_up", "gauge", "A tracked check as the router last heard it.", "check", |i| {
        i.tracked_checks.iter().filter_map(|t| Some((t.name.clone(), flag(t.up?)))).collect()
    }),
    ("vrrpd_instance_adverts_dropped_total", "counter", "Advertisements dropped, by reason.", "reason", |i| {
        i.counters.iter().flat_map(|c| &c.dropped).map(|(reason, n)| (reason.clone(), count(*n))).collect()
    }),
    ("vrrpd_instance_state_seconds_total", "counter", "Time spent in each state.", "state", |i| {
        i.counters.iter().flat_map(|c| &c.seconds_in).map(|(state, secs)| (state.to_ascii_lowercase(), *secs)).collect()
    }),
];

/// A per-driver family: name, help, and the value of a driver (if known).
type DriverMetric = (&'static str, &'static str, fn(&DriverStatus) -> Option<u64>);

#[rustfmt::skip]
const DRIVER_METRICS: [DriverMetric; 3] = [
    ("vrrpd_driver_malformed_total", "Datagrams that were not VRRP over IP at all.", |d| d.malformed),
    ("vrrpd_driver_unknown_vrid_total", "Advertisements for a VRID no instance on the interface serves.", |d| d.unknown_vrid),
    ("vrrpd_driver_send_errors_total", "Advertisements that could not be sent.", |d| d.send_errors),
];

/// The status in the Prometheus text exposition format 0.0.4.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let instances = &status.instances;
    for (name, kind, help, value) in INSTANCE_METRICS {
        let mut f = Family::new(&mut out, name, kind, help);
        for i in instances {
            if let Some(v) = value(i) {
                instance(&mut f, i, None, v);
            }
        }
    }
    for (name, kind, help, label, values) in LABELLED_METRICS {
        let mut f = Family::new(&mut out, name, kind, help);
        for i in instances {
            for (label_value, value) in values(i) {
                instance(&mut f, i, Some((label, &label_value)), value);
            }
        }
    }
    for (name, help, value) in DRIVER_METRICS {
        let mut f = Family::new(&mut out, name, "counter", help);
        for d in &status.drivers {
            if let Some(v) = value(d) {
                f.sample(
                    &[("interface", &d.interface), ("family", d.family)],
                    count(v),
                );
            }
        }
    }
    let mut f = Family::new(
        &mut out,
        "vrrpd_check_up",
        "gauge",
        "A check's state after rise/fall.",
    );
    for c in &status.checks {
        f.sample(&[("check", &c.name), ("kind", c.kind)], flag(c.up));
    }
    let mut f = Family::new(&mut out, "vrrpd_check_runs_total", "counter", "Checks run.");
    for c in &status.checks {
        f.sample(&[("check", &c.name), ("kind", c.kind)], count(c.checks_run));
    }
    let mut f = Family::new(
        &mut out,
        "vrrpd_reloads_total",
        "counter",
        "Configuration reloads (SIGHUP), applied or refused.",
    );
    f.sample(&[("result", "success")], count(status.reloads.succeeded));
    f.sample(&[("result", "failure")], count(status.reloads.failed));
    let mut f = Family::new(
        &mut out,
        "vrrpd_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
    );
    f.sample(&[], status.started_unix);
    out
}

/// Answers one request: `GET` or `HEAD` of `/metrics` only.
async fn respond(request: Request, registry: Registry) -> Response {
    if !request.is_get_or_head() {
        Response::text("405 Method Not Allowed", "GET /metrics\n")
    } else if request.path == "/metrics" {
        Response::new("200 OK", CONTENT_TYPE, render(&registry.status().await))
    } else {
        Response::text("404 Not Found", "only /metrics here\n")
    }
}

/// Listens on `bind` and answers scrapes with the status of `registry`.
pub(super) async fn serve(bind: SocketAddr, registry: Registry) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics.bind {bind}: {e}")))?;
    info!(%bind, "metrics endpoint listening: GET /metrics");
    Ok(http_responder::serve(listener, "metrics", move |request| {
        respond(request, registry.clone())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrpd::status::tests::{backup_router, instance_config};
    use crate::vrrpd::status::{self as st, CheckStatus, Reloads};
    use std::collections::BTreeMap;
    use std::time::SystemTime;
    use vrrp_core::driver::{DriverStats, RouterSnapshot};

    fn status() -> Status {
        let snap = RouterSnapshot::of(&backup_router());
        let links = BTreeMap::new();
        let live = st::Live {
            router: Some(&snap),
            held: Some(&[false]),
            last: None,
            links: Some(&links),
            announced: Some({
                let mut a = ip_manager::AnnounceStats::default();
                a.frames_sent = 10;
                a.frames_retried = 1;
                a
            }),
            reconciled: Some({
                let mut r = ip_manager::failover::ReconcileStats::default();
                r.restored = 2;
                r
            }),
            second_owner: Some({
                let mut s = ip_manager::failover::SecondOwnerStats::default();
                (s.episodes, s.open) = (2, 1);
                s
            }),
        };
        let mut i = st::instance(&instance_config(), &live, SystemTime::now());
        i.name = "VI \"1\"".into(); // a name that needs escaping
        Status {
            pid: 1,
            config_file: "/etc/vrrpd.toml".into(),
            started_unix: 1_700_000_000.5,
            uptime_seconds: 1.0,
            reloads: Reloads {
                succeeded: 2,
                failed: 1,
                last: None,
            },
            instances: vec![i],
            drivers: vec![st::driver(
                "eth0",
                false,
                vec![51],
                Some(DriverStats {
                    malformed: 3,
                    unknown_vrid: 4,
                    send_errors: 0,
                }),
            )],
            checks: vec![CheckStatus {
                name: "chk".into(),
                kind: "tcp",
                up: false,
                checks_run: 7,
                last_error: Some("refused".into()),
                since_unix: 0.0,
            }],
        }
    }

    #[test]
    fn the_exposition_has_every_family_typed_and_escaped_labels() {
        let text = render(&status());
        let l = r#"instance="VI \"1\"",interface="eth0",vrid="51""#;
        for line in [
            format!("vrrpd_instance_state{{{l},state=\"backup\"}} 1"),
            format!("vrrpd_instance_state{{{l},state=\"master\"}} 0"),
            format!("vrrpd_instance_priority{{{l}}} 81"),
            format!("vrrpd_instance_base_priority{{{l}}} 101"),
            format!("vrrpd_instance_master_adver_interval_seconds{{{l}}} 0.1"),
            format!("vrrpd_instance_holds_virtual_addresses{{{l}}} 0"),
            format!("vrrpd_instance_transitions_total{{{l}}} 1"),
            format!("vrrpd_instance_adverts_sent_total{{{l}}} 0"),
            format!("vrrpd_instance_announce_frames_sent_total{{{l}}} 10"),
            format!("vrrpd_instance_announce_frames_retried_total{{{l}}} 1"),
            format!("vrrpd_instance_vip_restored_total{{{l}}} 2"),
            format!("vrrpd_instance_vip_stale_removed_total{{{l}}} 0"),
            format!("vrrpd_instance_announce_frames_failed_total{{{l}}} 0"),
            format!("vrrpd_instance_tracked_check_up{{{l},check=\"chk\"}} 0"),
            format!("vrrpd_instance_split_brains_total{{{l}}} 0"),
            format!("vrrpd_instance_split_brain{{{l}}} 0"),
            format!("vrrpd_instance_second_owner_episodes_total{{{l}}} 2"),
            format!("vrrpd_instance_second_owner{{{l}}} 1"),
            "vrrpd_driver_malformed_total{interface=\"eth0\",family=\"IPv4\"} 3".into(),
            "vrrpd_driver_unknown_vrid_total{interface=\"eth0\",family=\"IPv4\"} 4".into(),
            "vrrpd_check_up{check=\"chk\",kind=\"tcp\"} 0".into(),
            "vrrpd_check_runs_total{check=\"chk\",kind=\"tcp\"} 7".into(),
            "vrrpd_reloads_total{result=\"success\"} 2".into(),
            "vrrpd_reloads_total{result=\"failure\"} 1".into(),
            "vrrpd_start_time_seconds 1700000000.5".into(),
            "# TYPE vrrpd_instance_transitions_total counter".into(),
            "# TYPE vrrpd_instance_state gauge".into(),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line}\n{text}");
        }
        // No last transition recorded: no sample, but the family is still declared.
        assert!(!text.contains("vrrpd_instance_last_transition_timestamp_seconds{"));
        // Every sample belongs to the family declared above it; every family once.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name.to_owned()), "{name} twice");
                declared.push(name.to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(&name.to_owned()), declared.last(), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
