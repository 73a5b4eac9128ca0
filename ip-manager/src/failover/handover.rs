//! A drained preemption between two hosts: "finish your connections, then resign".
//!
//! VRRP preemption cuts the old Master off: a higher-priority Backup takes the address at
//! once, and every TCP connection the old Master was serving breaks (its clients' next
//! packets reach a host that has no socket for them). VRRP has no message to say "I am about
//! to preempt you", so this module carries one over TCP, beside VRRP:
//!
//! 1. The preempting Backup runs with a [`preempt_delay`](vrrp_core::Config::preempt_delay)
//!    long enough to drain (a few seconds). When it would preempt, its router says so
//!    ([`Event::PreemptPending`](vrrp_core::Event::PreemptPending), with the Master's address),
//!    and its owner calls [`ask_to_resign`] at that address.
//! 2. The Master's owner, listening with [`HandoverListener`], gets a [`ResignRequest`]; if the
//!    instance is Master and the asker outranks it, it [`accept`](ResignRequest::accept)s,
//!    finishes its connections (`Connection: close`, idle keep-alives closed, in-flight
//!    requests answered) and then [`resign`](vrrp_core::Router::resign)s: priority 0 goes out
//!    and the Backup takes over after Skew_Time.
//! 3. If the Master does not answer (not running this protocol, unreachable, refusing), the
//!    Backup preempts when its delay is over, as plain VRRP would.
//!
//! The wire format is one line each way, so that it can be tried with `nc`:
//! `VRRP-RESIGN/1 vrid=51 family=ipv4 priority=150` and `ACCEPTED` or `REFUSED <why>`.
//!
//! Who may ask: by default any host that can reach the port, which gives no more power than
//! VRRP itself already gives anyone on the segment (a forged priority-0 advert moves the
//! address too, and without the drain); [`HandoverListener::peers`] restricts it to a list.
//!
//! ```no_run
//! use std::time::Duration;
//! use ip_manager::failover::handover::{self, Answer, HandoverListener};
//! use vrrp_core::packet::{AddressFamily, Priority, Vrid};
//!
//! # async fn demo(vrid: Vrid) -> Result<(), Box<dyn std::error::Error>> {
//! // The Master's side: answer requests, drain, resign.
//! let mut listener = HandoverListener::bind("0.0.0.0:7107".parse()?).await?;
//! let request = listener.next().await?;
//! request.accept().await?;
//! // ... finish the connections, then `failover.resign().await` ...
//!
//! // The preempting Backup's side, on `PreemptPending { master, .. }`:
//! let master = "10.0.0.1:7107".parse()?;
//! let answer = handover::ask_to_resign(
//!     master,
//!     vrid,
//!     AddressFamily::Ipv4,
//!     Priority::new(150),
//!     Duration::from_secs(1),
//! )
//! .await?;
//! assert!(matches!(answer, Answer::Accepted | Answer::Refused(_)));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use vrrp_core::packet::{AddressFamily, Priority, Vrid};

/// The port the example daemons use when none is configured.
pub const DEFAULT_PORT: u16 = 7107;

/// How long a connection may take to send its request or its answer.
const LINE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest line read; anything longer is malformed.
const MAX_LINE: u64 = 256;

const MAGIC: &str = "VRRP-RESIGN/1";

/// What went wrong on either side.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandoverError {
    /// Connecting, reading or writing failed.
    #[error("handover connection to or from {peer}: {source}")]
    Io {
        /// The other side.
        peer: String,
        /// The failure.
        source: io::Error,
    },
    /// Nothing (or not a whole line) came within the time allowed.
    #[error("{peer} sent no complete line within {within:?}")]
    Timeout {
        /// The other side.
        peer: String,
        /// The time allowed.
        within: Duration,
    },
    /// The line is not this protocol's.
    #[error(
        "{peer} sent {line:?}, not `{MAGIC} vrid=N family=ipv4|ipv6 priority=N` / `ACCEPTED` / `REFUSED why`"
    )]
    Malformed {
        /// The other side.
        peer: String,
        /// What came (cut to 256 bytes).
        line: String,
    },
    /// A request from a host that [`HandoverListener::peers`] does not list (it was refused).
    #[error("a resign request from {from}, which is not a configured peer: refused")]
    NotAPeer {
        /// The sender.
        from: IpAddr,
    },
}

