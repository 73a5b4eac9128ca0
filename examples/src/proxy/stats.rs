//! Live counters per server and per proxy, and the plain snapshots a stats page reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The live counters of one server (atomics, updated by the connections on it).
#[derive(Debug)]
pub(crate) struct ServerCounters {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    /// Connections holding a slot on it now (connecting or established).
    current: AtomicUsize,
    total: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    connect_errors: AtomicU64,
}

impl ServerCounters {
    pub(crate) fn new(name: String, addr: SocketAddr) -> Self {
        ServerCounters {
            name,
            addr,
            current: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
        }
    }

    /// Takes a slot if fewer than `maxconn` are taken (no limit: always).
    pub(crate) fn try_reserve(&self, maxconn: Option<u32>) -> bool {
        let limit = maxconn.map_or(usize::MAX, |m| m as usize);
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a slot back.
    pub(crate) fn release(&self) {
        self.current.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts a session established on it.
    pub(crate) fn established(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed connect.
    pub(crate) fn connect_failed(&self) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        ServerStats {
            name: self.name.clone(),
            addr: self.addr,
            current: self.current.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
        }
    }
}

/// The live counters of the proxy itself.
#[derive(Debug, Default)]
pub(crate) struct ProxyCounters {
    pub(crate) current: AtomicUsize,
    pub(crate) total: AtomicU64,
    /// Clients closed without a server: none available, queue timeout, every attempt failed.
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) redispatches: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
}

/// One server's counters at one moment (HAProxy's stats columns `scur`, `stot`, `bin`,
/// `bout`, `econ`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStats {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Sessions on it now, including connects under way.
    pub current: usize,
    /// Sessions established on it since start.
    pub total: u64,
    /// Bytes sent to it (from clients).
    pub bytes_in: u64,
    /// Bytes received from it (to clients).
    pub bytes_out: u64,
    /// Connects to it that failed (refused, unreachable, timed out).
    pub connect_errors: u64,
}

/// A proxy's counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyStats {
    /// The proxy's name.
    pub name: String,
    /// Client connections served now.
    pub current: usize,
    /// Client connections accepted since start.
    pub total: u64,
    /// Clients closed because no server could take them (none available, queue timeout,
    /// every connect attempt failed).
    pub failed: u64,
    /// Connect attempts made again after a failure (HAProxy `wretr`).
    pub retries: u64,
    /// Retries that went to another server (HAProxy `wredis`).
    pub redispatches: u64,
    /// Connections closed because no byte moved for the idle timeout.
    pub idle_timeouts: u64,
    /// Per server, in configuration order.
    pub servers: Vec<ServerStats>,
}

impl ProxyStats {
    pub(crate) fn collect(name: &str, proxy: &ProxyCounters, servers: &[ServerCounters]) -> Self {
        ProxyStats {
            name: name.to_owned(),
            current: proxy.current.load(Ordering::Relaxed),
            total: proxy.total.load(Ordering::Relaxed),
            failed: proxy.failed.load(Ordering::Relaxed),
            retries: proxy.retries.load(Ordering::Relaxed),
            redispatches: proxy.redispatches.load(Ordering::Relaxed),
            idle_timeouts: proxy.idle_timeouts.load(Ordering::Relaxed),
            servers: servers.iter().map(ServerCounters::snapshot).collect(),
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
        assert_eq!(server.snapshot().current, 3);
    }
}
