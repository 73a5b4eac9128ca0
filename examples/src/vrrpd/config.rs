//! The vrrpd configuration file (TOML, keys as in the project's DESIGN.md), checked as a whole:
//! every mistake is reported with `file:line:column`, the key, what is wrong and the fix, and
//! all of them at once rather than the first.
//!
//! Besides `[[instance]]`, `[[sync_group]]` and `[[check]]`, two optional daemon-wide keys,
//! written before the first table:
//!
//! ```toml
//! status_socket = "/run/vrrpd/vrrpd.sock"   # the default; `vrrpd --status` reads it
//! metrics = { bind = "127.0.0.1:9650" }     # Prometheus text at GET /metrics; off by default
//! ```
//!
//! - `status_socket`: an absolute path for the unix socket (mode 0600, so only root reads it)
//!   that answers every connection with one JSON document (each instance's state, priorities,
//!   tracked checks, last transition and counters) and closes it. The directory is created
//!   if missing. Run two daemons on one host with two paths.
//! - `metrics.bind`: the address of a plain-HTTP Prometheus endpoint. Any address is
//!   accepted, but the endpoint has no authentication: a non-loopback address draws a
//!   warning.
//!
//! And the crash guard (see `ip_manager::guard`), on by default:
//!
//! ```toml
//! crash_guard = true          # the default: priority 0 and the addresses removed on a crash
//! crash_hold_down = "30s"     # the default: after a crash while Master, stay Backup this long
//! ```
//!
//! - `crash_guard`: a tiny process forked at start that, when vrrpd dies without its clean
//!   stop (SIGKILL, the OOM killer, a segfault), sends the priority-0 advertisement of every
//!   instance that was Master and removes their virtual addresses: the Backup takes over after
//!   Skew_Time instead of Master_Down_Interval. Its file is the status socket's path with the
//!   extension `guard` (`/run/vrrpd/vrrpd.guard`); it also tells the next run which instances
//!   were Master when the last one died.
//! - `crash_hold_down`: an instance that was Master when the last run died starts at priority
//!   1 for this long (the tracked object `crash-hold-down`, weight -254, down): it stays
//!   Backup while a peer is Master, so a crash and a supervisor's restart move the address
//!   once, not back again at once (and a crash loop does not flap it). It still takes over if
//!   no peer is there. `"0s"`: no hold-down (preemption as configured).
//!
//! All are read at start; a reload (SIGHUP) that changes them logs that a restart is needed.
//!
//! `[alerts]` (see [`crate::alerts`]) mails and/or posts every state change of every
//! instance (keepalived's `notification_email` with `smtp_alert`); an instance with
//! `alerts = false` is left out. Read at start, like the keys above.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::vip_backend::{self, VipBackend, VipBackendToml};
pub use crate::diagnostics::ConfigError;
pub(crate) use crate::diagnostics::Report;
use crate::diagnostics::{duration_of, integer_in};

/// Where the status socket is when the file does not say (`status_socket`).
pub const DEFAULT_STATUS_SOCKET: &str = "/run/vrrpd/vrrpd.sock";

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The unix socket that answers with the JSON status (`status_socket`).
    pub status_socket: PathBuf,
    /// The address of the Prometheus endpoint (`metrics.bind`), if any.
    pub metrics: Option<SocketAddr>,
    /// Mails and webhooks on state changes (`[alerts]`), if any.
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// Whether the crash guard runs (`crash_guard`).
    pub crash_guard: bool,
    /// How long an instance that was Master when the last run died stays at priority 1
    /// (`crash_hold_down`).
    pub crash_hold_down: Duration,
    /// The virtual routers.
    pub instances: Vec<Instance>,
    /// Groups of instances that change state together.
    pub sync_groups: Vec<SyncGroup>,
    /// Health checks that instances track.
    pub checks: Vec<Check>,
    /// Things that work but are probably not what was meant (keepalived logs these too).
    pub warnings: Vec<ConfigError>,
}

impl crate::cli::Checked for Config {
    fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    fn summary(&self) -> String {
        format!("{} instance(s)", self.instances.len())
    }
}