/// The Master's answer to [`ask_to_resign`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// It will finish its connections and resign.
    Accepted,
    /// It will not (not Master, outranks the asker, ...): the reason it gave.
    Refused(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Accepted => f.write_str("accepted"),
            Answer::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// Asks the Master at `master` (its address and handover port; an IPv6 link-local address
/// needs its scope id) to drain and resign virtual router `vrid` of `family` for a router of
/// `priority`; `within` bounds the whole exchange.
pub async fn ask_to_resign(
    master: SocketAddr,
    vrid: Vrid,
    family: AddressFamily,
    priority: Priority,
    within: Duration,
) -> Result<Answer, HandoverError> {
    let peer = master.to_string();
    let exchange = async {
        let mut stream = TcpStream::connect(master).await?;
        let request = format!(
            "{MAGIC} vrid={} family={} priority={}\n",
            vrid.get(),
            family_word(family),
            priority.get()
        );
        stream.write_all(request.as_bytes()).await?;
        read_line(&mut stream).await
    };
    let line = match tokio::time::timeout(within, exchange).await {
        Err(_) => return Err(HandoverError::Timeout { peer, within }),
        Ok(Err(source)) => return Err(HandoverError::Io { peer, source }),
        Ok(Ok(line)) => line,
    };
    if line == "ACCEPTED" {
        Ok(Answer::Accepted)
    } else if let Some(why) = line.strip_prefix("REFUSED") {
        Ok(Answer::Refused(why.trim().to_owned()))
    } else {
        Err(HandoverError::Malformed { peer, line })
    }
}

/// Where to ask the Master heard at `master` on `interface`: `master` and `port`, with the
/// interface's index as the scope of an IPv6 link-local address (a VRRPv3 IPv6 advert's
/// source).
pub async fn master_address(
    master: IpAddr,
    port: u16,
    interface: &str,
) -> Result<SocketAddr, crate::Error> {
    Ok(match master {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            let index = crate::NetlinkManager::new()?
                .interface_index(interface)
                .await?;
            SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, index))
        }
        other => SocketAddr::new(other, port),
    })
}

/// Listens for [`ResignRequest`]s (the Master's side). One request is read at a time, each
/// within 2 s.
#[derive(Debug)]
#[must_use = "a listener does nothing until `next` is called"]
pub struct HandoverListener {
    listener: TcpListener,
    peers: Option<Vec<IpAddr>>,
}

impl HandoverListener {
    /// Listens on `addr` (e.g. `0.0.0.0:7107`, or `[::]:7107` for both families).
    pub async fn bind(addr: SocketAddr) -> io::Result<HandoverListener> {
        Ok(HandoverListener {
            listener: TcpListener::bind(addr).await?,
            peers: None,
        })
    }

