//! [`IcmpCheck`]: an ICMP echo ("ping") to an address, IPv4 or IPv6: keepalived users'
//! default-gateway check, which puts a router in FAULT while its gateway does not answer so
//! that a host cut off from the network does not stay Master (a split brain).

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rustix::io::Errno;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::{Check, CheckError};

/// Healthy when `addr` answers an ICMP echo request within the timeout.
///
/// Sends from a raw ICMP socket (root or CAP_NET_RAW), or else from an unprivileged ping
/// socket (Linux, when `net.ipv4.ping_group_range` includes the process's group). Each run
/// sends one request with a sequence number and a token of its own, and only the matching
/// reply from `addr` counts: other pings on the host (a raw socket sees them all) and late
/// replies to earlier runs are ignored.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use health_check::{IcmpCheck, Monitor, MonitorConfig};
///
/// # fn gateway() -> Result<(), Box<dyn std::error::Error>> {
/// // keepalived's gateway check: `ping -c 1 -W 1 10.0.0.1` every 2 s, down after 3 misses.
/// let check = IcmpCheck::new("10.0.0.1".parse()?).timeout(Duration::from_millis(800));
/// let monitor = Monitor::spawn(Arc::new(check), MonitorConfig::default().fall(3))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a check does nothing until a Monitor runs it"]
pub struct IcmpCheck {
    addr: IpAddr,
    timeout: Duration,
    /// This check's identifier (raw sockets; a ping socket's is its port) and sequence.
    id: u16,
    seq: AtomicU16,
}

impl IcmpCheck {
    /// How long a ping waits for its reply unless told otherwise (`ping -W 1`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Pings `addr`, waiting [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) for the reply.
    pub fn new(addr: IpAddr) -> IcmpCheck {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        // Distinct per check of this process, and unlikely to be another process's.
        let id = (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        IcmpCheck {
            addr,
            timeout: IcmpCheck::DEFAULT_TIMEOUT,
            id,
            seq: AtomicU16::new(0),
        }
    }

    /// How long a run waits for the reply (default [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT)); keep it under the
    /// monitor's timeout, which otherwise cuts the run short first.
    pub fn timeout(mut self, timeout: Duration) -> IcmpCheck {
        self.timeout = timeout;
        self
    }

    fn failed(&self, reason: impl Into<String>) -> CheckError {
        CheckError::Reply {
            addr: SocketAddr::new(self.addr, 0),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl Check for IcmpCheck {
    async fn check(&self) -> Result<(), CheckError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let ping = Ping::open(self.addr).map_err(|e| self.failed(open_error(&e)))?;
        let token = token(self.id, seq);
        let request = echo_request(self.addr.is_ipv6(), self.id, seq, &token);
        ping.send(&request)
            .await
            .map_err(|e| self.failed(format!("sending the echo request failed: {e}")))?;
        let wait = async {
            loop {
                match ping.recv().await {
                    Ok(msg) if ping.is_reply(&msg, self.id, seq, &token) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(self.failed(format!("receiving failed: {e}"))),
                }
            }
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .map_err(|_| CheckError::Timeout {
                after: self.timeout,
            })?
    }

    fn describe(&self) -> String {
        format!("icmp {}", self.addr)
    }
}

fn open_error(e: &io::Error) -> String {
    format!(
        "no ICMP socket: {e} (run as root or with CAP_NET_RAW, or allow the process's group \
         in net.ipv4.ping_group_range for a ping socket)"
    )
}

/// 16 bytes only this run sends.
fn token(id: u16, seq: u16) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut t = [0u8; 16];
    t[0..8].copy_from_slice(&nanos.to_be_bytes());
    t[8..10].copy_from_slice(&id.to_be_bytes());
    t[10..12].copy_from_slice(&seq.to_be_bytes());
    t[12..16].copy_from_slice(b"hchk");
    t
}

/// An ICMP echo request with identifier `id`, sequence number `seq` and `payload`: type 8
/// (ICMPv4, checksummed here) or 128 (ICMPv6: the kernel computes the checksum, which covers
/// a pseudo-header only it knows in full).
#[must_use]
pub fn echo_request(ipv6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![if ipv6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if !ipv6 {
        let sum = internet_checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

/// The Internet checksum (RFC 1071) of `bytes`; a message that carries its own checksum sums
/// to 0.
#[must_use]
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One run's socket.
struct Ping {
    socket: AsyncFd<Socket>,
    /// A raw socket (identifier ours, IPv4 header included on receive) or a ping socket
    /// (the kernel sets the identifier and hands back only this socket's replies).
    raw: bool,
    ipv6: bool,
}

impl Ping {
    fn open(addr: IpAddr) -> io::Result<Ping> {
        let (domain, protocol) = match addr {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let (socket, raw) = match Socket::new(domain, Type::RAW.nonblocking(), Some(protocol)) {
            Ok(s) => (s, true),
            Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::PERM | Errno::ACCESS)) => {
                let ping = Socket::new(domain, Type::DGRAM.nonblocking(), Some(protocol))
                    .map_err(|_| e)?;
                (ping, false)
            }
            Err(e) => return Err(e),
        };
        // Connected: the kernel hands this socket only what comes from `addr`.
        socket.connect(&SockAddr::from(SocketAddr::new(addr, 0)))?;
        Ok(Ping {
            socket: register(socket)?,
            raw,
            ipv6: addr.is_ipv6(),
        })
    }

    async fn send(&self, message: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.socket.writable().await?;
            match ready.try_io(|s| s.get_ref().send(message)) {
                Ok(r) => return r.map(drop),
                Err(_would_block) => continue,
            }
        }
    }

    /// The next ICMP message from the address (the IPv4 header taken off).
    async fn recv(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut ready = self.socket.readable().await?;
            let mut buf = [0u8; 2048];
            let Ok(got) = ready.try_io(|s| (&mut s.get_ref()).read(&mut buf)) else {
                continue;
            };
            let bytes = &buf[..got?];
            let message = if self.raw && !self.ipv6 {
                let header = usize::from(bytes.first().map_or(0, |b| b & 0x0f)) * 4;
                bytes.get(header..).unwrap_or_default()
            } else {
                bytes
            };
            return Ok(message.to_vec());
        }
    }

    /// Whether `msg` is the echo reply to request `seq` carrying `token`.
    fn is_reply(&self, msg: &[u8], id: u16, seq: u16, token: &[u8]) -> bool {
        let reply_type = if self.ipv6 { 129 } else { 0 };
        msg.len() >= 8 + token.len()
            && msg[0] == reply_type
            && (!self.raw || msg[4..6] == id.to_be_bytes())
            && msg[6..8] == seq.to_be_bytes()
            && &msg[8..8 + token.len()] == token
    }
}

/// Hands the socket to tokio's reactor.
#[allow(unsafe_code)]
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the `AsyncFd` takes ownership of `socket`, whose descriptor is open and owned by
    // it alone; `Socket::as_raw_fd` always returns that same descriptor, and nothing closes or
    // replaces it until the `AsyncFd` (and the socket with it) is dropped.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE) }
        .map_err(|e| e.into_parts().1)
}