/// One virtual router (`[[instance]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Its name (`VI_1`), for logs, notify scripts and sync groups.
    pub name: String,
    /// The interface it runs on.
    pub interface: String,
    /// The virtual router id.
    pub vrid: u8,
    /// Its priority (255: the address owner).
    pub priority: u8,
    /// 2 or 3.
    pub version: u8,
    /// The advertisement interval.
    pub advert_interval: Duration,
    /// Whether a higher priority takes over from a lower Master.
    pub preempt: bool,
    /// How long to wait before preempting.
    pub preempt_delay: Duration,
    /// Whether a preempting Backup takes over as soon as the Master advertises a lower
    /// priority (a tracked check failed there), instead of after Master_Down_Interval as
    /// RFC 5798 and keepalived do. Default true: the handover takes milliseconds, not 3.6 s.
    pub preempt_on_lower_advert: bool,
    /// Whether it runs on the virtual router MAC (keepalived's `use_vmac`): a macvlan
    /// `vrrp.VRID` (`vrrp6.VRID`) on the interface carries the addresses, the adverts and the
    /// announcements. Default false.
    pub virtual_mac: bool,
    /// Whether the Master probes its addresses for a second holder (ARP probe / neighbour
    /// solicitation once per advert interval, 100 ms at the least): a split brain that VRRP
    /// cannot see when its adverts are blocked both ways. Netlink backend only. Default true.
    pub second_owner_probe: bool,
    /// The virtual addresses with their prefix lengths.
    pub virtual_addresses: Vec<(IpAddr, u8)>,
    /// The source of unicast adverts (default: the interface's address).
    pub unicast_source: Option<IpAddr>,
    /// Unicast peers; adverts go unicast when there are some.
    pub unicast_peers: Vec<IpAddr>,
    /// VRRPv2 simple password.
    pub auth_pass: Option<String>,
    /// VRRPv3-over-IPv4 checksum mode (`pseudo-header`, `rfc9568`, `accept-either`).
    pub checksum: String,
    /// Tracked checks and their weights (0: FAULT while down).
    pub track: Vec<(String, i16)>,
    /// Tracked interfaces and their weights.
    pub track_interfaces: Vec<(String, i16)>,
    /// Gratuitous ARP / unsolicited NA after takeover: count and the delay before the repeat.
    pub garp_repeat: u32,
    /// The delay before the second burst.
    pub garp_delay: Duration,
    /// Where the virtual addresses go on a takeover (`vip_backend`; netlink by default).
    pub vip_backend: VipBackend,
    /// Notify commands (shell command lines, as keepalived's).
    pub notify_master: Option<String>,
    /// On entering Backup.
    pub notify_backup: Option<String>,
    /// On entering Fault.
    pub notify_fault: Option<String>,
    /// Whether its state changes go to `[alerts]` (`alerts`, default true; keepalived's
    /// per-instance `smtp_alert`).
    pub alerts: bool,
}

impl Instance {
    /// The interface its adverts, addresses and announcements use: its macvlan with
    /// `virtual_mac` (`vrrp.51`, `vrrp6.51`: `ip_manager::virtual_mac_name`),
    /// else `interface`.
    pub fn runs_on(&self) -> String {
        if self.virtual_mac {
            ip_manager::virtual_mac_name(self.vrid, self.is_ipv6())
        } else {
            self.interface.clone()
        }
    }

    /// The address family of its virtual addresses.
    pub fn is_ipv6(&self) -> bool {
        self.virtual_addresses
            .first()
            .is_some_and(|(a, _)| a.is_ipv6())
    }
}

/// `[[sync_group]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Its name.
    pub name: String,
    /// The instances in it.
    pub instances: Vec<String>,
}

/// `[[check]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name, as `track` refers to it.
    pub name: String,
    /// What it checks.
    pub kind: CheckKind,
    /// Between checks.
    pub interval: Duration,
    /// One check's limit.
    pub timeout: Duration,
    /// Successes to come up.
    pub rise: u32,
    /// Failures to go down.
    pub fall: u32,
}

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A process by name (`killall -0 NAME`).
    Process(String),
    /// The process whose pid a file holds (`kill -0 $(cat FILE)`).
    PidFile(std::path::PathBuf),
    /// A command line run through the shell, as keepalived's `vrrp_script`.
    Exec(String),
    /// A TCP connect.
    Tcp(std::net::SocketAddr),
    /// An HTTP GET: address and path.
    Http(std::net::SocketAddr, String),
    /// An ICMP echo (IPv4 or IPv6) answered within the timeout: the default-gateway check
    /// that puts a cut-off host in FAULT (weight 0) instead of leaving it Master.
    Icmp(std::net::IpAddr),
}

