//! [`TcpCheck`]: connect, optionally send bytes and expect a reply prefix (HAProxy's
//! `tcp-check send` / `tcp-check expect string`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use rustix::io::Errno;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Check, CheckError};

/// Healthy when a TCP connection to `addr` succeeds (and, if set, the reply to `send` starts
/// with `expect`).
///
/// Connections are made as HAProxy makes its check connections: delayed ACK, so that a
/// connect-only check is answered by the server's kernel and never reaches its application's
/// `accept` (no log line per check), and closed with a reset, so no `TIME_WAIT` socket is
/// left per check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a check does nothing until a Monitor runs it"]
pub struct TcpCheck {
    addr: SocketAddr,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
}

impl TcpCheck {
    /// A connect-only check.
    pub fn new(addr: SocketAddr) -> TcpCheck {
        TcpCheck {
            addr,
            send: None,
            expect: None,
        }
    }

    /// Sends `bytes` once connected.
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> TcpCheck {
        self.send = Some(bytes.into());
        self
    }

    /// Requires the reply to start with `prefix`.
    pub fn expect(mut self, prefix: impl Into<Vec<u8>>) -> TcpCheck {
        self.expect = Some(prefix.into());
        self
    }
}

#[async_trait]
impl Check for TcpCheck {
    async fn check(&self) -> Result<(), CheckError> {
        let addr = self.addr;
        let reply = |reason: String| CheckError::Reply { addr, reason };
        let connect_failed = |source| CheckError::Connect { addr, source };
        if self.send.is_none() && self.expect.is_none() {
            return probe(addr).await.map_err(connect_failed);
        }
        let mut stream = connect(addr).await.map_err(connect_failed)?;
        if let Some(bytes) = &self.send {
            stream
                .write_all(bytes)
                .await
                .map_err(|e| reply(format!("sending failed: {e}")))?;
        }
        if let Some(prefix) = &self.expect {
            let mut got = vec![0u8; prefix.len()];
            let mut filled = 0;
            while filled < got.len() {
                match stream.read(&mut got[filled..]).await {
                    Ok(0) => {
                        return Err(reply(format!(
                            "connection closed after {filled} of {} expected bytes",
                            prefix.len()
                        )));
                    }
                    Ok(n) => filled += n,
                    Err(e) => return Err(reply(format!("reading failed: {e}"))),
                }
            }
            if &got != prefix {
                return Err(reply(format!(
                    "expected reply starting {:?}, got {:?}",
                    String::from_utf8_lossy(prefix),
                    String::from_utf8_lossy(&got)
                )));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.addr)
    }
}

/// Connects the way HAProxy's checks do, to cost the server and the kernel as little as
/// possible at thousands of checks a second:
/// - quick ACKs off: the server's SYN-ACK proves it listens; our ACK of it is delayed (and
///   carries the first bytes, when there are some), so a connect-only check closes before the
///   server's kernel ever queues the connection for `accept`: the application never sees it;
/// - `SO_LINGER` 0: the close is a reset, so no `TIME_WAIT` socket is left per check.
///
/// Both options are optimisations: a kernel that refuses them still gets a correct check.
pub(crate) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    match start(addr)? {
        Started::Connected(socket) => TcpStream::from_std(socket.into()),
        Started::InProgress(socket) => finish(TcpStream::from_std(socket.into())?).await,
    }
}

/// [`connect`] for a connect-only check: when the handshake is over by the time the connect
/// call returns (loopback, a local network), the socket is never registered with the reactor.
async fn probe(addr: SocketAddr) -> io::Result<()> {
    match start(addr)? {
        Started::Connected(_) => Ok(()),
        Started::InProgress(socket) => finish(TcpStream::from_std(socket.into())?).await.map(drop),
    }
}

enum Started {
    Connected(Socket),
    InProgress(Socket),
}

fn start(addr: SocketAddr) -> io::Result<Started> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    let _ = socket.set_tcp_quickack(false);
    let _ = socket.set_linger(Some(Duration::ZERO));
    let target = addr.into();
    let is = |e: &io::Error, errno: Errno| Errno::from_io_error(e) == Some(errno);
    match socket.connect(&target) {
        Ok(()) => return Ok(Started::Connected(socket)),
        Err(e) if is(&e, Errno::INPROGRESS) => {}
        Err(e) => return Err(e),
    }
    // On loopback the handshake has usually completed inside that call: asking once more costs
    // one system call and saves two (registering and deregistering), as HAProxy does.
    match socket.connect(&target) {
        Ok(()) => Ok(Started::Connected(socket)),
        Err(e) if is(&e, Errno::ISCONN) => Ok(Started::Connected(socket)),
        Err(e) if is(&e, Errno::ALREADY) || is(&e, Errno::INPROGRESS) => {
            Ok(Started::InProgress(socket))
        }
        Err(e) => Err(e),
    }
}

/// Waits for a connection in progress to finish, as tokio's own `connect` does.
async fn finish(stream: TcpStream) -> io::Result<TcpStream> {
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    stream.peer_addr()?; // not connected after all: ENOTCONN
    Ok(stream)
}
