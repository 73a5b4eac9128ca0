//! The listen socket: `SO_REUSEADDR` and `IP_FREEBIND`, so a proxy can listen on a VIP before
//! VRRP brings it to this host (and restart without waiting for `TIME_WAIT`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::settings::ConnectionLimit;

/// Binds and listens on `addr` with `backlog` (must run inside a tokio runtime).
pub(crate) fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    match addr {
        SocketAddr::V4(_) => socket.set_freebind_v4(true)?,
        SocketAddr::V6(_) => socket.set_freebind_v6(true)?,
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// A client taken from the listen socket, with the slots it holds while it is served.
pub(crate) struct Admitted {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Its slot in the proxy's own `maxconn`.
    pub(crate) permit: OwnedSemaphorePermit,
    /// Its slot in the limit shared with other proxies, if any.
    pub(crate) shared: Option<OwnedSemaphorePermit>,
}

/// Takes a slot in the proxy's `maxconn` (`connections`) and in the shared `limit`, then
/// accepts: at either limit it stops accepting and further clients wait in the kernel's
/// backlog. `None` when a limit was closed (the proxy stops).
pub(crate) async fn admit(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
    limit: Option<&ConnectionLimit>,
    proxy: &str,
) -> Option<Admitted> {
    let permit = connections.clone().acquire_owned().await.ok()?;
    let shared = match limit {
        Some(limit) => Some(limit.acquire().await?),
        None => None,
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                return Some(Admitted {
                    stream,
                    peer,
                    permit,
                    shared,
                });
            }
            Err(e) => {
                // Out of descriptors or a client gone before accept: back off a little
                // rather than spin.
                tracing::warn!(proxy = %proxy, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
