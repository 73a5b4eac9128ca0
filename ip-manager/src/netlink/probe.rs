//! [`OwnerProbe`]: asks the segment who else holds an address — an ARP probe (IPv4) or a
//! neighbour solicitation (IPv6) for it, from the host that holds it — and collects the
//! answers. Another host answering for the virtual address of a Master is a split brain that
//! VRRP itself cannot see when its adverts are blocked both ways.
//!
//! The host that sends the probe never answers it itself (the frame leaves through a packet
//! socket, and the solicitation's multicast loop is off), so any answer is another host's. The
//! questions are the quiet forms:
//! - IPv4: an ARP request with sender address 0.0.0.0 (RFC 5227's probe); the holder answers
//!   with a unicast reply to this host's MAC (Linux's duplicate address detection answer), and
//!   nobody's ARP cache learns anything from it;
//! - IPv6: a neighbour solicitation from this host's link-local address to the address's
//!   solicited-node group; the holder answers with a solicited advertisement to this host
//!   only (not the all-nodes NA a duplicate address detection probe would draw, which would
//!   move the neighbours' entries to the other host).
//!
//! With a virtual MAC both holders answer with the same MAC: the answer still proves a second
//! holder (this host does not answer itself), and its MAC is then the virtual router's.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::NetlinkManager;
use super::sockaddr::link_layer;
use crate::Error;

const ETH_P_ARP: u16 = 0x0806;

/// Another host answered for `address` from `mac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerAnswer {
    /// The address asked about.
    pub address: IpAddr,
    /// The MAC the answer gave (for IPv6, its target link-layer address option: all zeros if
    /// the answer had none).
    pub mac: [u8; 6],
}

/// Probes the segment of one interface for other holders of addresses. Needs CAP_NET_RAW.
///
/// ```no_run
/// use std::time::Duration;
/// use ip_manager::{NetlinkManager, OwnerProbe};
///
/// # async fn probe() -> Result<(), ip_manager::Error> {
/// let netlink = NetlinkManager::new()?;
/// let vip = "10.99.0.200".parse().expect("an address");
/// let probe = OwnerProbe::new(&netlink, "eth0", &[vip]).await?;
/// for answer in probe.probe(&[vip], Duration::from_millis(200)).await? {
///     eprintln!("{} is also held by {:02x?}", answer.address, answer.mac);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OwnerProbe {
    interface: String,
    mac: [u8; 6],
    /// A packet socket for ARP on the interface (IPv4 addresses).
    arp: Option<AsyncFd<Socket>>,
    /// A raw ICMPv6 socket bound to the interface's link-local address (IPv6 addresses).
    ndp: Option<AsyncFd<Socket>>,
    ifindex: u32,
}

impl OwnerProbe {
    /// A probe on `interface` for `addresses` (it opens what their families need: a packet
    /// socket for IPv4, a raw ICMPv6 socket bound to the interface's link-local address for
    /// IPv6).
    pub async fn new(
        netlink: &NetlinkManager,
        interface: &str,
        addresses: &[IpAddr],
    ) -> Result<OwnerProbe, Error> {
        let ifindex = netlink.interface_index(interface).await?;
        let mac = netlink.interface_mac(interface).await?;
        let arp = if addresses.iter().any(IpAddr::is_ipv4) {
            let s = Socket::new(
                Domain::PACKET,
                Type::RAW.nonblocking(),
                Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
            )
            .and_then(|s| s.bind(&link_layer(ifindex, ETH_P_ARP)).map(|()| s))
            .and_then(register)
            .map_err(|e| {
                Error::raw_socket(format!("opening an ARP probe socket on {interface}"), e)
            })?;
            Some(s)
        } else {
            None
        };
        let ndp = if addresses.iter().any(IpAddr::is_ipv6) {
            let link_local = netlink.link_local_ipv6(interface).await?;
            let s = ndp_socket(link_local, ifindex)
                .and_then(register)
                .map_err(|e| {
                    Error::raw_socket(
                        format!("opening a neighbour solicitation socket on {interface}"),
                        e,
                    )
                })?;
            Some(s)
        } else {
            None
        };
        Ok(OwnerProbe {
            interface: interface.to_owned(),
            mac,
            arp,
            ndp,
            ifindex,
        })
    }

