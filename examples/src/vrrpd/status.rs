//! The status of a running vrrpd: what `vrrpd --status` prints (JSON) and what the metrics
//! endpoint renders ([`super::metrics`]), both from one [`Status`].
//!
//! The JSON is the serialisation of these types, field for field: an instance's `state` is
//! `MASTER`, `BACKUP`, `FAULT` or `INIT`; times are seconds (`*_unix` since the Unix epoch,
//! `*_ago` before the status was taken); intervals are milliseconds. A value the daemon could
//! not learn (a driver that did not answer, a netlink error) is `null`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use health_check::Health;
use ip_manager::AnnounceStats;
use ip_manager::failover::ReconcileStats;
use ip_manager::failover::SecondOwnerStats;
use serde::Serialize;
use vrrp_core::driver::{DriverStats, RouterSnapshot};
use vrrp_core::{Reason, State};

use super::config::{self, CheckKind, Instance};

/// Everything `vrrpd --status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The daemon's process id.
    pub pid: u32,
    /// The configuration file it runs (and reloads on SIGHUP).
    pub config_file: String,
    /// When it started.
    pub started_unix: f64,
    /// For how long it has run.
    pub uptime_seconds: f64,
    /// Its reloads.
    pub reloads: Reloads,
    /// The virtual routers, by name.
    pub instances: Vec<InstanceStatus>,
    /// One driver (raw socket) per interface and address family.
    pub drivers: Vec<DriverStatus>,
    /// The `[[check]]`s, by name.
    pub checks: Vec<CheckStatus>,
}

/// The SIGHUP reloads so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reloads {
    /// Reloads applied.
    pub succeeded: u64,
    /// Reloads refused (the file did not parse or an instance could not be set up); the
    /// configuration before them kept running.
    pub failed: u64,
    /// The latest one.
    pub last: Option<LastReload>,
}

/// The latest reload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastReload {
    /// Applied or not.
    pub ok: bool,
    /// When.
    pub unix_time: f64,
    /// Why it was refused (`file:line:column: key: message` for the file's mistakes).
    pub errors: Vec<String>,
}

/// One virtual router.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStatus {
    /// `name` in the file.
    pub name: String,
    /// The interface.
    pub interface: String,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// The VRID.
    pub vrid: u8,
    /// The VRRP version (2 or 3).
    pub version: u8,
    /// `MASTER`, `BACKUP`, `FAULT` or `INIT`.
    pub state: Option<String>,
    /// The configured priority.
    pub base_priority: u8,
    /// The priority advertised now: base plus the weights of the tracked objects, 1..=254
    /// (255 for the address owner).
    pub effective_priority: Option<u8>,
    /// The configured advertisement interval, in milliseconds.
    pub advert_interval_ms: u64,
    /// Master_Adver_Interval (the Master's, learned from its adverts in VRRPv3), in ms.
    pub master_adver_interval_ms: Option<u64>,
    /// Whether a higher priority takes over from a lower Master.
    pub preempt: bool,
    /// The virtual addresses and whether this host holds each now.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Whether this host holds every virtual address.
    pub holds_virtual_addresses: Option<bool>,
    /// The interface's link as the router last heard it.
    pub link_up: Option<bool>,
    /// The `track` entries: check, weight, and its state as the router last heard it.
    pub tracked_checks: Vec<Tracked>,
    /// The `track_interfaces` entries (`up` is `null` until their link state is reported).
    pub tracked_interfaces: Vec<Tracked>,
    /// The latest state change seen since the instance started.
    pub last_transition: Option<TransitionStatus>,
    /// The router's counters.
    pub counters: Option<Counters>,
    /// The gratuitous ARPs / unsolicited NAs sent after takeovers (`null` for a `vip_backend`
    /// that does not announce).
    pub announcements: Option<Announcements>,
    /// What the reconciliation of the virtual addresses did (`null` for a `vip_backend` that
    /// cannot be observed: `exec`).
    pub reconciliation: Option<Reconciliation>,
    /// Split brain seen on the wire: another host answering for a virtual address while this
    /// one is Master (`null` without `second_owner_probe`).
    pub second_owner: Option<SecondOwner>,
}

/// The desired-versus-actual reconciliation of an instance's virtual addresses since it
/// started: an address deleted behind the Master's back (`ip addr del`, an interface flushed)
/// put back and announced again; one found while not Master (left by a crash) removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Addresses put back on the Master.
    pub restored: u64,
    /// Addresses removed while not Master.
    pub stale_removed: u64,
    /// Checks run (on every notification that may concern an address, and every period).
    pub checks: u64,
    /// Reads, restores or removals that failed (each logged).
    pub failures: u64,
    /// How long the last restore took (check, add, announce), in milliseconds.
    pub last_restore_ms: Option<f64>,
}

