//! What both proxies are in front of their servers (HAProxy's frontend): the name, the listen
//! socket with its `maxconn` and the limit shared with other proxies, TLS termination, the
//! counters, and the servers; from start to drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
#[cfg(feature = "proxy-tls")]
use tokio_rustls::TlsAcceptor;

use crate::{Algorithm, RetryLayer};

use super::error::ProxyError;
use super::listener::{admit, ignore_syns, listen};
use super::servers::{Policy, Servers};
use super::settings::{ConnectionLimit, ServerSettings, TcpSettings};
use super::stats::{ProxyCounters, ProxyStats};

/// What both proxies have alike over their `shared.front` and `listening`: `Debug`, and
/// (`accessors`, inside their `impl`, with what they count in flight and what their drain
/// does to the connections) `local_addr`, `backends`, `servers`, `stats`, `open_connections`,
/// `wait_idle` and `drain`.
macro_rules! alike {
    (accessors, in_flight = $in_flight:literal, drain = $drain:literal) => {
        /// The backend set its picks come from, keyed by server name: health checks and an
        /// admin API change health, admin state, weights and `maxconn` through it, and it
        /// counts every
        #[doc = $in_flight]
        /// (what `leastconn` reads).
        pub fn backends(&self) -> &std::sync::Arc<$crate::BackendSet<String, A>> {
            &self.shared.front.servers.backends
        }

        /// The address it listens on (with the actual port when `bind` asked for port 0).
        pub fn local_addr(&self) -> std::net::SocketAddr {
            self.listening.local_addr
        }

        /// Its servers now, in order (as started, or as the last
        /// [`update_servers`](Self::update_servers) gave them).
        pub fn servers(&self) -> Vec<$crate::proxy::ServerSettings> {
            self.shared.front.servers.settings()
        }

        /// Its counters now.
        pub fn stats(&self) -> $crate::proxy::ProxyStats {
            self.shared.front.stats()
        }

        /// The client connections open now.
        pub fn open_connections(&self) -> usize {
            self.shared.front.counters.current.now()
        }

        /// Waits until no client connection is open, or `deadline` has passed, closing none
        /// and still accepting: what a host does between handing its address to a peer and
        /// removing it (the clients that have not yet heard of the new owner still arrive).
        /// The report's `closed` counts the connections still open at the deadline.
        pub async fn wait_idle(&self, deadline: std::time::Duration) -> $crate::proxy::DrainReport {
            self.shared.front.wait_idle(deadline).await
        }

        /// Stops accepting (the listener closes, so new clients are refused),
        #[doc = $drain]
        pub async fn drain(mut self, deadline: std::time::Duration) -> $crate::proxy::DrainReport {
            self.listening.drain(&self.shared.front, deadline).await
        }
    };
    ($proxy:ident) => {
        impl<A: $crate::Algorithm> std::fmt::Debug for $proxy<A> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($proxy))
                    .field("name", &self.shared.front.name)
                    .field("local_addr", &self.listening.local_addr)
                    .finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use alike;

/// A proxy's running accept loop: the address it listens on, the loop's task, and the channel
/// that tells the proxy's connections what to do (`W`: serve, close, stop...). Dropping it
/// stops accepting and tells the connections to stop.
pub(crate) struct Listening<W: Copy> {
    pub(crate) local_addr: SocketAddr,
    task: JoinHandle<()>,
    pub(crate) signal: watch::Sender<W>,
    /// What tells the connections to finish (when the proxy drains).
    draining: W,
    /// What tells the connections to stop.
    stopped: W,
}

impl<W: Copy + Send + Sync + 'static> Listening<W> {
    /// Spawns the accept loop over `listener` (from [`Frontend::open`], with its address):
    /// `front` picks the frontend out of `shared` (what every connection task of the proxy
    /// shares), and each client admitted is served on a task of its own by `serve`, with a
    /// clone of `shared` and a receiver of the signal, and counted until `serve` returns; the
    /// signal starts at `first`, is set to `draining` when the proxy drains and to `stopped`
    /// when it stops. Logs that the proxy (of `mode`) listens.
    pub(crate) fn start<S, A, E, F>(
        shared: &Arc<S>,
        front: fn(&S) -> &Frontend<A, E>,
        (listener, local_addr): (Arc<TcpListener>, SocketAddr),
        [first, draining, stopped]: [W; 3],
        serve: fn(Arc<S>, TcpStream, SocketAddr, watch::Receiver<W>) -> F,
        mode: &str,
    ) -> Self
    where
        S: Send + Sync + 'static,
        A: Algorithm,
        E: 'static,
        Frontend<A, E>: Sync,
        F: Future<Output = ()> + Send + 'static,
    {
        let (signal, receiver) = watch::channel(first);
        let (name, tls) = (&front(shared).name, front(shared).terminates_tls());
        tracing::info!(proxy = %name, %local_addr, tls, "listening ({mode})");
        let shared = shared.clone();
        let task = tokio::spawn(async move {
            let serve = |stream, peer, permit: OwnedSemaphorePermit| {
                let shared = shared.clone();
                let connection = serve(shared.clone(), stream, peer, receiver.clone());
                async move {
                    connection.await;
                    // Closed: its slot in `maxconn` is free.
                    front(&shared).counters.current.leave();
                    drop(permit);
                }
            };
            front(&shared).accept(listener, serve).await;
        });
        Listening {
            local_addr,
            task,
            signal,
            draining,
            stopped,
        }
    }

    /// Drains `front` (see [`Frontend::drain`]): stops accepting, tells the connections to
    /// finish, and at the deadline tells those left to stop.
    pub(crate) async fn drain<A: Algorithm, E>(
        &mut self,
        front: &Frontend<A, E>,
        deadline: Duration,
    ) -> DrainReport {
        let (signal, draining, stopped) = (&self.signal, self.draining, self.stopped);
        let draining = || {
            signal.send_replace(draining);
        };
        let stop = || {
            signal.send_replace(stopped);
        };
        front.drain(&mut self.task, deadline, draining, stop).await
    }
}

