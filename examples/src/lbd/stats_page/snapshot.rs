//! What the page shows: a plain copy of the daemon's state at one moment, filled by the daemon
//! and read by the renderers ([`super::html`], [`super::metrics`], and JSON through serde).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::lbd::config::Mode;

/// Everything the stats page shows, at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// When the daemon started (JSON: `started_unix`, seconds since the Unix epoch).
    #[serde(rename = "started_unix", serialize_with = "unix_seconds")]
    pub started: SystemTime,
    /// How long it has run (JSON: `uptime_seconds`).
    #[serde(rename = "uptime_seconds", serialize_with = "seconds")]
    pub uptime: Duration,
    /// Every listener, in configuration order.
    pub listeners: Vec<ListenerStatus>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            started: UNIX_EPOCH,
            uptime: Duration::ZERO,
            listeners: Vec::new(),
        }
    }
}

/// A listener (HAProxy's frontend and backend in one) and its servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerStatus {
    /// Its `name`.
    pub name: String,
    /// How it proxies (JSON: `"http"` or `"tcp"`).
    #[serde(serialize_with = "mode")]
    pub mode: Mode,
    /// The address it accepts on.
    pub bind: SocketAddr,
    /// Its `balance`, as the configuration writes it (`"roundrobin"`, `"hdr(host)"`, ...).
    pub balance: String,
    /// Its clients' sessions, requests, bytes and responses (JSON: flattened into this object).
    #[serde(flatten)]
    pub counters: Counters,
    /// Its servers, in configuration order.
    pub servers: Vec<ServerStatus>,
}

/// One server of a listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerStatus {
    /// Its `name`.
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

/// Sessions, requests, bytes and responses, of a listener (its clients) or of a server: the
/// columns both rows of the page share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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
    /// Responses by class (HTTP mode): sent to clients, or received from the server.
    pub responses: Responses,
}

/// Whether a server takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
pub struct Queue {
    /// Requests waiting now.
    pub current: u64,
    /// The most waiting at once since start.
    pub max: u64,
}

/// A server's health check as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Responses by status class (JSON keys `1xx` ... `5xx`, `other`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Responses {
    /// 100-199.
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 200-299.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 300-399.
    #[serde(rename = "3xx")]
    pub redirection: u64,
    /// 400-499.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 500-599.
    #[serde(rename = "5xx")]
    pub server_error: u64,
    /// Anything else.
    pub other: u64,
}

impl Responses {
    /// Counts one response with status `code`.
    pub fn count(&mut self, code: u16) {
        let slot = match code {
            100..=199 => &mut self.informational,
            200..=299 => &mut self.success,
            300..=399 => &mut self.redirection,
            400..=499 => &mut self.client_error,
            500..=599 => &mut self.server_error,
            _ => &mut self.other,
        };
        *slot += 1;
    }

    /// Each class with its count, `("1xx", n)` to `("other", n)`.
    pub fn by_class(&self) -> [(&'static str, u64); 6] {
        [
            ("1xx", self.informational),
            ("2xx", self.success),
            ("3xx", self.redirection),
            ("4xx", self.client_error),
            ("5xx", self.server_error),
            ("other", self.other),
        ]
    }
}

/// `mode` as the configuration writes it.
pub(super) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

fn mode<S: Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode_name(*m))
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn unix_seconds<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // A start before 1970 is a broken clock: shown as 0.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_class() {
        let mut r = Responses::default();
        for code in [101, 200, 204, 302, 404, 503, 99, 600] {
            r.count(code);
        }
        assert_eq!(
            r.by_class(),
            [
                ("1xx", 1),
                ("2xx", 2),
                ("3xx", 1),
                ("4xx", 1),
                ("5xx", 1),
                ("other", 2)
            ]
        );
    }
}
