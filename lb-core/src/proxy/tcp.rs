//! [`TcpProxy`]: lbd's `mode = "tcp"` listener (accept, pick, connect with retries, splice).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::{Algorithm, BackendSet, RetryLayer};
#[cfg(feature = "proxy-tls")]
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
#[cfg(feature = "proxy-tls")]
use tokio_rustls::{TlsAcceptor, TlsConnector, client};

use super::error::ProxyError;
use super::listener::{admit, listen};
use super::servers::{Pick, Policy, Server, Servers};
use super::settings::{ConnectionLimit, ServerSettings, TcpSettings, Timeouts};
use super::splice::{Ended, splice};
use super::stats::{ProxyCounters, ProxyStats};

/// A running TCP proxy: it accepts clients on its listener, picks a server for each through
/// an `lb-core` [`BackendSet`], and copies bytes both ways until both sides closed.
///
/// Dropping it stops accepting and closes every connection at once; [`drain`](Self::drain)
/// lets them finish first.
#[must_use = "dropping the proxy stops it and closes its connections"]
pub struct TcpProxy<A: Algorithm> {
    shared: Arc<Shared<A>>,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl<A: Algorithm> fmt::Debug for TcpProxy<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpProxy")
            .field("name", &self.shared.name)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// What [`TcpProxy::drain`] saw.
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

/// What every connection task shares.
struct Shared<A: Algorithm> {
    name: String,
    timeouts: Timeouts,
    maxconn: u32,
    servers: Servers<A, ()>,
    counters: ProxyCounters,
    /// One permit per client connection: the accept loop takes one before accepting.
    connections: Arc<Semaphore>,
    /// The limit shared with other proxies, if any.
    limit: Option<ConnectionLimit>,
    /// TLS termination, when the listener has certificates.
    #[cfg(feature = "proxy-tls")]
    tls: Option<TlsAcceptor>,
}

/// A connection to a server: plain, or TLS when the server has `tls`.
enum Upstream {
    Plain(TcpStream),
    #[cfg(feature = "proxy-tls")]
    Tls(Box<client::TlsStream<TcpStream>>),
}

/// Opens a connection to `server`: TCP, then the TLS handshake when it has `tls` (the whole
/// within the caller's connect timeout, so a failed handshake is a failed connect).
async fn open<E>(server: &Server<E>) -> std::io::Result<Upstream> {
    let stream = TcpStream::connect(server.settings.addr).await?;
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "proxy-tls")]
    if let Some(config) = &server.settings.tls {
        let name = ServerName::IpAddress(server.settings.addr.ip().into());
        let tls = TlsConnector::from(config.clone())
            .connect(name, stream)
            .await?;
        return Ok(Upstream::Tls(Box::new(tls)));
    }
    Ok(Upstream::Plain(stream))
}

impl<A: Algorithm> TcpProxy<A> {
    /// Listens on `settings.bind` (with `SO_REUSEADDR` and `IP_FREEBIND`) and starts serving
    /// with `algorithm`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with IO and time enabled.
    pub fn start(settings: TcpSettings, algorithm: A) -> Result<Self, ProxyError> {
        let name = settings.name.clone();
        if settings.maxconn == 0 {
            return Err(ProxyError::ZeroMaxConn { proxy: name });
        }
        let policy = Policy {
            retry: RetryLayer::new(settings.retries as usize, settings.redispatch)
                .delay(settings.retry_delay),
            connect: settings.timeouts.connect,
            queue: settings.timeouts.queue,
        };
        let servers = Servers::new(&name, &settings.servers, algorithm, policy, false, |_| ())?;
        let listener =
            listen(settings.bind, settings.backlog).map_err(|source| ProxyError::Bind {
                proxy: name.clone(),
                addr: settings.bind,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            proxy: name.clone(),
            addr: settings.bind,
            source,
        })?;
        let shared = Arc::new(Shared {
            name,
            timeouts: settings.timeouts,
            maxconn: settings.maxconn,
            servers,
            counters: ProxyCounters::default(),
            connections: Arc::new(Semaphore::new(settings.maxconn as usize)),
            limit: settings.limit.clone(),
            #[cfg(feature = "proxy-tls")]
            tls: settings.tls.map(TlsAcceptor::from),
        });
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::info!(proxy = %shared.name, %local_addr, tls = shared.terminates_tls(), "listening (tcp)");
        Ok(TcpProxy {
            shared,
            local_addr,
            accept,
            stop,
        })
    }

    /// The address it listens on (with the actual port when `bind` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The backend set its picks come from, keyed by server name: health checks and an admin
    /// API change health, admin state, weights and `maxconn` through it, and it counts every
    /// connection in flight on its server for as long as it lasts (what `leastconn` reads).
    pub fn backends(&self) -> &Arc<BackendSet<String, A>> {
        &self.shared.servers.backends
    }

    /// Replaces its servers while it runs (a reload), without closing any connection: new
    /// clients are balanced over `servers`, connections on a server that went away go on
    /// until they close. A server whose name, address and TLS configuration stay keeps its
    /// counters and its health in [`backends`](Self::backends); new servers join up; every
    /// weight and `maxconn` is set as `servers` says.
    ///
    /// Fails, changing nothing, when `servers` is empty or names a server twice.
    pub fn update_servers(&self, servers: &[ServerSettings]) -> Result<(), ProxyError> {
        self.shared
            .servers
            .update(&self.shared.name, servers, false, |_| ())
    }

    /// Its servers now, in order (as started, or as the last
    /// [`update_servers`](Self::update_servers) gave them).
    pub fn servers(&self) -> Vec<ServerSettings> {
        self.shared.servers.settings()
    }