// ---- the file as written ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    status_socket: Option<Spanned<String>>,
    metrics: Option<Spanned<MetricsToml>>,
    alerts: Option<crate::alerts::AlertsToml>,
    crash_guard: Option<bool>,
    crash_hold_down: Option<Spanned<String>>,
    #[serde(default)]
    instance: Vec<InstanceToml>,
    #[serde(default)]
    sync_group: Vec<SyncGroupToml>,
    #[serde(default)]
    check: Vec<CheckToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsToml {
    bind: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceToml {
    name: Spanned<String>,
    interface: Spanned<String>,
    vrid: Spanned<i64>,
    priority: Option<Spanned<i64>>,
    version: Option<Spanned<i64>>,
    advert_interval: Option<Spanned<String>>,
    preempt: Option<bool>,
    preempt_delay: Option<Spanned<String>>,
    preempt_on_lower_advert: Option<bool>,
    virtual_mac: Option<bool>,
    second_owner_probe: Option<bool>,
    virtual_addresses: Spanned<Vec<Spanned<String>>>,
    unicast_source: Option<Spanned<String>>,
    #[serde(default)]
    unicast_peers: Vec<Spanned<String>>,
    auth_pass: Option<Spanned<String>>,
    checksum: Option<Spanned<String>>,
    #[serde(default)]
    track: Vec<Spanned<TrackToml>>,
    #[serde(default)]
    track_interfaces: Vec<Spanned<TrackInterfaceToml>>,
    garp: Option<Spanned<GarpToml>>,
    vip_backend: Option<Spanned<VipBackendToml>>,
    notify: Option<NotifyToml>,
    alerts: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackToml {
    check: String,
    #[serde(default)]
    weight: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackInterfaceToml {
    name: String,
    #[serde(default)]
    weight: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GarpToml {
    repeat: Option<Spanned<i64>>,
    delay: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyToml {
    master: Option<String>,
    backup: Option<String>,
    fault: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncGroupToml {
    name: Spanned<String>,
    instances: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckToml {
    name: Spanned<String>,
    kind: Spanned<String>,
    process: Option<Spanned<String>>,
    pid_file: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    rise: Option<Spanned<i64>>,
    fall: Option<Spanned<i64>>,
}

// ---- checking -----------------------------------------------------------------------------

/// Parses and checks `text` (from `file`, for the messages).
pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
    let (mut r, raw): (_, FileToml) = crate::diagnostics::parse_toml(file, text)?;
    let (status_socket, metrics) = check_daemon_keys(&mut r, &raw);
    let alerts = raw
        .alerts
        .as_ref()
        .and_then(|a| crate::alerts::check(&mut r, a));
    let crash_hold_down = duration_of(
        &mut r,
        &raw.crash_hold_down,
        "crash_hold_down".into(),
        ip_manager::guard::DEFAULT_HOLD_DOWN,
    );
    let checks = check_checks(&mut r, &raw.check);
    // Every declared check counts, even one with mistakes (reported already), so that the
    // instances tracking it do not add a second, misleading error.
    let check_names: HashSet<&str> = raw
        .check
        .iter()
        .map(|c| c.name.get_ref().as_str())
        .collect();
    let mut instances = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut vrids: HashMap<(String, u8, bool), String> = HashMap::new();
    for (i, t) in raw.instance.iter().enumerate() {
        // Cross-instance checks use the values as written, so that they are reported even for
        // an instance with other mistakes.
        let name = t.name.get_ref();
        if names.insert(name.clone(), i).is_some() {
            r.at(
                t.name.span(),
                format!("instance[{i}].name"),
                format!("{name:?} is used by another instance: names must be unique"),
            );
        }
        let ipv6 = t
            .virtual_addresses
            .get_ref()
            .iter()
            .find_map(|v| parse_cidr(v.get_ref()).ok())
            .is_some_and(|(a, _)| a.is_ipv6());
        if let Ok(vrid) = u8::try_from(*t.vrid.get_ref()) {
            let slot = (t.interface.get_ref().clone(), vrid, ipv6);
            if let Some(other) = vrids.insert(slot, name.clone()) {
                r.at(
                    t.vrid.span(),
                    format!("instance[{i}].vrid"),
                    format!(
                        "VRID {vrid} is already used on {} by instance {other:?}: one VRID per interface and address family",
                        t.interface.get_ref()
                    ),
                );
            }
        }
        if let Some(instance) = check_instance(&mut r, i, t, &check_names) {
            instances.push(instance);
        }
    }
    let mut sync_groups = Vec::new();
    for (g, t) in raw.sync_group.iter().enumerate() {
        for (k, member) in t.instances.iter().enumerate() {
            if !names.contains_key(member.get_ref()) {
                // keepalived ignores such a member with a warning; so do we.
                r.warn(
                    member.span(),
                    format!("sync_group[{g}].instances[{k}]"),
                    format!("no instance named {:?}: ignored", member.get_ref()),
                );
            }
        }
        sync_groups.push(SyncGroup {
            name: t.name.get_ref().clone(),
            instances: t
                .instances
                .iter()
                .map(|m| m.get_ref().clone())
                .filter(|m| names.contains_key(m))
                .collect(),
        });
    }
    if r.errors.is_empty() {
        Ok(Config {
            status_socket,
            metrics,
            alerts,
            crash_guard: raw.crash_guard.unwrap_or(true),
            crash_hold_down,
            instances,
            sync_groups,
            checks,
            warnings: r.warnings,
        })
    } else {
        Err(r.errors)
    }
}

/// `status_socket` and `metrics`.
fn check_daemon_keys(r: &mut Report<'_>, raw: &FileToml) -> (PathBuf, Option<SocketAddr>) {
    let status_socket = match &raw.status_socket {
        None => PathBuf::from(DEFAULT_STATUS_SOCKET),
        Some(p) => {
            let path = p.get_ref();
            // sun_path holds 108 bytes with the terminating NUL.
            if !path.starts_with('/') || path.len() > 107 {
                r.at(
                    p.span(),
                    "status_socket".into(),
                    format!("{path:?}: an absolute path of at most 107 bytes, e.g. \"{DEFAULT_STATUS_SOCKET}\""),
                );
            }
            PathBuf::from(path)
        }
    };
    let metrics = raw.metrics.as_ref().and_then(|m| {
        let bind = &m.get_ref().bind;
        match bind.get_ref().parse::<SocketAddr>() {
            Ok(a) => {
                if !a.ip().is_loopback() {
                    r.warn(
                        bind.span(),
                        "metrics.bind".into(),
                        format!("{a} is not a loopback address: anyone who reaches it reads the metrics (there is no authentication)"),
                    );
                }
                Some(a)
            }
            Err(_) => {
                r.at(
                    bind.span(),
                    "metrics.bind".into(),
                    format!(
                        "{:?} is not IP:port: write e.g. \"127.0.0.1:9650\"",
                        bind.get_ref()
                    ),
                );
                None
            }
        }
    });
    (status_socket, metrics)
}

/// The `status_socket` of a configuration file, read leniently for `vrrpd --status`: the
/// default when the key is missing or the file does not parse (the daemon may run an older,
/// valid version of it).
pub fn status_socket_of(text: &str) -> PathBuf {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("status_socket")?.as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATUS_SOCKET))
}

fn check_instance(
    r: &mut Report<'_>,
    i: usize,
    t: &InstanceToml,
    checks: &HashSet<&str>,
) -> Option<Instance> {
    let key = |k: &str| format!("instance[{i}].{k}");
    let errors_before = r.errors.len();
    let vrid = *t.vrid.get_ref();
    if !(1..=255).contains(&vrid) {
        r.at(
            t.vrid.span(),
            key("vrid"),
            format!("{vrid} is out of range: a VRID is 1 to 255"),
        );
    }
    let priority = integer_in(r, &t.priority, key("priority"), 100, 1..=255, |p| {
        format!("{p} is out of range: 1 to 254, or 255 for the address owner")
    });
    let version = t.version.as_ref().map_or(3, |v| *v.get_ref());
    if let Some(v) = &t.version
        && version != 2
        && version != 3
    {
        r.at(
            v.span(),
            key("version"),
            format!("{version}: VRRP version is 2 or 3"),
        );
    }
    let advert_interval = duration_of(
        r,
        &t.advert_interval,
        key("advert_interval"),
        Duration::from_secs(1),
    );
    if let Some(a) = &t.advert_interval {
        let ms = advert_interval.as_millis();
        if version == 2 && (!ms.is_multiple_of(1000) || !(1..=255).contains(&(ms / 1000))) {
            r.at(a.span(), key("advert_interval"), format!(
                "{:?}: VRRPv2 adverts are whole seconds from 1s to 255s; use version = 3 for sub-second intervals",
                a.get_ref()
            ));
        } else if version == 3 && (!ms.is_multiple_of(10) || !(10..=40_950).contains(&ms)) {
            r.at(
                a.span(),
                key("advert_interval"),
                format!(
                    "{:?}: VRRPv3 adverts are 10ms to 40950ms in steps of 10ms",
                    a.get_ref()
                ),
            );
        }
    }
    let preempt_delay = duration_of(r, &t.preempt_delay, key("preempt_delay"), Duration::ZERO);
    let mut virtual_addresses = Vec::new();
    if t.virtual_addresses.get_ref().is_empty() {
        r.at(
            t.virtual_addresses.span(),
            key("virtual_addresses"),
            "is empty: give at least one address, e.g. [\"10.0.0.200/24\"]".into(),
        );
    }
    for (k, v) in t.virtual_addresses.get_ref().iter().enumerate() {
        match parse_cidr(v.get_ref()) {
            Ok(a) => virtual_addresses.push(a),
            Err(e) => r.at(v.span(), format!("instance[{i}].virtual_addresses[{k}]"), e),
        }
    }
    let ipv6 = virtual_addresses.first().is_some_and(|(a, _)| a.is_ipv6());
    for (k, (a, _)) in virtual_addresses.iter().enumerate() {
        if a.is_ipv6() != ipv6 {
            r.at(
                t.virtual_addresses.get_ref()[k].span(),
                format!("instance[{i}].virtual_addresses[{k}]"),
                "mixes IPv4 and IPv6: an instance is one address family; use two instances".into(),
            );
        }
    }
    if ipv6 && version == 2 {
        r.at(
            t.virtual_addresses.span(),
            key("virtual_addresses"),
            "IPv6 needs VRRPv3: set version = 3".into(),
        );
    }
    let parse_ip =
        |r: &mut Report<'_>, s: &Spanned<String>, k: String| match s.get_ref().parse::<IpAddr>() {
            Ok(a) if a.is_ipv6() == ipv6 => Some(a),
            Ok(_) => {
                r.at(
                    s.span(),
                    k,
                    "is not of the virtual addresses' family".into(),
                );
                None
            }
            Err(_) => {
                r.at(
                    s.span(),
                    k,
                    format!("{:?} is not an IP address", s.get_ref()),
                );
                None
            }
        };
    let unicast_source = t
        .unicast_source
        .as_ref()
        .and_then(|s| parse_ip(r, s, key("unicast_source")));
    let unicast_peers: Vec<IpAddr> = t
        .unicast_peers
        .iter()
        .enumerate()
        .filter_map(|(k, s)| parse_ip(r, s, format!("instance[{i}].unicast_peers[{k}]")))
        .collect();
    if let Some(p) = &t.auth_pass {
        if version != 2 {
            // keepalived accepts and ignores it for VRRPv3, with a warning.
            r.warn(p.span(), key("auth_pass"), "ignored: VRRPv3 has no authentication (RFC 5798 removed it); set version = 2 to use it".into());
        }
        if p.get_ref().is_empty() || p.get_ref().len() > 8 {
            r.at(
                p.span(),
                key("auth_pass"),
                format!(
                    "is {} bytes: 1 to 8 (keepalived would silently cut it to 8 and stop matching)",
                    p.get_ref().len()
                ),
            );
        }
    }
    let checksum = t
        .checksum
        .as_ref()
        .map_or("pseudo-header", |c| c.get_ref().as_str())
        .to_owned();
    if let Some(c) = &t.checksum
        && !["pseudo-header", "rfc9568", "accept-either"].contains(&c.get_ref().as_str())
    {
        r.at(
            c.span(),
            key("checksum"),
            format!(
                "{:?}: one of \"pseudo-header\" (keepalived, FRR), \"rfc9568\", \"accept-either\"",
                c.get_ref()
            ),
        );
    }
    let weight = |r: &mut Report<'_>, w: i64, span: Range<usize>, k: String| match i16::try_from(w)
    {
        Ok(w) if (-254..=254).contains(&w) => w,
        _ => {
            r.at(
                span,
                k,
                format!("weight {w} is out of range: -254 to 254 (0: FAULT while down)"),
            );
            0
        }
    };
    let mut track = Vec::new();
    for (k, s) in t.track.iter().enumerate() {
        let tr = s.get_ref();
        if !checks.contains(tr.check.as_str()) {
            r.at(
                s.span(),
                format!("instance[{i}].track[{k}].check"),
                format!("no [[check]] named {:?}", tr.check),
            );
        }
        track.push((
            tr.check.clone(),
            weight(
                r,
                tr.weight,
                s.span(),
                format!("instance[{i}].track[{k}].weight"),
            ),
        ));
    }
    let mut track_interfaces = Vec::new();
    for (k, s) in t.track_interfaces.iter().enumerate() {
        let tr = s.get_ref();
        track_interfaces.push((
            tr.name.clone(),
            weight(
                r,
                tr.weight,
                s.span(),
                format!("instance[{i}].track_interfaces[{k}].weight"),
            ),
        ));
    }
    let (garp_repeat, garp_delay) = match &t.garp {
        None => (5, Duration::from_secs(5)),
        Some(g) => {
            let g = g.get_ref();
            let repeat = integer_in(r, &g.repeat, key("garp.repeat"), 5, 0..=100, |n| {
                format!("{n}: 0 to 100 announcements")
            });
            let delay = duration_of(r, &g.delay, key("garp.delay"), Duration::from_secs(5));
            (u32::try_from(repeat).unwrap_or(5), delay)
        }
    };
    let vip_backend = t.vip_backend.as_ref().map_or(VipBackend::Netlink, |b| {
        vip_backend::check(
            r,
            b,
            &vip_backend::Around {
                index: i,
                virtual_addresses: &virtual_addresses,
                virtual_addresses_span: t.virtual_addresses.span(),
                unicast: !unicast_peers.is_empty(),
                garp: t.garp.as_ref().map(Spanned::span),
            },
        )
    });
    if r.errors.len() != errors_before {
        return None;
    }
    Some(Instance {
        name: t.name.get_ref().clone(),
        interface: t.interface.get_ref().clone(),
        vrid: u8::try_from(vrid).unwrap_or(1),
        priority: u8::try_from(priority).unwrap_or(100),
        version: u8::try_from(version).unwrap_or(3),
        advert_interval,
        preempt: t.preempt.unwrap_or(true),
        preempt_delay,
        preempt_on_lower_advert: t.preempt_on_lower_advert.unwrap_or(true),
        virtual_mac: t.virtual_mac.unwrap_or(false),
        second_owner_probe: t.second_owner_probe.unwrap_or(true),
        virtual_addresses,
        unicast_source,
        unicast_peers,
        auth_pass: t
            .auth_pass
            .as_ref()
            .filter(|_| version == 2)
            .map(|p| p.get_ref().clone()),
        checksum,
        track,
        track_interfaces,
        garp_repeat,
        garp_delay,
        vip_backend,
        notify_master: t.notify.as_ref().and_then(|n| n.master.clone()),
        notify_backup: t.notify.as_ref().and_then(|n| n.backup.clone()),
        notify_fault: t.notify.as_ref().and_then(|n| n.fault.clone()),
        alerts: t.alerts.unwrap_or(true),
    })
}

fn check_checks(r: &mut Report<'_>, raw: &[CheckToml]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, t) in raw.iter().enumerate() {
        let key = |k: &str| format!("check[{i}].{k}");
        let before = r.errors.len();
        if !seen.insert(t.name.get_ref().clone()) {
            r.at(
                t.name.span(),
                key("name"),
                format!("{:?} is used by another check", t.name.get_ref()),
            );
        }
        let needs =
            |r: &mut Report<'_>, v: &Option<Spanned<String>>, what: &str| -> Option<String> {
                match v {
                    Some(v) => Some(v.get_ref().clone()),
                    None => {
                        r.at(
                            t.kind.span(),
                            key(what),
                            format!("a {:?} check needs `{what}`", t.kind.get_ref()),
                        );
                        None
                    }
                }
            };
        let addr = |r: &mut Report<'_>| -> Option<std::net::SocketAddr> {
            let a = needs(r, &t.address, "address")?;
            match a.parse() {
                Ok(a) => Some(a),
                Err(_) => {
                    let span = t.address.as_ref().map_or(t.kind.span(), Spanned::span);
                    r.at(span, key("address"), format!("{a:?} is not IP:port"));
                    None
                }
            }
        };
        let kind = match t.kind.get_ref().as_str() {
            "process" => match (&t.process, &t.pid_file) {
                (Some(name), None) => Some(CheckKind::Process(name.get_ref().clone())),
                (None, Some(file)) => Some(CheckKind::PidFile(file.get_ref().into())),
                (Some(_), Some(file)) => {
                    r.at(
                        file.span(),
                        key("pid_file"),
                        "a process check takes `process` (a name) or `pid_file`, not both".into(),
                    );
                    None
                }
                (None, None) => {
                    r.at(
                        t.kind.span(),
                        key("process"),
                        "a \"process\" check needs `process = \"NAME\"` or `pid_file = \"PATH\"`"
                            .into(),
                    );
                    None
                }
            },
            "exec" => needs(r, &t.command, "command").map(CheckKind::Exec),
            "tcp" => addr(r).map(CheckKind::Tcp),
            "icmp" => needs(r, &t.address, "address").and_then(|a| match a.parse() {
                Ok(ip) => Some(CheckKind::Icmp(ip)),
                Err(_) => {
                    let span = t.address.as_ref().map_or(t.kind.span(), Spanned::span);
                    let hint = "is not an IP address (an icmp check pings an address, no port)";
                    r.at(span, key("address"), format!("{a:?} {hint}"));
                    None
                }
            }),
            "http" => addr(r).map(|a| {
                CheckKind::Http(
                    a,
                    t.path
                        .as_ref()
                        .map_or("/".to_owned(), |p| p.get_ref().clone()),
                )
            }),
            other => {
                r.at(
                    t.kind.span(),
                    key("kind"),
                    format!("{other:?}: one of \"process\", \"exec\", \"tcp\", \"http\", \"icmp\""),
                );
                None
            }
        };
        let interval = duration_of(r, &t.interval, key("interval"), Duration::from_secs(2));
        let timeout = duration_of(r, &t.timeout, key("timeout"), interval);
        let count = |r: &mut Report<'_>, v: &Option<Spanned<i64>>, what: &str, default: u32| match v
        {
            None => default,
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    r.at(v.span(), key(what), format!("{}: at least 1", v.get_ref()));
                    default
                }
            },
        };
        let rise = count(r, &t.rise, "rise", 1);
        let fall = count(r, &t.fall, "fall", 1);
        if interval.is_zero() {
            let span = t.interval.as_ref().map_or(t.kind.span(), Spanned::span);
            r.at(
                span,
                key("interval"),
                "is zero: checks need a positive interval".into(),
            );
        }
        if let (Some(kind), true) = (kind, r.errors.len() == before) {
            out.push(Check {
                name: t.name.get_ref().clone(),
                kind,
                interval,
                timeout,
                rise,
                fall,
            });
        }
    }
    out
}