impl<W: Copy> Drop for Listening<W> {
    fn drop(&mut self) {
        self.task.abort();
        self.signal.send_replace(self.stopped);
    }
}

/// What a proxy's drain saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Connections in flight when the drain began.
    pub in_flight: usize,
    /// Connections still open at the deadline, closed by the proxy.
    pub closed: usize,
    /// How long the drain took.
    pub took: Duration,
}

/// How often [`Frontend::wait_idle`] looks at the connection count.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// The part of a proxy that every connection task shares whatever the mode; `E` is what each
/// server carries besides its settings (the HTTP connection pool).
pub(crate) struct Frontend<A: Algorithm, E> {
    pub(crate) name: String,
    pub(crate) servers: Servers<A, E>,
    pub(crate) counters: ProxyCounters,
    pub(crate) maxconn: u32,
    /// One permit per client connection: the accept loop takes one before accepting.
    pub(crate) connections: Arc<Semaphore>,
    /// The limit shared with other proxies, if any.
    pub(crate) limit: Option<ConnectionLimit>,
    /// TLS termination, when the listener has certificates.
    #[cfg(feature = "proxy-tls")]
    pub(crate) tls: Option<TlsAcceptor>,
    /// The listen socket, owned by the accept loop (closed with it: a drained proxy neither
    /// holds its address nor takes clients into a backlog), for its SYN gate.
    gate: std::sync::Weak<TcpListener>,
}

impl<A: Algorithm, E> Frontend<A, E> {
    /// Checks `settings`, puts its servers in a backend set over `algorithm` (each with
    /// `extra`; none at all only when `allow_empty`), and listens on `settings.bind`: the
    /// frontend, and its listener with the address it got.
    pub(crate) fn open(
        settings: TcpSettings,
        algorithm: A,
        allow_empty: bool,
        extra: impl Fn(&ServerSettings) -> E,
    ) -> Result<(Self, (Arc<TcpListener>, SocketAddr)), ProxyError> {
        let name = settings.name;
        if settings.maxconn == 0 {
            return Err(ProxyError::ZeroMaxConn { proxy: name });
        }
        let policy = Policy {
            retry: RetryLayer::new(settings.retries as usize, settings.redispatch)
                .delay(settings.retry_delay),
            connect: settings.timeouts.connect,
            queue: settings.timeouts.queue,
        };
        let servers = Servers::new(
            &name,
            &settings.servers,
            algorithm,
            policy,
            allow_empty,
            extra,
        )?;
        let bind_error = |source| ProxyError::Bind {
            proxy: name.clone(),
            addr: settings.bind,
            source,
        };
        let listener = Arc::new(listen(settings.bind, settings.backlog).map_err(bind_error)?);
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let gate = Arc::downgrade(&listener);
        let frontend = Frontend {
            gate,
            name,
            servers,
            counters: ProxyCounters::default(),
            maxconn: settings.maxconn,
            connections: Arc::new(Semaphore::new(settings.maxconn as usize)),
            limit: settings.limit,
            #[cfg(feature = "proxy-tls")]
            tls: settings.tls.map(TlsAcceptor::from),
        };
        Ok((frontend, (listener, local_addr)))
    }

