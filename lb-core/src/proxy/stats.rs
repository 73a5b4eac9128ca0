//! Live counters per server and per proxy, and the plain snapshots a stats page reads. Both
//! proxies (TCP and HTTP) fill the same structs; what only HTTP counts (requests, response
//! codes) stays 0 in TCP mode.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::servers::Table;
use crate::maxconn::Gauge;

/// Responses by status class, live.
#[derive(Debug, Default)]
pub(crate) struct CodeCounters([AtomicU64; 6]);

impl CodeCounters {
    /// Counts one response with `status`.
    pub(crate) fn count(&self, status: u16) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.0[class].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ResponseCodes {
        let n = |i: usize| self.0[i].load(Ordering::Relaxed);
        ResponseCodes {
            informational: n(0),
            success: n(1),
            redirection: n(2),
            client_error: n(3),
            server_error: n(4),
            other: n(5),
        }
    }
}

/// The live counters of one server (atomics, updated by the connections and requests on it).
#[derive(Debug)]
pub(crate) struct ServerCounters {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    /// Slots held on it now: connections (TCP) or requests (HTTP), connecting or established.
    pub(crate) current: Gauge,
    total: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    connect_errors: AtomicU64,
    response_errors: AtomicU64,
    pub(crate) responses: CodeCounters,
    /// Clients waiting for a slot that found it full first.
    pub(crate) queued: Gauge,
}

impl ServerCounters {
    pub(crate) fn new(name: String, addr: SocketAddr) -> Self {
        ServerCounters {
            name,
            addr,
            current: Gauge::default(),
            total: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            response_errors: AtomicU64::new(0),
            responses: CodeCounters::default(),
            queued: Gauge::default(),
        }
    }

    /// Takes a slot if fewer than `maxconn` are taken (no limit: always).
    pub(crate) fn try_reserve(&self, maxconn: Option<u32>) -> bool {
        self.current
            .try_enter(maxconn.map_or(usize::MAX, |m| m as usize))
    }

    /// Gives a slot back.
    pub(crate) fn release(&self) {
        self.current.leave();
    }

    /// Counts a session established on it (TCP) or a request sent to it (HTTP).
    pub(crate) fn established(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed connect.
    pub(crate) fn connect_failed(&self) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed response (reset, bad response, timeout).
    pub(crate) fn response_failed(&self) {
        self.response_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        ServerStats {
            name: self.name.clone(),
            addr: self.addr,
            current: self.current.now(),
            max: self.current.max(),
            total: self.total.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
            response_errors: self.response_errors.load(Ordering::Relaxed),
            responses: self.responses.snapshot(),
            queued: self.queued.now(),
            queued_max: self.queued.max(),
        }
    }
}

/// The live counters of the proxy itself.
#[derive(Debug, Default)]
pub(crate) struct ProxyCounters {
    pub(crate) current: Gauge,
    pub(crate) total: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Clients (TCP) or requests (HTTP) given up without a server: none available, queue
    /// timeout, every attempt failed.
    pub(crate) failed: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) responses: CodeCounters,
}

impl ProxyCounters {
    /// Counts a client connection accepted.
    pub(crate) fn accepted(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.current.enter();
    }
}

/// Responses by status class (HAProxy's `hrsp_1xx` ... `hrsp_5xx`, `hrsp_other`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseCodes {
    /// 1xx.
    pub informational: u64,
    /// 2xx.
    pub success: u64,
    /// 3xx.
    pub redirection: u64,
    /// 4xx.
    pub client_error: u64,
    /// 5xx.
    pub server_error: u64,
    /// Anything else.
    pub other: u64,
}

impl ResponseCodes {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.informational
            + self.success
            + self.redirection
            + self.client_error
            + self.server_error
            + self.other
    }

    /// Each class with its count, `("1xx", n)` to `("5xx", n)` and `("other", n)`.
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

/// One server's counters at one moment (HAProxy's stats columns `scur`, `smax`, `stot`,
/// `bin`, `bout`, `econ`, `eresp`, `hrsp_*`, `qcur`, `qmax`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Sessions (TCP) or requests (HTTP) on it now, including connects under way.
    pub current: usize,
    /// The most at once since start.
    pub max: usize,
    /// Sessions established (TCP) or requests sent (HTTP) to it since start.
    pub total: u64,
    /// Bytes sent to it (from clients; HTTP: body bytes).
    pub bytes_in: u64,
    /// Bytes received from it (to clients; HTTP: body bytes).
    pub bytes_out: u64,
    /// Connects to it that failed (refused, unreachable, timed out, TLS handshake).
    pub connect_errors: u64,
    /// Requests on it that got no valid response (reset, bad response, timeout).
    pub response_errors: u64,
    /// Its responses by status class (HTTP).
    pub responses: ResponseCodes,
    /// Clients waiting now for a slot on it (it was picked and at its `maxconn`).
    pub queued: usize,
    /// The most waiting at once since start.
    pub queued_max: usize,
}

