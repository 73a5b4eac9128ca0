//! hald's configuration file: vrrpd's keys (`[[instance]]`, `[[check]]`, `[[sync_group]]`,
//! `status_socket`, `metrics`, `crash_guard`, `crash_hold_down`: the crash guard, on by
//! default, sends priority 0 and removes the addresses when hald itself is killed), lbd's keys (`[[listen]]`, `maxconn`) and hald's own `[hald]`
//! table, in one TOML file. Each half is checked by its daemon's own checker, so a key means
//! in hald what it means in vrrpd or lbd, and every mistake is reported with its
//! `file:line:column`.
//!
//! ```toml
//! [hald]
//! drain = "10s"    # a planned handover waits at most this long for the clients to leave
//! # On by default; weight 0: a wedged balancer puts every instance in FAULT.
//! watchdog = { interval = "500ms", timeout = "1s", weight = 0 }
//!
//! # The balancer's own backend health moves the VRRP priority: no script.
//! [[hald.track]]
//! instance = "VI_1"
//! listener = "web"
//! weight = -10      # per server of the listener that is down (0: none)
//! all_down = 0      # every server down: 0 puts the instance in FAULT, -N lowers it by N
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::{ConfigError, Report, parse_toml};
use crate::{duration, lbd, vrrpd};

/// The planned handover's drain deadline when `[hald] drain` is not given.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The VRRP half, as vrrpd reads it, with hald's listener trackers added to the instances'
    /// `track` (named by [`Track::all_down_tracker`] and [`Track::server_tracker`]).
    pub vrrp: vrrpd::config::Config,
    /// The balancer half, as lbd reads it.
    pub balancer: lbd::config::Config,
    /// How long a planned handover waits for the clients to leave (`[hald] drain`).
    pub drain: Duration,
    /// The watchdog on the balancer's event loop (`[hald] watchdog`, on by default;
    /// `enabled = false`: `None`).
    pub watchdog: Option<Watchdog>,
    /// The listeners whose servers' health moves an instance's priority (`[[hald.track]]`).
    pub track: Vec<Track>,
    /// Drained preemption (`[hald.handover]`): `None` when off.
    pub handover: Option<Handover>,
    /// Warnings of all three parts.
    pub warnings: Vec<ConfigError>,
}

/// `[hald] watchdog`: a probe of the balancer's event loop from an OS thread of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// How often the loop is probed.
    pub interval: Duration,
    /// How long a probe may wait for an answer before the loop counts as wedged.
    pub timeout: Duration,
    /// What a wedged loop costs every instance: 0 = FAULT (priority 0 goes out at once),
    /// negative = priority lowered by that much.
    pub weight: i16,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            weight: 0,
        }
    }
}

/// `[hald.handover]`: a preemption that drains first. This host, preempting, asks the Master
/// (at the address of its adverts, on `port`) to finish its connections and resign, and waits
/// its `preempt_delay` at most; as Master, it answers such requests. See
/// [`ip_manager::failover::handover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The TCP port both hosts listen on and ask at.
    pub port: u16,
    /// Who may ask (empty: anyone who can reach the port).
    pub peers: Vec<IpAddr>,
}

/// The extra wait of a preempting instance beyond `drain` when `[hald.handover]` is on and
/// the instance sets no `preempt_delay` of its own: the Master's drain, then its resign.
pub const HANDOVER_MARGIN: Duration = Duration::from_secs(2);

/// `[[hald.track]]`: a listener's servers feeding an instance's priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The VRRP instance whose priority moves.
    pub instance: String,
    /// The listener whose servers count.
    pub listener: String,
    /// Priority lost per server down (negative; 0: none).
    pub weight: i16,
    /// Every server down: 0 = FAULT, negative = priority lowered by that much.
    pub all_down: i16,
}

impl Track {
    /// The name of the tracked object "every server of the listener is down".
    pub fn all_down_tracker(&self) -> String {
        format!("listener:{}", self.listener)
    }

