//! What the page shows: a plain copy of the service's state at one moment, filled by the
//! service (from [`ProxyStats`] and its own health checks) and read by the renderers
//! ([`super::html`], [`super::metrics`], and JSON through serde).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::section::Section;
use crate::proxy::{ProxyStats, ResponseCodes, ServerStats};

/// Everything the stats page shows, at one moment.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use lb_core::stats_page::{ListenerStatus, Mode, ServerState, ServerStatus, Snapshot};
///
/// let mut web = ListenerStatus::new("web", Mode::Http, "127.0.0.1:8080".parse().unwrap());
/// web.balance = "roundrobin".into();
/// web.servers.push(ServerStatus::new("web1", "10.0.0.21:80".parse().unwrap(), ServerState::Up));
/// let mut snapshot = Snapshot::new(SystemTime::now(), Duration::from_secs(60));
/// snapshot.listeners.push(web);
/// assert_eq!(snapshot.listeners[0].servers[0].state.label(), "UP");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// When the service started (JSON: `started_unix`, seconds since the Unix epoch).
    #[serde(rename = "started_unix", serialize_with = "unix_seconds")]
    pub started: SystemTime,
    /// How long it has run (JSON: `uptime_seconds`).
    #[serde(rename = "uptime_seconds", serialize_with = "seconds")]
    pub uptime: Duration,
    /// Every listener, in the order the page shows them.
    pub listeners: Vec<ListenerStatus>,
    /// Tables of the embedder's own, shown after the listeners (see [`Section`]).
    pub sections: Vec<Section>,
}

impl Snapshot {
    /// A snapshot of a service started at `started` that has run for `uptime`, with no
    /// listener and no section yet.
    pub fn new(started: SystemTime, uptime: Duration) -> Self {
        Snapshot {
            started,
            uptime,
            listeners: Vec::new(),
            sections: Vec::new(),
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::new(UNIX_EPOCH, Duration::ZERO)
    }
}

/// How a listener proxies (HAProxy's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Request by request ([`HttpProxy`](crate::proxy::HttpProxy)).
    Http,
    /// Connection by connection ([`TcpProxy`](crate::proxy::TcpProxy)).
    Tcp,
}

impl Mode {
    /// `http` or `tcp`, as HAProxy's configuration writes it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        }
    }
}

/// A listener (HAProxy's frontend and backend in one: one proxy) and its servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ListenerStatus {
    /// Its name.
    pub name: String,
    /// How it proxies (JSON: `"http"` or `"tcp"`).
    pub mode: Mode,
    /// The address it accepts on.
    pub bind: SocketAddr,
    /// Its balancing algorithm as a configuration writes it (`"roundrobin"`, `"hdr(host)"`,
    /// ...); empty when not given.
    pub balance: String,
    /// Its clients' sessions, requests, bytes and responses (JSON: flattened into this object).
    #[serde(flatten)]
    pub counters: Counters,
    /// Its servers, in the order the page shows them.
    pub servers: Vec<ServerStatus>,
}

impl ListenerStatus {
    /// A listener with no counts and no server yet.
    pub fn new(name: impl Into<String>, mode: Mode, bind: SocketAddr) -> Self {
        ListenerStatus {
            name: name.into(),
            mode,
            bind,
            balance: String::new(),
            counters: Counters::default(),
            servers: Vec::new(),
        }
    }

    /// A proxy's listener as its [`ProxyStats`] count it (`stats.name`, its counters); the
    /// servers, which need their state from the health checks, are left to the caller
    /// ([`ServerStatus::from_stats`]).
    pub fn from_stats(stats: &ProxyStats, mode: Mode, bind: SocketAddr) -> Self {
        let mut listener = ListenerStatus::new(stats.name.clone(), mode, bind);
        listener.counters = Counters::from(stats);
        listener
    }
}

/// One server of a listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServerStatus {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Whether it takes traffic.
    pub state: ServerState,
    /// Time since `state` last changed (HAProxy `lastchg`; JSON: `since_seconds`).
    #[serde(rename = "since_seconds", serialize_with = "seconds")]
    pub since: Duration,
    /// Its weight now.
    pub weight: u32,
    /// Its sessions, requests, bytes and responses (JSON: flattened into this object).
    #[serde(flatten)]
    pub counters: Counters,
    /// Connects to it that failed (`econ`).
    pub connect_errors: u64,
    /// Responses from it that failed: reset, timed out, malformed (`eresp`).
    pub response_errors: u64,
    /// Requests waiting for a slot on it (`maxconn` reached).
    pub queue: Queue,
    /// Its health check, if it has one (`None`: [`ServerState::NoCheck`] or maintenance).
    pub check: Option<CheckStatus>,
}

impl ServerStatus {
    /// A server in `state` since now, of weight 1, with no counts and no check.
    pub fn new(name: impl Into<String>, addr: SocketAddr, state: ServerState) -> Self {
        ServerStatus {
            name: name.into(),
            addr,
            state,
            since: Duration::ZERO,
            weight: 1,
            counters: Counters::default(),
            connect_errors: 0,
            response_errors: 0,
            queue: Queue::default(),
            check: None,
        }
    }

    /// A proxy's server as its [`ServerStats`] count it (name, address, counters, errors,
    /// queue), in `state`.
    pub fn from_stats(stats: &ServerStats, state: ServerState) -> Self {
        let mut server = ServerStatus::new(stats.name.clone(), stats.addr, state);
        server.counters = Counters::from(stats);
        server.connect_errors = stats.connect_errors;
        server.response_errors = stats.response_errors;
        server.queue = Queue {
            current: stats.queued as u64,
            max: stats.queued_max as u64,
        };
        server
    }
}

