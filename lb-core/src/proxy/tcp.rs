//! [`TcpProxy`]: lbd's `mode = "tcp"` listener (accept, pick, connect with retries, splice).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::Algorithm;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::error::ProxyError;
use super::frontend::{Frontend, Listening, alike};
use super::servers::{Pick, Upstream};
use super::settings::{ServerSettings, TcpSettings, Timeouts};
use super::splice::{Ended, splice};

/// A running TCP proxy: it accepts clients on its listener, picks a server for each through
/// an `lb-core` [`BackendSet`](crate::BackendSet), and copies bytes both ways until both sides closed.
///
/// Dropping it stops accepting and closes every connection at once; [`drain`](Self::drain)
/// lets them finish first.
#[must_use = "dropping the proxy stops it and closes its connections"]
pub struct TcpProxy<A: Algorithm> {
    shared: Arc<Shared<A>>,
    listening: Listening<bool>,
}

alike!(TcpProxy);

/// What every connection task shares.
struct Shared<A: Algorithm> {
    front: Frontend<A, ()>,
    timeouts: Timeouts,
}

impl<A: Algorithm> TcpProxy<A> {
    alike!(
        accessors,
        in_flight = "connection in flight on its server for as long as it lasts",
        drain = "lets the connections in flight finish for up to `deadline`, then closes those \
            left."
    );

    /// Listens on `settings.bind` (with `SO_REUSEADDR` and `IP_FREEBIND`) and starts serving
    /// with `algorithm`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with IO and time enabled.
    pub fn start(settings: TcpSettings, algorithm: A) -> Result<Self, ProxyError> {
        let timeouts = settings.timeouts;
        let (front, bound) = Frontend::open(settings, algorithm, false, |_| ())?;
        let shared = Arc::new(Shared { front, timeouts });
        // Draining, connections go on until they end or the deadline.
        let stops = [false, false, true];
        let listening = Listening::start(&shared, |s| &s.front, bound, stops, serve, "tcp");
        Ok(TcpProxy { shared, listening })
    }

    /// Replaces its servers while it runs (a reload), without closing any connection: new
    /// clients are balanced over `servers`, connections on a server that went away go on
    /// until they close. A server whose name, address and TLS configuration stay keeps its
    /// counters and its health in [`backends`](Self::backends); new servers join up; every
    /// weight and `maxconn` is set as `servers` says.
    ///
    /// Fails, changing nothing, when `servers` is empty or names a server twice.
    pub fn update_servers(&self, servers: &[ServerSettings]) -> Result<(), ProxyError> {
        self.shared.front.update_servers(servers, false, |_| ())
    }

    /// Starts handing its clients over to another host (this host is about to give up the
    /// address it listens on): new clients are ignored, neither refused nor accepted (their
    /// SYNs go unanswered and they send them again a second later, to whichever host holds the
    /// address by then); the connections open run on until they end. A TCP client cannot be
    /// asked to close, so [`wait_idle`](Self::wait_idle) waits for them to do it.
    /// [`keep_connections`](Self::keep_connections) undoes it.
    pub fn close_connections(&self) {
        self.shared.front.ignore_new_clients(true);
    }

    /// Answers new clients again after [`close_connections`](Self::close_connections).
    pub fn keep_connections(&self) {
        self.shared.front.ignore_new_clients(false);
    }
}

/// One client connection, from accept to close.
async fn serve<A: Algorithm>(
    shared: Arc<Shared<A>>,
    client: TcpStream,
    peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::select! {
        () = shared.handle(client, peer) => {}
        // A closed channel (the proxy dropped) stops too.
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

impl<A: Algorithm> Shared<A> {
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
        let Some(acceptor) = &self.front.tls else {
            return self.forward(client, peer).await;
        };
        match tokio::time::timeout(self.timeouts.connect, acceptor.accept(client)).await {
            Ok(Ok(tls)) => self.forward(tls, peer).await,
            Ok(Err(e)) => {
                tracing::debug!(proxy = %self.front.name, %peer, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(proxy = %self.front.name, %peer, "TLS handshake timed out");
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
        let connected = match self.front.servers.reserve(&pick, None).await {
            Ok(slot) => {
                let mut attempts = self.front.servers.policy.retry.attempts();
                self.front
                    .servers
                    .connect(&pick, slot, &mut attempts, async |server| {
                        server.connect().await
                    })
                    .await
            }
            Err(refused) => Err(refused),
        };
        let (mut server, slot) = match connected {
            Ok(connected) => connected,
            Err(refused) => {
                self.front.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %self.front.name, %peer, reason = ?refused, "no server for client");
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
                self.front
                    .counters
                    .idle_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(proxy = %self.front.name, %peer, server = %counters.name, "idle timeout");
            }
            Ended::Failed(e) => {
                tracing::debug!(proxy = %self.front.name, %peer, server = %counters.name, error = %e, "connection failed");
            }
        }
    }
}