/// The probes of a Master's addresses for a second holder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondOwner {
    /// Rounds of probes sent.
    pub probes: u64,
    /// Episodes so far (one per address and other holder).
    pub episodes: u64,
    /// Of those, the ones going on now.
    pub now: u64,
}

/// An instance's announcements since it started (or since its `garp` last changed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Announcements {
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames given up after two failed sends (the rest of the sequence still went out).
    pub frames_failed: u64,
    /// Frames sent on the second try (the first returned an error left over on the socket,
    /// typically by a link that went down and up).
    pub frames_retried: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// A virtual address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualAddress {
    /// `10.99.0.200/24`.
    pub address: String,
    /// Whether it is on the interface now.
    pub held: Option<bool>,
}

/// A tracked check or interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracked {
    /// Its name.
    pub name: String,
    /// Its weight (0: FAULT while down).
    pub weight: i16,
    /// Up or down.
    pub up: Option<bool>,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionStatus {
    /// The state left.
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Why (as in the log).
    pub reason: String,
    /// How long ago.
    pub seconds_ago: f64,
    /// When.
    pub unix_time: f64,
}

/// What a router counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counters {
    /// Adverts handed to the router (its VRID).
    pub adverts_received: u64,
    /// Adverts that passed every check.
    pub adverts_accepted: u64,
    /// Adverts sent (one per destination).
    pub adverts_sent: u64,
    /// State changes.
    pub transitions: u64,
    /// Times it became Master.
    pub became_master: u64,
    /// Split brains heard as Master: another Master advertising a losing priority, not
    /// stepping down (episodes so far, and going on now).
    pub split_brains: u64,
    /// Of those, the ones going on now.
    pub split_brains_now: u64,
    /// Adverts dropped, by reason (`ttl`, `checksum`, `authentication`, ...).
    pub dropped: BTreeMap<String, u64>,
    /// All drops.
    pub dropped_total: u64,
    /// Time spent in each state (up to the router's latest input), in seconds.
    pub seconds_in: BTreeMap<String, f64>,
}

/// One driver: a raw socket on one interface for one address family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverStatus {
    /// The interface.
    pub interface: String,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// The VRIDs it serves.
    pub vrids: Vec<u8>,
    /// Datagrams that were not VRRP over IP at all.
    pub malformed: Option<u64>,
    /// Adverts for a VRID no instance here serves.
    pub unknown_vrid: Option<u64>,
    /// Adverts that could not be sent.
    pub send_errors: Option<u64>,
}

/// One `[[check]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckStatus {
    /// Its name.
    pub name: String,
    /// `process`, `exec`, `tcp`, `http` or `icmp`.
    pub kind: &'static str,
    /// Up or down (after rise/fall).
    pub up: bool,
    /// Checks run.
    pub checks_run: u64,
    /// The last failure's text.
    pub last_error: Option<String>,
    /// When `up` last changed (or the monitor started).
    pub since_unix: f64,
}

impl Status {
    /// The status as one line of JSON.
    pub fn to_json(&self) -> String {
        // Strings, numbers, maps with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The latest state change of an instance, as the daemon recorded it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Transition {
    pub(super) from: State,
    pub(super) to: State,
    pub(super) reason: Reason,
    pub(super) at: SystemTime,
}

/// What [`instance`] needs besides the configuration.
#[derive(Debug, Default)]
pub(super) struct Live<'a> {
    pub(super) router: Option<&'a RouterSnapshot>,
    pub(super) held: Option<&'a [bool]>,
    pub(super) last: Option<&'a Transition>,
    /// Link states of the tracked interfaces, by name.
    pub(super) links: Option<&'a BTreeMap<String, bool>>,
    /// The instance's announcer's tally.
    pub(super) announced: Option<AnnounceStats>,
    /// The instance's reconciler's tally.
    pub(super) reconciled: Option<ReconcileStats>,
    /// Its second-holder probes' counters.
    pub(super) second_owner: Option<SecondOwnerStats>,
}

/// Seconds since the Unix epoch (0 for a time before it).
pub(super) fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn family(ipv6: bool) -> &'static str {
    if ipv6 { "IPv6" } else { "IPv4" }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One instance's status from its configuration and what the daemon learned about it.