    /// Accepts requests only from these addresses (the others are answered `REFUSED` and
    /// reported as [`HandoverError::NotAPeer`]).
    pub fn peers(mut self, peers: Vec<IpAddr>) -> HandoverListener {
        self.peers = Some(peers);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next request. An error is about one connection only (a stranger, a malformed or
    /// slow request): log it and call `next` again.
    pub async fn next(&mut self) -> Result<ResignRequest, HandoverError> {
        let (mut stream, from) =
            self.listener
                .accept()
                .await
                .map_err(|source| HandoverError::Io {
                    peer: "the listener".to_owned(),
                    source,
                })?;
        let peer = from.to_string();
        let from = from.ip().to_canonical();
        if let Some(peers) = &self.peers
            && !peers.contains(&from)
        {
            let _ = answer(&mut stream, "REFUSED not a configured peer").await;
            return Err(HandoverError::NotAPeer { from });
        }
        let line = match tokio::time::timeout(LINE_TIMEOUT, read_line(&mut stream)).await {
            Err(_) => {
                return Err(HandoverError::Timeout {
                    peer,
                    within: LINE_TIMEOUT,
                });
            }
            Ok(Err(source)) => return Err(HandoverError::Io { peer, source }),
            Ok(Ok(line)) => line,
        };
        match parse_request(&line) {
            Some((vrid, family, priority)) => Ok(ResignRequest {
                vrid,
                family,
                priority,
                from,
                stream,
            }),
            None => {
                let _ = answer(&mut stream, "REFUSED malformed request").await;
                Err(HandoverError::Malformed { peer, line })
            }
        }
    }
}

/// A preempting router asks this host to drain and resign one of its virtual routers.
/// Answer it with [`accept`](Self::accept) or [`refuse`](Self::refuse); dropped unanswered,
/// the asker sees the connection close and waits out its `preempt_delay`.
#[derive(Debug)]
#[must_use = "answer the request with `accept` or `refuse`"]
pub struct ResignRequest {
    vrid: Vrid,
    family: AddressFamily,
    priority: Priority,
    from: IpAddr,
    stream: TcpStream,
}

impl ResignRequest {
    /// The virtual router asked for.
    pub fn vrid(&self) -> Vrid {
        self.vrid
    }

    /// Its address family.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// The asker's priority (what it says: check that it outranks this router's).
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The asker's address.
    pub fn from(&self) -> IpAddr {
        self.from
    }

    /// Tells the asker this host will drain and resign.
    pub async fn accept(mut self) -> Result<(), HandoverError> {
        let peer = self.from.to_string();
        answer(&mut self.stream, "ACCEPTED")
            .await
            .map_err(|source| HandoverError::Io { peer, source })
    }

    /// Tells the asker no, and why (one line).
    pub async fn refuse(mut self, why: &str) -> Result<(), HandoverError> {
        let peer = self.from.to_string();
        let why = why.replace(['\r', '\n'], " ");
        answer(&mut self.stream, &format!("REFUSED {why}"))
            .await
            .map_err(|source| HandoverError::Io { peer, source })
    }
}

fn family_word(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Ipv4 => "ipv4",
        AddressFamily::Ipv6 => "ipv6",
    }
}

/// `VRRP-RESIGN/1 vrid=51 family=ipv4 priority=150`, fields in any order.
fn parse_request(line: &str) -> Option<(Vrid, AddressFamily, Priority)> {
    let mut words = line.split_ascii_whitespace();
    if words.next()? != MAGIC {
        return None;
    }
    let (mut vrid, mut family, mut priority) = (None, None, None);
    for word in words {
        match word.split_once('=')? {
            ("vrid", v) => vrid = Vrid::new(v.parse().ok()?),
            ("family", "ipv4") => family = Some(AddressFamily::Ipv4),
            ("family", "ipv6") => family = Some(AddressFamily::Ipv6),
            ("priority", p) => priority = Some(Priority::new(p.parse().ok()?)),
            _ => return None,
        }
    }
    Some((vrid?, family?, priority?))
}

/// One line, without its end, at most [`MAX_LINE`] bytes.
async fn read_line(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(MAX_LINE));
    reader.read_line(&mut line).await?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn answer(stream: &mut TcpStream, line: &str) -> io::Result<()> {
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_parses_in_any_order_and_nothing_else_does() {
        let v = Vrid::new(51).expect("non-zero");
        assert_eq!(
            parse_request("VRRP-RESIGN/1 priority=150 family=ipv6 vrid=51"),
            Some((v, AddressFamily::Ipv6, Priority::new(150)))
        );
        for bad in [
            "",
            "VRRP-RESIGN/2 vrid=51 family=ipv4 priority=150",
            "VRRP-RESIGN/1 vrid=0 family=ipv4 priority=150",
            "VRRP-RESIGN/1 vrid=51 family=ipx priority=150",
            "VRRP-RESIGN/1 vrid=51 family=ipv4",
            "VRRP-RESIGN/1 vrid=51 family=ipv4 priority=300",
            "VRRP-RESIGN/1 vrid=51 family=ipv4 priority=150 extra=1",
        ] {
            assert_eq!(parse_request(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_request_is_carried_and_answered_both_ways() {
        let mut listener = HandoverListener::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        let vrid = Vrid::new(51).expect("non-zero");
        for accept in [true, false] {
            let ask = tokio::spawn(ask_to_resign(
                at,
                vrid,
                AddressFamily::Ipv4,
                Priority::new(150),
                Duration::from_secs(5),
            ));
            let request = listener.next().await.expect("a request");
            assert_eq!(
                (request.vrid(), request.family(), request.priority()),
                (vrid, AddressFamily::Ipv4, Priority::new(150))
            );
            assert_eq!(request.from(), IpAddr::from([127, 0, 0, 1]));
            if accept {
                request.accept().await.expect("answered");
            } else {
                request
                    .refuse("not master\nreally")
                    .await
                    .expect("answered");
            }
            let answer = ask.await.expect("task").expect("an answer");
            let expected = if accept {
                Answer::Accepted
            } else {
                Answer::Refused("not master really".into())
            };
            assert_eq!(answer, expected);
        }
    }

    #[tokio::test]
    async fn strangers_and_garbage_are_refused_without_stopping_the_listener() {
        let mut listener = HandoverListener::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind")
            .peers(vec![IpAddr::from([127, 0, 0, 2])]);
        let at = listener.local_addr().expect("addr");
        let vrid = Vrid::new(7).expect("non-zero");
        let ask = tokio::spawn(ask_to_resign(
            at,
            vrid,
            AddressFamily::Ipv4,
            Priority::new(200),
            Duration::from_secs(5),
        ));
        assert!(matches!(
            listener.next().await,
            Err(HandoverError::NotAPeer { .. })
        ));
        assert!(matches!(
            ask.await.expect("task"),
            Ok(Answer::Refused(why)) if why.contains("peer")
        ));

        let mut listener = HandoverListener::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        let garbage = tokio::spawn(async move {
            let mut s = TcpStream::connect(at).await.expect("connect");
            s.write_all(&[b'x'; 1000]).await.expect("write");
            read_line(&mut s).await
        });
        assert!(matches!(
            listener.next().await,
            Err(HandoverError::Malformed { line, .. }) if line.len() <= MAX_LINE as usize
        ));
        assert_eq!(
            garbage.await.expect("task").expect("answer"),
            "REFUSED malformed request"
        );
        // An answer that is not the protocol's is an error for the asker.
        let fake = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake_at = fake.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = fake.accept().await.expect("accept");
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let asked = ask_to_resign(
            fake_at,
            vrid,
            AddressFamily::Ipv4,
            Priority::new(200),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(asked, Err(HandoverError::Malformed { .. })),
            "{asked:?}"
        );
    }
}