/// `10.0.0.200/24`, `fd00::1/64`, or a bare address (/32, /128).
fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an address: write e.g. \"10.0.0.200/24\""))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("{text:?}: the prefix length is 0 to {max}"))?,
    };
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::assert_mentions;

    /// The vrrpd example of the project's DESIGN.md, verbatim.
    const DESIGN: &str = r#"
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 101               # 1..=255
version = 3                  # 2 or 3
advert_interval = "1s"       # humantime; v3 down to 10ms, v2 whole seconds
preempt = true
preempt_delay = "0s"
virtual_addresses = ["10.99.0.200/24"]
unicast_source = "10.99.0.11"      # optional
unicast_peers = ["10.99.0.12"]     # optional: when present, adverts go unicast
auth_pass = "secret12"             # optional, VRRPv2 PASS only
checksum = "pseudo-header"         # v3 over IPv4: pseudo-header (keepalived, FRR) | rfc9568 | accept-either
track = [{ check = "chk_lb", weight = 2 }]        # weight 0: FAULT while the check fails
track_interfaces = [{ name = "eth1", weight = 0 }]
garp = { repeat = 5, delay = "5s" }               # keepalived's defaults
vip_backend = { kind = "netlink" }                # netlink | aws | exec (see ip-manager)
# vip_backend = { kind = "aws", mode = "elastic-ip", allocation_id = "eipalloc-..." }
notify = { master = "/etc/ha/notify.sh master", backup = "/etc/ha/notify.sh backup", fault = "/etc/ha/notify.sh fault" }

