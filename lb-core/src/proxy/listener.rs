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

/// The classic BPF program that drops pure SYNs (flags SYN without ACK) and passes every other
/// segment. A TCP socket's filter sees the segment from its TCP header on (offset 13 is the
/// flags byte), for IPv4 and IPv6 alike.
const DROP_SYNS: [socket2::SockFilter; 5] = [
    // A = the flags byte
    socket2::SockFilter::new(0x30, 0, 0, 13), // BPF_LD | BPF_B | BPF_ABS
    socket2::SockFilter::new(0x54, 0, 0, 0x12), // BPF_ALU | BPF_AND | BPF_K: SYN | ACK
    socket2::SockFilter::new(0x15, 0, 1, 0x02), // BPF_JMP | BPF_JEQ | BPF_K: SYN alone?
    socket2::SockFilter::new(0x06, 0, 0, 0),  // BPF_RET | BPF_K: drop
    socket2::SockFilter::new(0x06, 0, 0, u32::MAX), // BPF_RET | BPF_K: keep all of it
];

/// Makes the listen socket ignore new clients (`on`): their SYNs are dropped unanswered, so
/// they send them again a second later (Linux's and most stacks' initial retransmission
/// timeout), neither refused nor accepted; connections already set up, and those waiting in the
/// accept queue, are not affected. Off: SYNs are answered again.
pub(crate) fn ignore_syns(gate: socket2::SockRef<'_>, on: bool) -> io::Result<()> {
    if on {
        gate.attach_filter(&DROP_SYNS)
    } else {
        match gate.detach_filter() {
            // ENOENT: none was attached.
            Err(e) if e.raw_os_error() != Some(2) => Err(e),
            _ => Ok(()),
        }
    }
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