/// Sessions, requests, bytes and responses, of a listener (its clients) or of a server: the
/// columns both rows of the page share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counters {
    /// Sessions now (HAProxy `scur`).
    pub current: u64,
    /// The most sessions at once since start (`smax`).
    pub max: u64,
    /// The `maxconn` (`slim`), if any.
    pub limit: Option<u32>,
    /// Sessions since start (`stot`).
    pub total: u64,
    /// HTTP requests since start (`req_tot`; 0 in TCP mode).
    pub requests: u64,
    /// Bytes in: from clients for a listener, to the server for a server (`bin`).
    pub bytes_in: u64,
    /// Bytes out: to clients for a listener, from the server for a server (`bout`).
    pub bytes_out: u64,
    /// Responses by class (HTTP mode): sent to clients, or received from the server (JSON:
    /// keys `1xx` ... `5xx`, `other`).
    #[serde(serialize_with = "responses")]
    pub responses: ResponseCodes,
}

impl Counters {
    /// Sessions now and at most, sessions and requests since start, bytes in and out, and
    /// responses; no `limit`.
    pub(super) fn of(
        [current, max]: [usize; 2],
        [total, requests]: [u64; 2],
        [bytes_in, bytes_out]: [u64; 2],
        responses: ResponseCodes,
    ) -> Self {
        Counters {
            current: current as u64,
            max: max as u64,
            limit: None,
            total,
            requests,
            bytes_in,
            bytes_out,
            responses,
        }
    }
}

/// A proxy's counts (no `limit`: the proxy's `maxconn` is the caller's to add).
impl From<&ProxyStats> for Counters {
    fn from(s: &ProxyStats) -> Self {
        let bytes = [s.bytes_in, s.bytes_out];
        Counters::of(
            [s.current, s.max],
            [s.total, s.requests],
            bytes,
            s.responses,
        )
    }
}

/// A server's counts; its requests are its sessions (a TCP session or an HTTP request each).
/// No `limit`: the server's `maxconn` is the caller's to add.
impl From<&ServerStats> for Counters {
    fn from(s: &ServerStats) -> Self {
        let bytes = [s.bytes_in, s.bytes_out];
        Counters::of([s.current, s.max], [s.total, s.total], bytes, s.responses)
    }
}

/// Whether a server takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ServerState {
    /// Its check passes: it takes new sessions.
    Up,
    /// Its check failed `fall` times in a row: no new sessions.
    Down,
    /// Taken out by the operator (HAProxy `disabled`/`MAINT`): no new sessions, no checks.
    Maint,
    /// Not checked: always considered up (HAProxy's "no check").
    NoCheck,
}

impl ServerState {
    /// The word the page shows (`UP`, `DOWN`, `MAINT`, `no check`), as HAProxy writes it.
    pub fn label(self) -> &'static str {
        match self {
            ServerState::Up => "UP",
            ServerState::Down => "DOWN",
            ServerState::Maint => "MAINT",
            ServerState::NoCheck => "no check",
        }
    }

    /// A one-word lowercase name for CSS classes and metric labels (`up`, `down`, `maint`,
    /// `nocheck`).
    pub fn slug(self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::Down => "down",
            ServerState::Maint => "maint",
            ServerState::NoCheck => "nocheck",
        }
    }

    /// Whether it takes new sessions (up, checked or not).
    pub fn takes_traffic(self) -> bool {
        matches!(self, ServerState::Up | ServerState::NoCheck)
    }

    /// Every state, in the order the metrics list them.
    pub const ALL: [ServerState; 4] = [
        ServerState::Up,
        ServerState::Down,
        ServerState::Maint,
        ServerState::NoCheck,
    ];
}

/// A server's queue (HAProxy `qcur`, `qmax`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Queue {
    /// Requests waiting now.
    pub current: u64,
    /// The most waiting at once since start.
    pub max: u64,
}

/// A server's health check as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckStatus {
    /// The last result in HAProxy's words, e.g. `"L7OK/200 in 1ms"`, `"L4CON"`, `"L4TOUT"`.
    pub status: String,
    /// The last failure's text (kept after the server recovers), if any.
    pub last_error: Option<String>,
    /// Consecutive successes (counted toward `rise` while down).
    pub successes: u32,
    /// Consecutive failures (counted toward `fall` while up).
    pub failures: u32,
    /// Successes that bring a down server up.
    pub rise: u32,
    /// Failures that take an up server down.
    pub fall: u32,
    /// Checks run since start.
    pub checks: u64,
}

impl CheckStatus {
    /// A check whose last result is `status`, going up after `rise` successes and down after
    /// `fall` failures, with nothing counted yet.
    pub fn new(status: impl Into<String>, rise: u32, fall: u32) -> Self {
        CheckStatus {
            status: status.into(),
            last_error: None,
            successes: 0,
            failures: 0,
            rise,
            fall,
            checks: 0,
        }
    }
}

fn responses<S: Serializer>(r: &ResponseCodes, s: S) -> Result<S::Ok, S::Error> {
    let classes = r.by_class();
    let mut map = s.serialize_map(Some(classes.len()))?;
    for (class, n) in classes {
        map.serialize_entry(class, &n)?;
    }
    map.end()
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn unix_seconds<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // A start before 1970 is a broken clock: shown as 0.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    s.serialize_f64(d.as_secs_f64())
}
