//! [`TcpProxy`]: lbd's `mode = "tcp"` listener (accept, pick, connect with retries, splice).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lb_core::{Algorithm, BackendSet, Context, InFlight, NoBackend};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use super::error::ProxyError;
use super::listener::listen;
use super::settings::{TcpSettings, Timeouts};
use super::splice::{Ended, splice};
use super::stats::{ProxyCounters, ProxyStats, ServerCounters};

/// A running TCP proxy: it accepts clients on its listener, picks a server for each through
/// an `lb-core` [`BackendSet`], and copies bytes both ways until both sides closed.
///
/// Dropping it stops accepting and closes every connection at once; [`drain`](Self::drain)
/// lets them finish first.
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
    retries: u32,
    redispatch: bool,
    retry_delay: Duration,
    timeouts: Timeouts,
    maxconn: u32,
    backends: Arc<BackendSet<String, A>>,
    /// In configuration order; `index` finds them by name.
    servers: Vec<ServerCounters>,
    index: HashMap<String, usize>,
    counters: ProxyCounters,
    /// Signalled whenever a server slot is given back (for clients waiting on `maxconn`).
    freed: Notify,
    /// One permit per client connection: the accept loop takes one before accepting.
    connections: Arc<Semaphore>,
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
        if settings.servers.is_empty() {
            return Err(ProxyError::NoServers { proxy: name });
        }
        if settings.maxconn == 0 {
            return Err(ProxyError::ZeroMaxConn { proxy: name });
        }
        let backends = Arc::new(BackendSet::new(algorithm));
        let mut servers = Vec::with_capacity(settings.servers.len());
        let mut index = HashMap::with_capacity(settings.servers.len());
        for server in &settings.servers {
            if index.insert(server.name.clone(), servers.len()).is_some() {
                return Err(ProxyError::DuplicateServer {
                    proxy: name,
                    server: server.name.clone(),
                });
            }
            servers.push(ServerCounters::new(server.name.clone(), server.addr));
            // Names are unique (checked above), so neither update can fail.
            let added = backends
                .insert(server.name.clone(), server.weight)
                .and_then(|()| backends.set_maxconn(&server.name, server.maxconn));
            if added.is_err() {
                return Err(ProxyError::DuplicateServer {
                    proxy: name,
                    server: server.name.clone(),
                });
            }
        }
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
            retries: settings.retries,
            redispatch: settings.redispatch,
            retry_delay: settings.retry_delay,
            timeouts: settings.timeouts,
            maxconn: settings.maxconn,
            backends,
            servers,
            index,
            counters: ProxyCounters::default(),
            freed: Notify::new(),
            connections: Arc::new(Semaphore::new(settings.maxconn as usize)),
        });
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::info!(proxy = %shared.name, %local_addr, "listening (tcp)");
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
        &self.shared.backends
    }

    /// Its counters now.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats::collect(
            &self.shared.name,
            &self.shared.counters,
            &self.shared.servers,
        )
    }

    /// Stops accepting (the listener closes, so new clients are refused), lets the
    /// connections in flight finish for up to `deadline`, then closes those left.
    pub async fn drain(mut self, deadline: Duration) -> DrainReport {
        let started = Instant::now();
        self.accept.abort();
        // The listener is dropped with the accept task.
        let _ = (&mut self.accept).await;
        let in_flight = self.shared.counters.current.load(Ordering::Relaxed);
        let all = self.shared.maxconn;
        let connections = self.shared.connections.clone();
        let finished = tokio::time::timeout(deadline, connections.acquire_many(all)).await;
        let mut closed = 0;
        if finished.is_err() {
            closed = self.shared.counters.current.load(Ordering::Relaxed);
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

/// Takes a connection permit, then accepts: at `maxconn` it stops accepting and further
/// clients wait in the kernel's backlog.
async fn accept_loop<A: Algorithm>(
    listener: TcpListener,
    shared: Arc<Shared<A>>,
    stopped: watch::Receiver<bool>,
) {
    loop {
        let Ok(permit) = shared.connections.clone().acquire_owned().await else {
            return;
        };
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a client gone before accept: back off a little
                // rather than spin.
                tracing::warn!(proxy = %shared.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.counters.total.fetch_add(1, Ordering::Relaxed);
        shared.counters.current.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(shared.clone(), client, peer, permit, stopped.clone()));
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
    shared.counters.current.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// A slot taken on a server: its `current` count and its in-flight count in the backend set,
/// both given back on drop.
struct Slot<'a> {
    index: usize,
    server: &'a ServerCounters,
    _in_flight: InFlight,
    freed: &'a Notify,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.server.release();
        self.freed.notify_waiters();
    }
}

/// Why a client got no server.
#[derive(Debug)]
enum Refused {
    NoBackend(NoBackend),
    QueueTimeout,
    ConnectFailed,
}

impl<A: Algorithm> Shared<A> {
    async fn handle(&self, mut client: TcpStream, peer: SocketAddr) {
        let _ = client.set_nodelay(true);
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
        let (mut server, slot) = match self.connect(key).await {
            Ok(connected) => connected,
            Err(refused) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %self.name, %peer, reason = ?refused, "no server for client");
                return;
            }
        };
        let _ = server.set_nodelay(true);
        slot.server.established();
        let ended = splice(
            &mut client,
            &mut server,
            self.timeouts.idle(),
            &slot.server.bytes_in,
            &slot.server.bytes_out,
        )
        .await;
        match ended {
            Ended::Closed => {}
            Ended::Idle => {
                self.counters.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(proxy = %self.name, %peer, server = %slot.server.name, "idle timeout");
            }
            Ended::Failed(e) => {
                tracing::debug!(proxy = %self.name, %peer, server = %slot.server.name, error = %e, "connection failed");
            }
        }
    }

    /// Connects to a picked server; a failed connect is retried `retries` times on the same
    /// server after `retry_delay`, the last one on another server with `redispatch`
    /// (HAProxy's `retries` and `option redispatch`).
    async fn connect(&self, key: &[u8]) -> Result<(TcpStream, Slot<'_>), Refused> {
        let mut slot = self.reserve(key, None).await?;
        let mut left = self.retries;
        loop {
            let addr = slot.server.addr;
            match tokio::time::timeout(self.timeouts.connect, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok((stream, slot)),
                Ok(Err(e)) => {
                    tracing::debug!(proxy = %self.name, server = %slot.server.name, error = %e, "connect failed");
                }
                Err(_) => {
                    tracing::debug!(proxy = %self.name, server = %slot.server.name, "connect timed out");
                }
            }
            slot.server.connect_failed();
            if left == 0 {
                return Err(Refused::ConnectFailed);
            }
            left -= 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            if left == 0 && self.redispatch {
                let failed = slot.index;
                drop(slot);
                slot = match self.reserve(key, Some(failed)).await {
                    Ok(other) => other,
                    // Only the failed server is left: the last retry goes to it again.
                    Err(Refused::NoBackend(NoBackend::AllExcluded { .. })) => {
                        self.reserve(key, None).await?
                    }
                    Err(refused) => return Err(refused),
                };
                if slot.index != failed {
                    self.counters.redispatches.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                tokio::time::sleep(self.retry_delay).await;
            }
        }
    }

    /// Takes a slot on a server picked for `key`, avoiding server `avoid`; when every
    /// candidate is at its `maxconn` it waits for a slot up to `timeouts.queue`.
    async fn reserve(&self, key: &[u8], avoid: Option<usize>) -> Result<Slot<'_>, Refused> {
        let deadline = tokio::time::Instant::now() + self.timeouts.queue;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a slot freed in between still wakes us.
            freed.as_mut().enable();
            if let Some(slot) = self.try_reserve(key, avoid).map_err(Refused::NoBackend)? {
                return Ok(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Refused::QueueTimeout);
            }
        }
    }

    /// One pass: `Ok(None)` when the servers that could take it are all full.
    fn try_reserve(&self, key: &[u8], avoid: Option<usize>) -> Result<Option<Slot<'_>>, NoBackend> {
        let snapshot = self.backends.snapshot();
        let mut exclude = Vec::new();
        if let Some(slot) = avoid.and_then(|i| snapshot.slot(&self.servers[i].name)) {
            exclude.push(slot);
        }
        let mut full = false;
        loop {
            let context = Context {
                key: Some(key),
                exclude: &exclude,
            };
            let backend = match snapshot.pick(self.backends.algorithm(), &context) {
                Ok(backend) => backend,
                Err(NoBackend::AllExcluded { .. }) if full => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(slot) = snapshot.slot(backend.key()) else {
                return Ok(None);
            };
            // A member added to the set by hand has no address here: never pick it.
            if let Some(&index) = self.index.get(backend.key()) {
                let server = &self.servers[index];
                if server.try_reserve(backend.maxconn()) {
                    return Ok(Some(Slot {
                        index,
                        server,
                        _in_flight: snapshot.start(backend),
                        freed: &self.freed,
                    }));
                }
                full = true;
            }
            exclude.push(slot);
        }
    }
}
