//! The settings of a proxy, as plain Rust values (lbd's config loader fills them in).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::HashKey;

/// One `[[listen]]` section in `mode = "tcp"`: where to listen, where to send, how long to
/// wait (and the part of an [`HttpSettings`] that is the same in HTTP mode).
#[derive(Clone)]
#[non_exhaustive]
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
    /// TLS termination: the server configuration (certificates chosen by SNI, usually no
    /// ALPN). Each client's handshake must finish within `timeouts.connect`; the decrypted
    /// stream is then spliced with the server. `None`: plain TCP.
    #[cfg(feature = "proxy-tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A limit shared with other proxies (HAProxy's global `maxconn`); none by default.
    pub limit: Option<ConnectionLimit>,
}

/// A connection limit shared by several proxies (HAProxy's global `maxconn`): a proxy given
/// one takes a slot for each client it accepts, besides its own `maxconn`; at the limit every
/// proxy sharing it stops accepting (clients wait in the kernel's backlog) until a client of
/// any of them leaves.
#[derive(Clone, Debug)]
pub struct ConnectionLimit(Arc<tokio::sync::Semaphore>);

impl ConnectionLimit {
    /// A limit of `max` connections (at least 1).
    #[must_use]
    pub fn new(max: u32) -> Self {
        ConnectionLimit(Arc::new(tokio::sync::Semaphore::new(max.max(1) as usize)))
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Waits for a slot, held until the permit drops (`None`: the limit was closed).
    pub(crate) async fn acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().acquire_owned().await.ok()
    }
}

impl PartialEq for ConnectionLimit {
    /// The same limit (not merely an equal size).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for TcpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSettings")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("servers", &self.servers)
            .field("retries", &self.retries)
            .field("redispatch", &self.redispatch)
            .field("retry_delay", &self.retry_delay)
            .field("timeouts", &self.timeouts)
            .field("maxconn", &self.maxconn)
            .field("backlog", &self.backlog)
            .field("tls", &tls_is_some(self))
            .field("limit", &self.limit)
            .finish()
    }
}

/// Equal when every field is; TLS configurations compare by identity (the same `Arc`).
impl PartialEq for TcpSettings {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.bind == other.bind
            && self.servers == other.servers
            && self.retries == other.retries
            && self.redispatch == other.redispatch
            && self.retry_delay == other.retry_delay
            && self.timeouts == other.timeouts
            && self.maxconn == other.maxconn
            && self.backlog == other.backlog
            && same_tls(self, other)
            && self.limit == other.limit
    }
}

impl Eq for TcpSettings {}

/// What the settings structs with a `tls` field share, for `Debug` and `PartialEq`.
macro_rules! tls_field {
    ($($t:ty),*) => {$(
        impl HasTls for $t {
            fn tls_ptr(&self) -> Option<*const ()> {
                #[cfg(feature = "proxy-tls")]
                return self.tls.as_ref().map(|c| Arc::as_ptr(c).cast());
                #[cfg(not(feature = "proxy-tls"))]
                None
            }
        }
    )*};
}

/// A settings struct whose `tls` (feature `proxy-tls`) is compared by identity.
pub(crate) trait HasTls {
    /// The configuration's address, if any.
    fn tls_ptr(&self) -> Option<*const ()>;
}

tls_field!(TcpSettings, ServerSettings);

/// Whether it has a TLS configuration.
fn tls_is_some(settings: &impl HasTls) -> bool {
    settings.tls_ptr().is_some()
}

/// Whether both have no TLS configuration or the same one (the same `Arc`).
pub(crate) fn same_tls<T: HasTls>(a: &T, b: &T) -> bool {
    a.tls_ptr() == b.tls_ptr()
}

impl TcpSettings {
    /// Settings with HAProxy's defaults: 3 retries, redispatch on, the default
    /// [`Timeouts`], 3000 connections, a backlog of 1024, no TLS.
    #[must_use]
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
            #[cfg(feature = "proxy-tls")]
            tls: None,
            limit: None,
        }
    }
}