    /// Whether the listener terminates TLS.
    pub(crate) fn terminates_tls(&self) -> bool {
        #[cfg(feature = "proxy-tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "proxy-tls"))]
        false
    }

    /// Admits clients (see [`admit`]) and runs `serve` for each on a task of its own, until a
    /// limit is closed.
    pub(crate) async fn accept<F>(
        &self,
        listener: Arc<TcpListener>,
        serve: impl Fn(TcpStream, SocketAddr, OwnedSemaphorePermit) -> F,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let (connections, limit) = (&self.connections, self.limit.as_ref());
        while let Some(client) = admit(&listener, connections, limit, &self.name).await {
            self.counters.accepted();
            let held = client.shared;
            let connection = serve(client.stream, client.peer, client.permit);
            tokio::spawn(async move {
                connection.await;
                drop(held);
            });
        }
    }

    /// Replaces the servers (see the proxies' `update_servers`).
    pub(crate) fn update_servers(
        &self,
        servers: &[ServerSettings],
        allow_empty: bool,
        extra: impl Fn(&ServerSettings) -> E,
    ) -> Result<(), ProxyError> {
        self.servers.update(&self.name, servers, allow_empty, extra)
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> ProxyStats {
        ProxyStats::collect(&self.name, &self.counters, &self.servers.table.load())
    }

    /// Whether new clients are ignored (see `listener::ignore_syns`); a failure is logged (the
    /// clients are then served, which is what the proxy did anyway).
    pub(crate) fn ignore_new_clients(&self, on: bool) {
        // A listener already closed (drained) has no clients to ignore.
        let Some(listener) = self.gate.upgrade() else {
            return;
        };
        if let Err(e) = ignore_syns(socket2::SockRef::from(&*listener), on) {
            tracing::warn!(proxy = %self.name, error = %e, on, "cannot set the listen socket's SYN filter");
        }
    }

    /// See the proxies' `wait_idle`: polls the connection count every
    /// [`IDLE_POLL`], which costs nothing while connections are served.
    pub(crate) async fn wait_idle(&self, deadline: Duration) -> DrainReport {
        let started = Instant::now();
        let in_flight = self.counters.current.now();
        let mut open = in_flight;
        while open > 0 && started.elapsed() < deadline {
            tokio::time::sleep(IDLE_POLL.min(deadline.saturating_sub(started.elapsed()))).await;
            open = self.counters.current.now();
        }
        DrainReport {
            in_flight,
            closed: open,
            took: started.elapsed(),
        }
    }

    /// Stops `accept` (the listener closes with it), calls `draining`, waits up to `deadline`
    /// for every connection to finish, and at the deadline calls `stop` (which closes those
    /// left) and waits for them.
    pub(crate) async fn drain(
        &self,
        accept: &mut JoinHandle<()>,
        deadline: Duration,
        draining: impl FnOnce(),
        stop: impl FnOnce(),
    ) -> DrainReport {
        let started = Instant::now();
        accept.abort();
        // The listener is dropped with the accept task.
        let _ = accept.await;
        let in_flight = self.counters.current.now();
        draining();
        let all = self.maxconn;
        let connections = self.connections.clone();
        let finished = tokio::time::timeout(deadline, connections.acquire_many(all)).await;
        let mut closed = 0;
        if finished.is_err() {
            closed = self.counters.current.now();
            tracing::info!(proxy = %self.name, closed, "drain deadline reached: closing");
            stop();
            let _ = connections.acquire_many(all).await;
        }
        DrainReport {
            in_flight,
            closed,
            took: started.elapsed(),
        }
    }
}
