//! The settings of a TCP proxy, as plain Rust values (lbd's config loader fills them in).

use std::net::SocketAddr;
use std::time::Duration;

/// One `[[listen]]` section in `mode = "tcp"`: where to listen, where to send, how long to
/// wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSettings {
    /// The proxy's name (the `[[listen]]` `name`), used in logs and stats.
    pub name: String,
    /// The address to listen on; may be a VIP this host does not hold yet (`IP_FREEBIND`).
    pub bind: SocketAddr,
    /// The servers, in configuration order (which `balance first` fills in turn).
    pub servers: Vec<ServerSettings>,
    /// How many times a failed connect is tried again (HAProxy `retries`).
    pub retries: u32,
    /// Whether the last retry goes to another server (HAProxy `option redispatch`).
    pub redispatch: bool,
    /// How long to wait before retrying the same server after a failed connect (HAProxy's
    /// turn-around timer, `min(timeout connect, 1s)`); a redispatch does not wait.
    pub retry_delay: Duration,
    /// The timeouts.
    pub timeouts: Timeouts,
    /// The most client connections served at once (HAProxy `maxconn`, at least 1); further
    /// clients wait in the listen backlog until one finishes.
    pub maxconn: u32,
    /// The length of the kernel's listen backlog.
    pub backlog: u32,
}

impl TcpSettings {
    /// Settings with HAProxy's defaults: 3 retries, redispatch on, the default
    /// [`Timeouts`], 3000 connections and a backlog of 1024.
    pub fn new(name: impl Into<String>, bind: SocketAddr, servers: Vec<ServerSettings>) -> Self {
        let timeouts = Timeouts::default();
        TcpSettings {
            name: name.into(),
            bind,
            servers,
            retries: 3,
            redispatch: true,
            retry_delay: timeouts.connect.min(Duration::from_secs(1)),
            timeouts,
            maxconn: 3000,
            backlog: 1024,
        }
    }
}

/// One backend server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// Its name: the key in the [`BackendSet`](lb_core::BackendSet), shown in stats.
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its weight (0 takes it out of rotation).
    pub weight: u32,
    /// The most connections it gets at once (HAProxy server `maxconn`); a client finding all
    /// servers full waits up to [`Timeouts::queue`] for a slot.
    pub maxconn: Option<u32>,
}

impl ServerSettings {
    /// A server with weight 1 and no connection limit.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        ServerSettings {
            name: name.into(),
            addr,
            weight: 1,
            maxconn: None,
        }
    }
}

/// The timeouts of a TCP proxy (HAProxy `timeout connect|client|server|queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long one connect to a server may take.
    pub connect: Duration,
    /// How long the client side may stay silent.
    pub client: Duration,
    /// How long the server side may stay silent.
    pub server: Duration,
    /// How long a client may wait for a server slot when every server is at its `maxconn`.
    pub queue: Duration,
}

impl Timeouts {
    /// The idle timeout of a spliced connection: in TCP mode every byte that moves crosses
    /// both sides, so the connection closes when no byte moved in either direction for the
    /// shorter of `client` and `server`.
    pub fn idle(&self) -> Duration {
        self.client.min(self.server)
    }
}

impl Default for Timeouts {
    /// DESIGN.md's example values: connect 5s, client and server 50s, queue 1 minute.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            client: Duration::from_secs(50),
            server: Duration::from_secs(50),
            queue: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_timeout_is_the_shorter_of_timeout_client_and_timeout_server() {
        let timeouts = Timeouts {
            client: Duration::from_secs(30),
            server: Duration::from_secs(50),
            ..Timeouts::default()
        };
        assert_eq!(timeouts.idle(), Duration::from_secs(30));
    }

    #[test]
    fn the_retry_delay_defaults_to_haproxys_turn_around_timer() {
        let settings = TcpSettings::new("web", "127.0.0.1:80".parse().unwrap(), Vec::new());
        assert_eq!(settings.retry_delay, Duration::from_secs(1));
        assert_eq!((settings.retries, settings.redispatch), (3, true));
    }
}