/// One backend server.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// Its name: the key in the [`BackendSet`](crate::BackendSet), shown in stats.
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its weight (0 takes it out of rotation).
    pub weight: u32,
    /// The most connections it gets at once (HAProxy server `maxconn`); a client finding all
    /// servers full waits up to [`Timeouts::queue`] for a slot.
    pub maxconn: Option<u32>,
    /// TLS towards it (`tls = true`): the client configuration (trust roots or
    /// `verify = "none"`; ALPN `http/1.1` in HTTP mode, none in TCP mode). The server name
    /// sent and checked is its IP address; in TCP mode the handshake is part of the connect
    /// (within `timeouts.connect`, retried as a failed connect). `None`: plain TCP.
    #[cfg(feature = "proxy-tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ServerSettings {
    /// A server with weight 1, no connection limit and no TLS.
    #[must_use]
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        ServerSettings {
            name: name.into(),
            addr,
            weight: 1,
            maxconn: None,
            #[cfg(feature = "proxy-tls")]
            tls: None,
        }
    }

    /// With weight `weight` (0 takes it out of rotation).
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// With at most `maxconn` connections (TCP) or requests (HTTP) at once.
    #[must_use]
    pub fn with_maxconn(mut self, maxconn: u32) -> Self {
        self.maxconn = Some(maxconn);
        self
    }

    /// With TLS towards it, as `config` says (see [`tls::client_config`](super::tls::client_config)).
    #[cfg(feature = "proxy-tls")]
    #[must_use]
    pub fn with_tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("weight", &self.weight)
            .field("maxconn", &self.maxconn)
            .field("tls", &tls_is_some(self))
            .finish()
    }
}

/// Equal when every field is; TLS configurations compare by identity (the same `Arc`).
impl PartialEq for ServerSettings {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.addr == other.addr
            && self.weight == other.weight
            && self.maxconn == other.maxconn
            && same_tls(self, other)
    }
}

impl Eq for ServerSettings {}

/// One `[[listen]]` section in `mode = "http"`: what [`TcpSettings`] holds (`listen`), plus
/// how requests are balanced and answered.
///
/// In HTTP mode `listen.servers` may be empty only with `redirect_https`; `listen.retries`
/// also covers requests safe to repeat; `listen.timeouts.server` bounds the wait for a
/// response head and `listen.timeouts.client` an idle keep-alive client; `listen.tls` offers
/// ALPN `h2` and `http/1.1`, and a connection that negotiated `h2` is served as HTTP/2.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpSettings {
    /// What a TCP listener has too: name, address, servers, retries, timeouts, `maxconn`,
    /// backlog, TLS termination and the shared limit.
    pub listen: TcpSettings,
    /// How long a client has to send a complete request head (HAProxy `timeout
    /// http-request`): slower ones are closed (slowloris).
    pub http_request: Duration,
    /// What consistent hashing hashes (`balance source | uri | hdr(NAME)`); `None` for the
    /// other algorithms (a hash algorithm without a key falls back to round robin).
    pub hash_key: Option<HashKey>,
    /// Cookie stickiness (`cookie = "SERVERID"`, HAProxy `cookie NAME insert indirect
    /// nocache`).
    pub cookie: Option<String>,
    /// Answer every request with a 301 to the same URL over `https` (no server is used).
    pub redirect_https: bool,
    /// Append the client's address in `X-Forwarded-For` (HAProxy `option forwardfor`).
    pub forward_for: bool,
}

impl HttpSettings {
    /// Settings with HAProxy's defaults (as [`TcpSettings::new`]), `http_request` = the
    /// client timeout, `X-Forwarded-For` on, no hashing, no cookie, no TLS.
    #[must_use]
    pub fn new(name: impl Into<String>, bind: SocketAddr, servers: Vec<ServerSettings>) -> Self {
        Self::from(TcpSettings::new(name, bind, servers))
    }
}

impl From<TcpSettings> for HttpSettings {
    /// `listen` with the HTTP defaults: `http_request` = its client timeout, `X-Forwarded-For`
    /// on, no hashing, no cookie, no redirect.
    fn from(listen: TcpSettings) -> Self {
        HttpSettings {
            http_request: listen.timeouts.client,
            listen,
            hash_key: None,
            cookie: None,
            redirect_https: false,
            forward_for: true,
        }
    }
}

/// The timeouts of a TCP proxy (HAProxy `timeout connect|client|server|queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The [default](Timeouts::default) timeouts with `connect` for one connect and `idle` for
    /// both `client` and `server`; set `queue` (and the others) as fields.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lb_core::proxy::Timeouts;
    ///
    /// let mut timeouts = Timeouts::new(Duration::from_secs(1), Duration::from_secs(30));
    /// timeouts.queue = Duration::from_secs(5);
    /// assert_eq!(timeouts.idle(), Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn new(connect: Duration, idle: Duration) -> Self {
        Timeouts {
            connect,
            client: idle,
            server: idle,
            ..Timeouts::default()
        }
    }

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