    /// Its counters now.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats::collect(
            &self.shared.name,
            &self.shared.counters,
            &self.shared.servers.table.load(),
        )
    }

    /// Stops accepting (the listener closes, so new clients are refused), lets the
    /// connections in flight finish for up to `deadline`, then closes those left.
    pub async fn drain(mut self, deadline: Duration) -> DrainReport {
        let started = Instant::now();
        self.accept.abort();
        // The listener is dropped with the accept task.
        let _ = (&mut self.accept).await;
        let in_flight = self.shared.counters.current.now();
        let all = self.shared.maxconn;
        let connections = self.shared.connections.clone();
        let finished = tokio::time::timeout(deadline, connections.acquire_many(all)).await;
        let mut closed = 0;
        if finished.is_err() {
            closed = self.shared.counters.current.now();
            tracing::info!(proxy = %self.shared.name, closed, "drain deadline reached: closing");
            self.stop.send_replace(true);
            let _ = connections.acquire_many(all).await;
        }
        DrainReport {
            in_flight,
            closed,
            took: started.elapsed(),
        }
    }
}

impl<A: Algorithm> Drop for TcpProxy<A> {
    fn drop(&mut self) {
        self.accept.abort();
        self.stop.send_replace(true);
    }
}

/// Admits clients (see [`admit`]) and serves each on a task of its own.
async fn accept_loop<A: Algorithm>(
    listener: TcpListener,
    shared: Arc<Shared<A>>,
    stopped: watch::Receiver<bool>,
) {
    let (connections, limit) = (&shared.connections, shared.limit.as_ref());
    while let Some(client) = admit(&listener, connections, limit, &shared.name).await {
        shared.counters.accepted();
        let held = client.shared;
        let connection = serve(
            shared.clone(),
            client.stream,
            client.peer,
            client.permit,
            stopped.clone(),
        );
        tokio::spawn(async move {
            connection.await;
            drop(held);
        });
    }
}

/// One client connection, from accept to close.
async fn serve<A: Algorithm>(
    shared: Arc<Shared<A>>,
    client: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::select! {
        () = shared.handle(client, peer) => {}
        // A closed channel (the proxy dropped) stops too.
        _ = stopped.wait_for(|stop| *stop) => {}
    }
    shared.counters.current.leave();
    drop(permit);
}

impl<A: Algorithm> Shared<A> {
    /// Whether the listener terminates TLS.
    fn terminates_tls(&self) -> bool {
        #[cfg(feature = "proxy-tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "proxy-tls"))]
        false
    }

    /// Shakes hands with a TLS client (within `timeouts.connect`) when the listener
    /// terminates TLS, then forwards.
    #[cfg(not(feature = "proxy-tls"))]
    async fn handle(&self, client: TcpStream, peer: SocketAddr) {
        let _ = client.set_nodelay(true);
        self.forward(client, peer).await;
    }

    /// Shakes hands with a TLS client (within `timeouts.connect`) when the listener
    /// terminates TLS, then forwards.
    #[cfg(feature = "proxy-tls")]
    async fn handle(&self, client: TcpStream, peer: SocketAddr) {
        let _ = client.set_nodelay(true);
        let Some(acceptor) = &self.tls else {
            return self.forward(client, peer).await;
        };
        match tokio::time::timeout(self.timeouts.connect, acceptor.accept(client)).await {
            Ok(Ok(tls)) => self.forward(tls, peer).await,
            Ok(Err(e)) => {
                tracing::debug!(proxy = %self.name, %peer, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(proxy = %self.name, %peer, "TLS handshake timed out");
            }
        }
    }

    /// Picks a server, connects (with retries), and splices the client with it.
    async fn forward<C>(&self, mut client: C, peer: SocketAddr)
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let mut key = [0u8; 16];
        let key = match peer.ip() {
            IpAddr::V4(ip) => {
                key[..4].copy_from_slice(&ip.octets());
                &key[..4]
            }
            IpAddr::V6(ip) => {
                key.copy_from_slice(&ip.octets());
                &key[..]
            }
        };
        let pick = Pick {
            key: Some(key),
            sticky: None,
        };
        let connected = match self.servers.reserve(&pick, None).await {
            Ok(slot) => {
                let mut attempts = self.servers.policy.retry.attempts();
                self.servers
                    .connect(&pick, slot, &mut attempts, async |server| {
                        open(server).await
                    })
                    .await
            }
            Err(refused) => Err(refused),
        };
        let (mut server, slot) = match connected {
            Ok(connected) => connected,
            Err(refused) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %self.name, %peer, reason = ?refused, "no server for client");
                return;
            }
        };
        let counters = &slot.server().counters;
        counters.established();
        let (idle, bytes_in, bytes_out) = (
            self.timeouts.idle(),
            &counters.bytes_in,
            &counters.bytes_out,
        );
        let ended = match &mut server {
            Upstream::Plain(server) => splice(&mut client, server, idle, bytes_in, bytes_out).await,
            #[cfg(feature = "proxy-tls")]
            Upstream::Tls(server) => {
                splice(&mut client, &mut **server, idle, bytes_in, bytes_out).await
            }
        };
        match ended {
            Ended::Closed => {}
            Ended::Idle => {
                self.counters.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(proxy = %self.name, %peer, server = %counters.name, "idle timeout");
            }
            Ended::Failed(e) => {
                tracing::debug!(proxy = %self.name, %peer, server = %counters.name, error = %e, "connection failed");
            }
        }
    }
}