pub(super) fn instance(i: &Instance, live: &Live<'_>, now: SystemTime) -> InstanceStatus {
    let r = live.router;
    let virtual_addresses: Vec<VirtualAddress> = i
        .virtual_addresses
        .iter()
        .enumerate()
        .map(|(k, (a, len))| VirtualAddress {
            address: format!("{a}/{len}"),
            held: live.held.and_then(|h| h.get(k).copied()),
        })
        .collect();
    let holds = live.held.map(|h| !h.is_empty() && h.iter().all(|&x| x));
    InstanceStatus {
        name: i.name.clone(),
        interface: i.interface.clone(),
        family: family(i.is_ipv6()),
        vrid: i.vrid,
        version: i.version,
        state: r.map(|r| r.state.to_string()),
        base_priority: i.priority,
        effective_priority: r.map(|r| r.priority.get()),
        advert_interval_ms: millis(i.advert_interval),
        master_adver_interval_ms: r.map(|r| millis(r.master_adver_interval.as_duration())),
        preempt: i.preempt,
        virtual_addresses,
        holds_virtual_addresses: holds,
        link_up: r.map(|r| r.link_up),
        tracked_checks: i
            .track
            .iter()
            .enumerate()
            .map(|(k, (name, weight))| Tracked {
                name: name.clone(),
                weight: *weight,
                up: r.and_then(|r| r.trackers_up.get(k).copied()),
            })
            .collect(),
        tracked_interfaces: i
            .track_interfaces
            .iter()
            .map(|(name, weight)| Tracked {
                name: name.clone(),
                weight: *weight,
                up: live.links.and_then(|l| l.get(name).copied()),
            })
            .collect(),
        last_transition: live.last.map(|t| TransitionStatus {
            from: t.from.to_string(),
            to: t.to.to_string(),
            reason: t.reason.to_string(),
            seconds_ago: now.duration_since(t.at).unwrap_or_default().as_secs_f64(),
            unix_time: unix(t.at),
        }),
        announcements: live.announced.as_ref().map(|a| Announcements {
            frames_sent: a.frames_sent,
            frames_failed: a.frames_failed,
            frames_retried: a.frames_retried,
            last_error: a.last_error.clone(),
        }),
        reconciliation: live.reconciled.as_ref().map(|s| Reconciliation {
            restored: s.restored,
            stale_removed: s.stale_removed,
            checks: s.checks,
            failures: s.failures,
            last_restore_ms: s.last_restore.map(|d| d.as_secs_f64() * 1000.0),
        }),
        second_owner: live.second_owner.map(|s| SecondOwner {
            probes: s.probes,
            episodes: s.episodes,
            now: s.open,
        }),
        counters: r.map(|r| {
            let s = &r.stats;
            Counters {
                adverts_received: s.received,
                adverts_accepted: s.accepted,
                adverts_sent: s.sent,
                transitions: s.transitions,
                became_master: s.became_master,
                split_brains: s.split_brains,
                split_brains_now: s.split_brains_open,
                dropped: s
                    .dropped
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), *v))
                    .collect(),
                dropped_total: s.dropped_total(),
                seconds_in: State::ALL
                    .iter()
                    .map(|st| (st.to_string(), s.time_in(*st).as_secs_f64()))
                    .collect(),
            }
        }),
    }
}

/// One driver's status; `stats` is `None` when it did not answer.
pub(super) fn driver(
    interface: &str,
    ipv6: bool,
    vrids: Vec<u8>,
    stats: Option<DriverStats>,
) -> DriverStatus {
    DriverStatus {
        interface: interface.to_owned(),
        family: family(ipv6),
        vrids,
        malformed: stats.map(|s| s.malformed),
        unknown_vrid: stats.map(|s| s.unknown_vrid),
        send_errors: stats.map(|s| s.send_errors),
    }
}