    /// The interface it probes on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's MAC: the one this host's questions carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Asks once for each of `addresses`, then collects the answers that arrive within
    /// `wait`: each other holder once per address. Answers to earlier questions that arrive
    /// now count too (they are as recent as the wait).
    pub async fn probe(
        &self,
        addresses: &[IpAddr],
        wait: Duration,
    ) -> Result<Vec<OwnerAnswer>, Error> {
        self.ask(addresses)?;
        let mut answers = Vec::new();
        let _ = tokio::time::timeout(wait, async {
            loop {
                let a = self.answer().await;
                if addresses.contains(&a.address) {
                    answers.push(a);
                }
            }
        })
        .await;
        answers.sort();
        answers.dedup();
        Ok(answers)
    }

    /// Sends one question for each of `addresses` (the answers come from
    /// [`answer`](Self::answer)).
    pub fn ask(&self, addresses: &[IpAddr]) -> Result<(), Error> {
        for address in addresses {
            let sent = match (address, &self.arp, &self.ndp) {
                (IpAddr::V4(ip), Some(arp), _) => arp.get_ref().send(&arp_probe(self.mac, *ip)),
                (IpAddr::V6(ip), _, Some(ndp)) => {
                    let group = solicited_node(*ip);
                    let to = SockAddr::from(SocketAddrV6::new(group, 0, 0, self.ifindex));
                    ndp.get_ref()
                        .send_to(&neighbour_solicitation(self.mac, *ip), &to)
                }
                _ => continue,
            };
            sent.map_err(|e| {
                Error::raw_socket(
                    format!(
                        "probing for other holders of {address} on {}",
                        self.interface
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// The next answer of another holder, to a question of this probe (of any address it
    /// asked about); pending until one comes. Cancel-safe.
    pub async fn answer(&self) -> OwnerAnswer {
        let (mut arp_buf, mut ndp_buf) = ([0u8; 1500], [0u8; 1500]);
        loop {
            let got = tokio::select! {
                Some(r) = next(self.arp.as_ref(), &mut arp_buf) => r.ok().and_then(|n| {
                    arp_answer(&arp_buf[..n], self.mac)
                }),
                Some(r) = next(self.ndp.as_ref(), &mut ndp_buf) => r.ok().and_then(|n| {
                    na_answer(&ndp_buf[..n], self.mac)
                }),
                else => std::future::pending().await,
            };
            if let Some(a) = got {
                return a;
            }
        }
    }
}

/// The next datagram of `socket`, `None` without one (that `select!` branch is then off).
async fn next(socket: Option<&AsyncFd<Socket>>, buf: &mut [u8]) -> Option<io::Result<usize>> {
    let socket = socket?;
    loop {
        let mut ready = match socket.readable().await {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        if let Ok(r) = ready.try_io(|s| (&mut s.get_ref()).read(buf)) {
            return Some(r);
        }
    }
}

fn ndp_socket(link_local: Ipv6Addr, ifindex: u32) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW.nonblocking(),
        Some(Protocol::ICMPV6),
    )?;
    s.bind(&SockAddr::from(SocketAddrV6::new(
        link_local, 0, 0, ifindex,
    )))?;
    s.set_multicast_if_v6(ifindex)?;
    // RFC 4861 §7.1.1: a neighbour discovery message arrives with hop limit 255 or is dropped.
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    // This host holds the address too: its own kernel must not see (and answer) the question.
    s.set_multicast_loop_v6(false)?;
    Ok(s)
}

/// Hands the socket to tokio's reactor.
#[allow(unsafe_code)]
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the `AsyncFd` takes ownership of `socket`, whose descriptor is open and owned by
    // it alone; `Socket::as_raw_fd` always returns that same descriptor, and nothing closes or
    // replaces it until the `AsyncFd` (and the socket with it) is dropped.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// RFC 5227's ARP probe for `ip` from `mac`: a broadcast request with sender address 0.0.0.0
/// and target MAC zero.
pub(crate) fn arp_probe(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 1]);
    f[22..28].copy_from_slice(&mac);
    // Sender address 0.0.0.0 (28..32) and target MAC (32..38) stay zero.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// The answer to our [`arp_probe`] in an ARP frame: a reply to our MAC, for sender address
/// 0.0.0.0, from the holder of its sender address. Our own frames (requests; reply-form
/// gratuitous ARPs, whose target is the address itself) never match.
fn arp_answer(frame: &[u8], ours: [u8; 6]) -> Option<OwnerAnswer> {
    if frame.len() < 42
        || frame[12..14] != ETH_P_ARP.to_be_bytes()
        || frame[14..22] != [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 2]
        || frame[32..38] != ours
        || frame[38..42] != [0, 0, 0, 0]
    {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[22..28]);
    let address = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
    Some(OwnerAnswer {
        address: IpAddr::V4(address),
        mac,
    })
}

/// The solicited-node multicast group of `ip` (RFC 4291 §2.7.1).
fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A neighbour solicitation for `ip` with our link-layer address (ICMPv6 message; the kernel
/// fills in the checksum).
pub(crate) fn neighbour_solicitation(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = 135;
    m[8..24].copy_from_slice(&ip.octets());
    m[24] = 1; // source link-layer address
    m[25] = 1; // 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// The answer to our solicitation in an ICMPv6 message: a solicited neighbour advertisement,
/// with its target and the MAC of its target link-layer address option. Our own unsolicited
/// announcements (Solicited flag clear) never match; neither does an answer giving our MAC.
fn na_answer(msg: &[u8], ours: [u8; 6]) -> Option<OwnerAnswer> {
    const SOLICITED: u8 = 0x40;
    if msg.len() < 24 || msg[0] != 136 || msg[4] & SOLICITED == 0 {
        return None;
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&msg[8..24]);
    let mut mac = [0u8; 6];
    let mut options = &msg[24..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            break;
        }
        if options[0] == 2 {
            mac.copy_from_slice(&options[2..8]);
        }
        options = &options[len..];
    }
    if mac == ours {
        return None;
    }
    Some(OwnerAnswer {
        address: IpAddr::V6(Ipv6Addr::from(target)),
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x96, 0xcf, 0x75, 0xbb, 0x41, 0xbc];
    const THEIRS: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];

    #[test]
    fn the_arp_probe_has_sender_address_zero_rfc5227_2_1_1() {
        let f = arp_probe(MAC, Ipv4Addr::new(10, 99, 0, 200));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(f[21], 1, "a request");
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..38], &[0; 10], "sender 0.0.0.0, target MAC zero");
        assert_eq!(&f[38..42], &[10, 99, 0, 200]);
    }

    #[test]
    fn only_a_reply_to_our_probe_is_an_answer() {
        let vip = Ipv4Addr::new(10, 99, 0, 200);
        // As Linux answers it: sender = the holder at the address, target = us at 0.0.0.0.
        let mut reply = [0u8; 42];
        reply[0..6].copy_from_slice(&MAC);
        reply[6..12].copy_from_slice(&THEIRS);
        reply[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        reply[22..28].copy_from_slice(&THEIRS);
        reply[28..32].copy_from_slice(&vip.octets());
        reply[32..38].copy_from_slice(&MAC);
        assert_eq!(
            arp_answer(&reply, MAC),
            Some(OwnerAnswer {
                address: IpAddr::V4(vip),
                mac: THEIRS
            })
        );
        // Our own probe, and our reply-form gratuitous ARP, are not.
        assert_eq!(arp_answer(&arp_probe(MAC, vip), MAC), None);
        assert_eq!(
            arp_answer(&crate::gratuitous_arp(MAC, vip, true), MAC),
            None
        );
        // Nor a reply to someone else's probe.
        assert_eq!(arp_answer(&reply, THEIRS), None);
    }

    #[test]
    fn the_solicitation_goes_to_the_solicited_node_group_with_our_mac() {
        let ip: Ipv6Addr = "fd99::12:3456".parse().unwrap();
        assert_eq!(
            solicited_node(ip),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
        let ns = neighbour_solicitation(MAC, ip);
        assert_eq!((ns[0], ns[24], ns[25]), (135, 1, 1));
        assert_eq!(&ns[8..24], &ip.octets());
        assert_eq!(&ns[26..32], &MAC);
    }

    #[test]
    fn only_a_solicited_advertisement_from_another_mac_is_an_answer() {
        let ip: Ipv6Addr = "fd99::200".parse().unwrap();
        let mut na = crate::unsolicited_na(THEIRS, ip);
        assert_eq!(na_answer(&na, MAC), None, "unsolicited: an announcement");
        na[4] |= 0x40;
        assert_eq!(
            na_answer(&na, MAC),
            Some(OwnerAnswer {
                address: IpAddr::V6(ip),
                mac: THEIRS
            })
        );
        assert_eq!(na_answer(&na, THEIRS), None, "our own");
    }
}