/// A proxy's counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// The proxy's name.
    pub name: String,
    /// Client connections served now.
    pub current: usize,
    /// The most client connections served at once since start.
    pub max: usize,
    /// Client connections accepted since start.
    pub total: u64,
    /// Requests received since start (HTTP; 0 in TCP mode).
    pub requests: u64,
    /// Clients (TCP) or requests (HTTP) given up because no server could take them (none
    /// available, queue timeout, every connect attempt failed).
    pub failed: u64,
    /// Connect attempts (or safely retried requests) made again after a failure (HAProxy
    /// `wretr`).
    pub retries: u64,
    /// Retries that went to another server (HAProxy `wredis`).
    pub redispatches: u64,
    /// Connections closed because no byte moved for the idle timeout (TCP).
    pub idle_timeouts: u64,
    /// Bytes from clients to servers (the servers' sum).
    pub bytes_in: u64,
    /// Bytes from servers to clients (the servers' sum).
    pub bytes_out: u64,
    /// The responses sent to clients by status class, the proxy's own (503, 301...)
    /// included (HTTP).
    pub responses: ResponseCodes,
    /// Clients waiting for a server slot now.
    pub queued: usize,
    /// The most waiting at once since start.
    pub queued_max: usize,
    /// Per server, in configuration order.
    pub servers: Vec<ServerStats>,
}

impl ProxyStats {
    pub(crate) fn collect<E>(name: &str, proxy: &ProxyCounters, table: &Table<E>) -> Self {
        let servers: Vec<ServerStats> = table
            .servers
            .iter()
            .map(|s| s.counters.snapshot())
            .collect();
        ProxyStats {
            name: name.to_owned(),
            current: proxy.current.now(),
            max: proxy.current.max(),
            total: proxy.total.load(Ordering::Relaxed),
            requests: proxy.requests.load(Ordering::Relaxed),
            failed: proxy.failed.load(Ordering::Relaxed),
            retries: table.common.retries.load(Ordering::Relaxed),
            redispatches: table.common.redispatches.load(Ordering::Relaxed),
            idle_timeouts: proxy.idle_timeouts.load(Ordering::Relaxed),
            bytes_in: servers.iter().map(|s| s.bytes_in).sum(),
            bytes_out: servers.iter().map(|s| s.bytes_out).sum(),
            responses: proxy.responses.snapshot(),
            queued: table.common.queue.queued().now(),
            queued_max: table.common.queue.queued().max(),
            servers,
        }
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerStats> {
        self.servers.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_at_its_maxconn_takes_no_more_until_one_is_released() {
        let server = ServerCounters::new("s".into(), "127.0.0.1:1".parse().unwrap());
        assert!(server.try_reserve(Some(2)));
        assert!(server.try_reserve(Some(2)));
        assert!(!server.try_reserve(Some(2)));
        server.release();
        assert!(server.try_reserve(Some(2)));
        assert!(server.try_reserve(None), "no limit");
        let stats = server.snapshot();
        assert_eq!((stats.current, stats.max), (3, 3));
        server.release();
        assert_eq!(server.snapshot().max, 3, "the high-water mark stays");
    }

    #[test]
    fn responses_are_counted_by_class() {
        let codes = CodeCounters::default();
        for status in [101, 200, 204, 301, 404, 502, 503, 504, 600] {
            codes.count(status);
        }
        let snapshot = codes.snapshot();
        assert_eq!(
            snapshot,
            ResponseCodes {
                informational: 1,
                success: 2,
                redirection: 1,
                client_error: 1,
                server_error: 3,
                other: 1,
            }
        );
        assert_eq!(snapshot.total(), 9);
        assert_eq!(
            snapshot.by_class(),
            [
                ("1xx", 1),
                ("2xx", 2),
                ("3xx", 1),
                ("4xx", 1),
                ("5xx", 3),
                ("other", 1)
            ]
        );
    }
}