    /// The name of the tracked object "server `server` of the listener is down".
    pub fn server_tracker(&self, server: &str) -> String {
        format!("server:{}/{server}", self.listener)
    }
}

/// The tracked object every instance gets when the watchdog is on: down while the balancer's
/// event loop does not answer.
pub const WATCHDOG_TRACKER: &str = "hald:watchdog";

/// The keys of the file's top level, by the part that reads them.
const VRRP_KEYS: [&str; 8] = [
    "instance",
    "check",
    "sync_group",
    "status_socket",
    "metrics",
    "alerts",
    "crash_guard",
    "crash_hold_down",
];
const BALANCER_KEYS: [&str; 3] = ["listen", "maxconn", "admin_socket"];
const HALD_KEYS: [&str; 1] = ["hald"];

/// Which part of the file a top-level key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Vrrp,
    Balancer,
    Hald,
    /// None: reported.
    Unknown,
}

fn part_of(key: &str) -> Part {
    if VRRP_KEYS.contains(&key) {
        Part::Vrrp
    } else if BALANCER_KEYS.contains(&key) {
        Part::Balancer
    } else if HALD_KEYS.contains(&key) {
        Part::Hald
    } else {
        Part::Unknown
    }
}

/// The top-level key a line starts (a table header `[key...]` / `[[key...]]`, or `key = ...`
/// when no multi-line value is open), if it starts one; `depth` carries the open brackets of a
/// multi-line value and `in_string` an open multi-line string from line to line.
fn starts_key(line: &str, depth: &mut i32, in_string: &mut Option<&'static str>) -> Option<String> {
    let trimmed = line.trim_start();
    let at_top = *depth == 0 && in_string.is_none();
    let (key, value_start) = if at_top && trimmed.starts_with('[') {
        (Some(first_key(trimmed.trim_start_matches('['))), line.len())
    } else if at_top && !trimmed.starts_with('#') && trimmed.contains('=') {
        (
            Some(first_key(trimmed)),
            line.find('=').map_or(0, |i| i + 1),
        )
    } else {
        (None, 0)
    };
    // The value's strings and brackets, for the next lines.
    let value = &line[value_start..];
    let mut chars = value.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(end) = *in_string {
            if value[i..].starts_with(end) {
                *in_string = None;
                for _ in 1..end.len() {
                    chars.next();
                }
            } else if c == '\\' && end.starts_with('"') {
                chars.next();
            }
            continue;
        }
        match c {
            '#' => break,
            '"' | '\'' => {
                let triple = if c == '"' { "\"\"\"" } else { "'''" };
                if value[i..].starts_with(triple) {
                    *in_string = Some(triple);
                    chars.next();
                    chars.next();
                } else {
                    *in_string = Some(if c == '"' { "\"" } else { "'" });
                }
            }
            '[' | '{' => *depth += 1,
            ']' | '}' => *depth -= 1,
            _ => {}
        }
    }
    // A single-line string cannot go on to the next line.
    if matches!(*in_string, Some("\"" | "'")) {
        *in_string = None;
    }
    *depth = (*depth).max(0);
    key
}