/// One check's status from its monitor's.
pub(super) fn check(c: &config::Check, s: &health_check::Status) -> CheckStatus {
    CheckStatus {
        name: c.name.clone(),
        kind: match c.kind {
            CheckKind::Process(_) | CheckKind::PidFile(_) => "process",
            CheckKind::Exec(_) => "exec",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Http(..) => "http",
            CheckKind::Icmp(_) => "icmp",
        },
        up: s.health == Health::Up,
        checks_run: s.checks,
        last_error: s.last_error.clone(),
        since_unix: unix(s.since_system),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use vrrp_core::Router;
    use vrrp_core::packet::{Priority, Vrid};

    /// An instance as the config loader makes it: `VI_1` on eth0, VRID 51, priority 101,
    /// tracking `chk` with weight -20.
    pub(crate) fn instance_config() -> Instance {
        let text = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 101\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"10.99.0.200/24\"]\ntrack = [{ check = \"chk\", weight = -20 }]\ntrack_interfaces = [{ name = \"eth1\", weight = 0 }]\n[[check]]\nname = \"chk\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
        crate::vrrpd::config::parse("t.toml", text)
            .expect("valid")
            .instances
            .remove(0)
    }

    /// A router of that instance, started (Backup: one transition) and told its check is
    /// down (priority 101 - 20).
    pub(crate) fn backup_router() -> Router {
        let i = instance_config();
        let mut c = vrrp_core::Config::new(
            Vrid::new(i.vrid).expect("51"),
            "10.99.0.11".parse().unwrap(),
            vec![i.virtual_addresses[0].0],
        );
        c.priority = Priority::new(i.priority);
        c.advert_interval =
            vrrp_core::packet::AdvertInterval::try_from(i.advert_interval).expect("100ms");
        c.trackers = vec![vrrp_core::router::Tracker::new("chk", -20)];
        let mut r = Router::new(c).expect("valid");
        let now = std::time::Instant::now();
        r.startup(now);
        r.set_tracker(now, 0, false);
        r
    }

    #[test]
    fn an_instance_renders_its_config_router_and_last_transition_as_json() {
        let i = instance_config();
        let router = backup_router();
        let snap = RouterSnapshot::of(&router);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let last = Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup,
            at,
        };
        let links = BTreeMap::from([("eth1".to_owned(), true)]);
        let live = Live {
            router: Some(&snap),
            held: Some(&[false]),
            last: Some(&last),
            links: Some(&links),
            announced: Some(AnnounceStats::default()),
            reconciled: Some(ReconcileStats::default()),
            second_owner: None,
        };
        let s = instance(&i, &live, at + Duration::from_millis(2500));
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&s).expect("serialises"))
                .expect("valid JSON");
        let want = serde_json::json!({
            "name": "VI_1", "interface": "eth0", "family": "IPv4", "vrid": 51, "version": 3,
            "state": "BACKUP", "base_priority": 101, "effective_priority": 81,
            "advert_interval_ms": 100, "master_adver_interval_ms": 100, "preempt": true,
            "virtual_addresses": [{ "address": "10.99.0.200/24", "held": false }],
            "holds_virtual_addresses": false, "link_up": true,
            "tracked_checks": [{ "name": "chk", "weight": -20, "up": false }],
            "tracked_interfaces": [{ "name": "eth1", "weight": 0, "up": true }],
            "last_transition": {
                "from": "INIT", "to": "BACKUP", "reason": "startup",
                "seconds_ago": 2.5, "unix_time": 1_700_000_000.0
            },
            "counters": {
                "adverts_received": 0, "adverts_accepted": 0, "adverts_sent": 0,
                "transitions": 1, "became_master": 0, "split_brains": 0,
                "split_brains_now": 0, "dropped": {}, "dropped_total": 0,
                "seconds_in": { "INIT": 0.0, "BACKUP": 0.0, "MASTER": 0.0, "FAULT": 0.0 }
            },
            "announcements": {
                "frames_sent": 0, "frames_failed": 0, "frames_retried": 0, "last_error": null
            },
            "reconciliation": {
                "restored": 0, "stale_removed": 0, "checks": 0, "failures": 0,
                "last_restore_ms": null
            },
            "second_owner": null
        });
        assert_eq!(json, want);
    }

    #[test]
    fn what_the_daemon_could_not_learn_is_null() {
        let s = instance(&instance_config(), &Live::default(), SystemTime::now());
        let json = serde_json::to_value(&s).expect("serialises");
        for key in [
            "state",
            "effective_priority",
            "holds_virtual_addresses",
            "link_up",
            "last_transition",
            "counters",
            "announcements",
            "reconciliation",
            "second_owner",
        ] {
            assert!(json[key].is_null(), "{key}: {}", json[key]);
        }
        assert!(json["tracked_checks"][0]["up"].is_null());
        let d = serde_json::to_value(driver("eth0", true, vec![51], None)).expect("serialises");
        assert_eq!(
            d,
            serde_json::json!({"interface": "eth0", "family": "IPv6", "vrids": [51],
                "malformed": null, "unknown_vrid": null, "send_errors": null})
        );
    }
}