[[sync_group]]                     # instances that change state together
name = "VG_1"
instances = ["VI_1", "VI_2"]

[[check]]
name = "chk_lb"
kind = "process"                   # process | exec | tcp | http
process = "haproxy"
interval = "2s"
rise = 1
fall = 2
"#;

    fn errors(text: &str) -> Vec<String> {
        crate::diagnostics::refused(parse, "vrrpd.toml", text)
    }

    #[test]
    fn the_design_example_works_as_written() {
        let c = parse("vrrpd.toml", DESIGN).expect("the documented keys work");
        let i = &c.instances[0];
        assert_eq!(
            (
                i.name.as_str(),
                i.interface.as_str(),
                i.vrid,
                i.priority,
                i.version
            ),
            ("VI_1", "eth0", 51, 101, 3)
        );
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(i.virtual_addresses, [("10.99.0.200".parse().unwrap(), 24)]);
        assert_eq!(i.unicast_peers, ["10.99.0.12".parse::<IpAddr>().unwrap()]);
        assert_eq!(i.track, [("chk_lb".to_owned(), 2)]);
        assert_eq!(i.track_interfaces, [("eth1".to_owned(), 0)]);
        assert_eq!((i.garp_repeat, i.garp_delay), (5, Duration::from_secs(5)));
        assert_eq!(i.notify_master.as_deref(), Some("/etc/ha/notify.sh master"));
        assert_eq!(i.auth_pass, None, "v3: ignored");
        assert_eq!(c.checks[0].kind, CheckKind::Process("haproxy".into()));
        assert_eq!((c.checks[0].rise, c.checks[0].fall), (1, 2));
        assert_eq!(c.sync_groups[0].instances, ["VI_1"]);
        // What keepalived would warn about, we warn about, with the line.
        let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("vrrpd.toml:14:13: instance[0].auth_pass: ignored"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with(
                "vrrpd.toml:25:22: sync_group[0].instances[1]: no instance named \"VI_2\""
            ),
            "{w:?}"
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_line_and_fix() {
        let text = r#"
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 300
version = 2
advert_interval = "1500ms"
virtual_addresses = ["10.0.0.300/24", "fd00::1/64"]
track = [{ check = "nope", weight = 2 }]

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = ["10.0.0.200/24"]
checksum = "xor"

[[instance]]
name = "VI_3"
interface = "eth0"
vrid = 51
virtual_addresses = ["10.0.0.201/24"]
"#;
        let e = errors(text);
        let want = [
            "vrrpd.toml:5:8: instance[0].vrid: 300 is out of range: a VRID is 1 to 255",
            "vrrpd.toml:7:19: instance[0].advert_interval: \"1500ms\": VRRPv2 adverts are whole seconds from 1s to 255s; use version = 3 for sub-second intervals",
            "vrrpd.toml:8:22: instance[0].virtual_addresses[0]: \"10.0.0.300/24\" is not an address: write e.g. \"10.0.0.200/24\"",
            "vrrpd.toml:9:10: instance[0].track[0].check: no [[check]] named \"nope\"",
            "vrrpd.toml:16:12: instance[1].checksum: \"xor\": one of \"pseudo-header\" (keepalived, FRR), \"rfc9568\", \"accept-either\"",
            "vrrpd.toml:21:8: instance[2].vrid: VRID 51 is already used on eth0 by instance \"VI_1\": one VRID per interface and address family",
        ];
        crate::diagnostics::assert_all_in(&e, &want);
        // Also: duplicate name and the mixed families (two more).
        assert_mentions(&e, "instance[1].name: \"VI_1\" is used by another instance");
    }

    #[test]
    fn a_process_check_takes_a_name_or_a_pid_file() {
        let base = "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"10.0.0.1/24\"]\ntrack = [{ check = \"c\", weight = -4 }]\npreempt_on_lower_advert = false\n\n[[check]]\nname = \"c\"\nkind = \"process\"\n";
        let c = parse(
            "vrrpd.toml",
            &format!("{base}pid_file = \"/run/haproxy.pid\"\n"),
        )
        .unwrap();
        assert_eq!(
            c.checks[0].kind,
            CheckKind::PidFile("/run/haproxy.pid".into())
        );
        assert!(!c.instances[0].preempt_on_lower_advert);
        let e = errors(&format!(
            "{base}process = \"haproxy\"\npid_file = \"/run/h.pid\"\n"
        ));
        assert_eq!(
            e,
            [
                "vrrpd.toml:13:12: check[0].pid_file: a process check takes `process` (a name) or `pid_file`, not both"
            ]
        );
        let e = errors(base);
        assert_eq!(
            e,
            [
                "vrrpd.toml:11:8: check[0].process: a \"process\" check needs `process = \"NAME\"` or `pid_file = \"PATH\"`"
            ]
        );
    }

    #[test]
    fn an_icmp_check_pings_an_address_without_a_port() {
        let base = "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"10.0.0.1/24\"]\ntrack = [{ check = \"gw\", weight = 0 }]\n\n[[check]]\nname = \"gw\"\nkind = \"icmp\"\n";
        for (address, ip) in [("10.0.0.254", "10.0.0.254"), ("fd00::1", "fd00::1")] {
            let c =
                parse("vrrpd.toml", &format!("{base}address = \"{address}\"\n")).expect("valid");
            assert_eq!(c.checks[0].kind, CheckKind::Icmp(ip.parse().unwrap()));
        }
        let e = errors(&format!("{base}address = \"10.0.0.254:80\"\n"));
        assert_eq!(
            e,
            [
                "vrrpd.toml:11:11: check[0].address: \"10.0.0.254:80\" is not an IP address (an icmp check pings an address, no port)"
            ]
        );
    }

    #[test]
    fn status_socket_and_metrics_default_and_are_checked() {
        let one = "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"10.0.0.1\"]\n";
        let c = parse("vrrpd.toml", one).expect("valid");
        assert_eq!(c.status_socket, PathBuf::from(DEFAULT_STATUS_SOCKET));
        assert_eq!(c.metrics, None);

        let text = format!(
            "status_socket = \"/tmp/v.sock\"\nmetrics = {{ bind = \"0.0.0.0:9650\" }}\n{one}"
        );
        let c = parse("vrrpd.toml", &text).expect("valid");
        assert_eq!(c.status_socket, PathBuf::from("/tmp/v.sock"));
        assert_eq!(c.metrics, Some("0.0.0.0:9650".parse().unwrap()));
        let w = c.warnings[0].to_string();
        assert!(
            w.starts_with("vrrpd.toml:2:20: metrics.bind: 0.0.0.0:9650 is not a loopback address"),
            "{w}"
        );
        assert_eq!(status_socket_of(&text), PathBuf::from("/tmp/v.sock"));
        assert_eq!(
            status_socket_of("status_socket = \"/x.sock\"\n[[instance]\n"),
            PathBuf::from(DEFAULT_STATUS_SOCKET),
            "a file that does not parse: the default"
        );

        let e = errors(&format!(
            "status_socket = \"run/v.sock\"\nmetrics = {{ bind = \"localhost\" }}\n{one}"
        ));
        assert_eq!(
            e,
            [
                "vrrpd.toml:1:17: status_socket: \"run/v.sock\": an absolute path of at most 107 bytes, e.g. \"/run/vrrpd/vrrpd.sock\"",
                "vrrpd.toml:2:20: metrics.bind: \"localhost\" is not IP:port: write e.g. \"127.0.0.1:9650\"",
            ]
        );
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_line() {
        let e = errors(
            "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"10.0.0.1\"]\nprio = 5\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("vrrpd.toml:6:1: unknown field `prio`"),
            "{e:?}"
        );
        let e = errors("[[instance]\n");
        assert!(e[0].starts_with("vrrpd.toml:1:"), "{e:?}");
    }
}