/// The first (possibly quoted) key of a dotted key or of `key = value`.
fn first_key(text: &str) -> String {
    let text = text.trim_start();
    if let Some(rest) = text.strip_prefix('"') {
        return rest.split('"').next().unwrap_or_default().to_owned();
    }
    text.split(|c: char| c == '.' || c == '=' || c == ']' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `text` split into the three parts, each as the whole file with the other parts' lines
/// emptied (so that every line keeps its number); and the unknown top-level keys with their
/// byte offsets.
fn split(text: &str) -> ([String; 3], Vec<(usize, String)>) {
    let mut parts: [String; 3] = Default::default();
    let mut unknown = Vec::new();
    let (mut depth, mut in_string) = (0, None);
    let mut owner = Part::Hald;
    let mut in_table = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let table_header = depth == 0 && in_string.is_none() && line.trim_start().starts_with('[');
        if let Some(key) = starts_key(line, &mut depth, &mut in_string) {
            let part = part_of(&key);
            // A `key = ...` line inside a table belongs to that table.
            in_table |= table_header;
            if table_header || !in_table {
                owner = part;
                if part == Part::Unknown {
                    unknown.push((offset + line.len() - line.trim_start().len(), key));
                }
            }
        }
        for (i, p) in [Part::Vrrp, Part::Balancer, Part::Hald]
            .into_iter()
            .enumerate()
        {
            if p == owner {
                parts[i].push_str(line);
            } else if line.ends_with('\n') {
                parts[i].push('\n');
            }
        }
        offset += line.len();
    }
    (parts, unknown)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    hald: HaldToml,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HaldToml {
    drain: Option<Spanned<String>>,
    watchdog: Option<Spanned<WatchdogToml>>,
    #[serde(default)]
    track: Vec<Spanned<TrackToml>>,
    handover: Option<Spanned<HandoverToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoverToml {
    #[serde(default = "yes")]
    enabled: bool,
    port: Option<u16>,
    #[serde(default)]
    peers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchdogToml {
    #[serde(default = "yes")]
    enabled: bool,
    interval: Option<String>,
    timeout: Option<String>,
    weight: Option<i64>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackToml {
    instance: Spanned<String>,
    listener: Spanned<String>,
    weight: Option<Spanned<i64>>,
    all_down: Option<Spanned<i64>>,
}

/// Reads and checks `text` (read from `file`): the configuration, or every mistake of every
/// part in the order of the file.
pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
    let ([vrrp_text, balancer_text, hald_text], unknown) = split(text);
    let mut errors = Vec::new();
    let mut r = Report::new(file, text);
    for (offset, key) in unknown {
        r.at(
            offset..offset,
            key.clone(),
            format!(
                "unknown key: hald reads vrrpd's {}, lbd's {} and its own `hald`",
                VRRP_KEYS.join(", "),
                BALANCER_KEYS.join(", ")
            ),
        );
    }
    errors.append(&mut r.errors);
    let vrrp = vrrpd::config::parse(file, &vrrp_text).map_err(|e| errors.extend(e));
    let balancer = lbd::config::parse(file, &balancer_text).map_err(|e| errors.extend(e));
    let own = parse_toml::<FileToml>(file, &hald_text).map_err(|e| errors.extend(e));
    // hald's own keys are checked whatever the halves' state, so that every mistake shows.
    let (mut r, own) = match own {
        Ok((r, own)) => (r, own),
        Err(()) => (Report::new(file, text), FileToml::default()),
    };
    let drain = match &own.hald.drain {
        None => DEFAULT_DRAIN,
        Some(d) => duration::parse(d.get_ref()).unwrap_or_else(|e| {
            r.at(d.span(), "hald.drain".into(), e);
            DEFAULT_DRAIN
        }),
    };
    let watchdog = match own.hald.watchdog.as_ref() {
        None => Some(Watchdog::default()),
        Some(w) => watchdog(&mut r, w),
    };
    let handover = own.hald.handover.as_ref().and_then(|h| handover(&mut r, h));
    let (Ok(mut vrrp), Ok(mut balancer)) = (vrrp, balancer) else {
        errors.extend(r.errors);
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(errors);
    };
    // `[alerts]` (read with vrrpd's keys) covers the balancer's servers too.
    balancer.alerts = vrrp.alerts.clone();
    if let Some(w) = &watchdog {
        for inst in &mut vrrp.instances {
            inst.track.push((WATCHDOG_TRACKER.to_owned(), w.weight));
        }
    }
    if handover.is_some() {
        // A preempting instance waits for the Master to drain and resign (or not) first.
        for inst in &mut vrrp.instances {
            if inst.preempt && inst.preempt_delay.is_zero() {
                inst.preempt_delay = drain + HANDOVER_MARGIN;
            }
        }
    }
    let track = own
        .hald
        .track
        .iter()
        .enumerate()
        .filter_map(|(i, t)| check_track(&mut r, i, t, &vrrp, &balancer))
        .collect::<Vec<_>>();
    add_trackers(&mut r, &track, &mut vrrp, &balancer, &own.hald.track);
    errors.extend(r.errors);
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(errors);
    }
    let mut warnings = std::mem::take(&mut vrrp.warnings);
    warnings.extend(balancer.warnings.iter().cloned());
    warnings.extend(r.warnings);
    warnings.sort_by_key(|e| (e.line, e.column));
    Ok(Config {
        vrrp,
        balancer,
        drain,
        watchdog,
        track,
        handover,
        warnings,
    })
}

fn handover(r: &mut Report<'_>, h: &Spanned<HandoverToml>) -> Option<Handover> {
    let raw = h.get_ref();
    if !raw.enabled {
        return None;
    }
    let port = match raw.port {
        Some(0) => {
            r.at(
                h.span(),
                "hald.handover.port".into(),
                "0 is not a port: use 1..=65535 (both hosts the same)".into(),
            );
            0
        }
        Some(p) => p,
        None => ip_manager::failover::handover::DEFAULT_PORT,
    };
    let mut peers = Vec::new();
    for (i, p) in raw.peers.iter().enumerate() {
        match p.parse::<IpAddr>() {
            Ok(a) => peers.push(a),
            Err(_) => r.at(
                h.span(),
                format!("hald.handover.peers[{i}]"),
                format!("{p:?} is not an IP address (the peer's address as this host sees it, e.g. \"10.0.0.2\")"),
            ),
        }
    }
    Some(Handover { port, peers })
}

fn watchdog(r: &mut Report<'_>, w: &Spanned<WatchdogToml>) -> Option<Watchdog> {
    let raw = w.get_ref();
    if !raw.enabled {
        return None;
    }
    let mut out = Watchdog::default();
    let mut time = |key: &str, value: &Option<String>, into: &mut Duration| {
        if let Some(v) = value {
            match duration::parse(v) {
                Ok(d) if !d.is_zero() => *into = d,
                Ok(_) => r.at(
                    w.span(),
                    format!("hald.watchdog.{key}"),
                    "must be above 0".into(),
                ),
                Err(e) => r.at(w.span(), format!("hald.watchdog.{key}"), e),
            }
        }
    };
    time("interval", &raw.interval, &mut out.interval);
    time("timeout", &raw.timeout, &mut out.timeout);
    if let Some(weight) = raw.weight {
        match weight_of(weight) {
            Ok(v) => out.weight = v,
            Err(e) => r.at(w.span(), "hald.watchdog.weight".into(), e),
        }
    }
    Some(out)
}

/// A tracker weight as hald takes it: 0 (FAULT) or negative, down to -254.
fn weight_of(value: i64) -> Result<i16, String> {
    match i16::try_from(value) {
        Ok(v) if (-254..=0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{value}: expected 0 (FAULT) or a priority to lose, -1 to -254"
        )),
    }
}

fn check_track(
    r: &mut Report<'_>,
    i: usize,
    t: &Spanned<TrackToml>,
    vrrp: &vrrpd::config::Config,
    balancer: &lbd::config::Config,
) -> Option<Track> {
    let raw = t.get_ref();
    let key = |k: &str| format!("hald.track[{i}].{k}");
    let mut ok = true;
    let names = vrrp.instances.iter().map(|x| x.name.as_str());
    if !named(r, &raw.instance, &key("instance"), "[[instance]]", names) {
        ok = false;
    }
    match balancer
        .listeners
        .iter()
        .find(|l| &l.name == raw.listener.get_ref())
    {
        None => {
            let names = balancer.listeners.iter().map(|l| l.name.as_str());
            named(r, &raw.listener, &key("listener"), "[[listen]]", names);
            ok = false;
        }
        Some(l) if l.check.is_none() => {
            r.at(
                raw.listener.span(),
                key("listener"),
                format!("listener {:?} has no `check`: its servers are always up, so there is nothing to track (add `check = {{ tcp = true }}` or an HTTP check)", l.name),
            );
            ok = false;
        }
        Some(_) => {}
    }
    let mut weight_at = |k: &str, v: &Option<Spanned<i64>>, default: i16| match v {
        None => Some(default),
        Some(v) => weight_of(*v.get_ref())
            .map_err(|e| r.at(v.span(), key(k), e))
            .ok(),
    };
    let weight = weight_at("weight", &raw.weight, 0);
    let all_down = weight_at("all_down", &raw.all_down, 0);
    Some(Track {
        instance: raw.instance.get_ref().clone(),
        listener: raw.listener.get_ref().clone(),
        weight: weight?,
        all_down: all_down?,
    })
    .filter(|_| ok)
}

/// Whether `value` is one of `names`; if not, reports it at `key` as naming no `section`
/// (listing the names there are).
fn named<'a>(
    r: &mut Report<'_>,
    value: &Spanned<String>,
    key: &str,
    section: &str,
    names: impl Iterator<Item = &'a str>,
) -> bool {
    let names: Vec<&str> = names.collect();
    let found = names.contains(&value.get_ref().as_str());
    if !found {
        r.at(
            value.span(),
            key.to_owned(),
            format!(
                "no {section} is named {:?} (there are {names:?})",
                value.get_ref()
            ),
        );
    }
    found
}

/// Adds each track's tracked objects to its instance: "all servers down" with `all_down`,
/// and one per server with `weight` (when not 0). A check of the same name is an error.
fn add_trackers(
    r: &mut Report<'_>,
    track: &[Track],
    vrrp: &mut vrrpd::config::Config,
    balancer: &lbd::config::Config,
    raw: &[Spanned<TrackToml>],
) {
    let mut checks: BTreeSet<&str> = vrrp.checks.iter().map(|c| c.name.as_str()).collect();
    checks.insert(WATCHDOG_TRACKER);
    let mut added = Vec::new();
    for (t, raw) in track.iter().zip(raw) {
        let Some(listener) = balancer.listeners.iter().find(|l| l.name == t.listener) else {
            continue;
        };
        let mut names = vec![(t.all_down_tracker(), t.all_down)];
        if t.weight != 0 {
            names.extend(
                listener
                    .servers
                    .iter()
                    .map(|s| (t.server_tracker(&s.name), t.weight)),
            );
        }
        for (name, _) in &names {
            if checks.contains(name.as_str()) || added.contains(&(t.instance.clone(), name.clone()))
            {
                r.at(
                    raw.span(),
                    "hald.track".into(),
                    format!("tracked object {name:?} twice for instance {:?} (a [[check]] of that name, or the same listener tracked twice)", t.instance),
                );
            }
            added.push((t.instance.clone(), name.clone()));
        }
        if let Some(inst) = vrrp.instances.iter_mut().find(|i| i.name == t.instance) {
            inst.track.extend(names);
        }
    }
}

impl Config {
    /// The listeners bound to a virtual address of `instance`: they serve only while it is
    /// Master, and are drained before it hands its addresses over.
    pub fn listeners_of(&self, instance: &str) -> Vec<String> {
        let Some(inst) = self.vrrp.instances.iter().find(|i| i.name == instance) else {
            return Vec::new();
        };
        let vips: BTreeSet<IpAddr> = inst.virtual_addresses.iter().map(|(a, _)| *a).collect();
        self.balancer
            .listeners
            .iter()
            .filter(|l| vips.contains(&l.bind.ip()))
            .map(|l| l.name.clone())
            .collect()
    }
}

impl crate::cli::Checked for Config {
    fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    fn summary(&self) -> String {
        format!(
            "{} instance(s), {} listener(s), {} server(s)",
            self.vrrp.instances.len(),
            self.balancer.listeners.len(),
            self.balancer.server_count()
        )
    }
}

#[cfg(test)]
mod tests;
