//! [`Announcer`]: gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) after a
//! takeover, so switches and hosts move their entries to the new Master at once.
//!
//! The frames are keepalived's, byte for byte (checked against `shared/vectors/`): an ARP
//! request with sender = target = the VIP and a broadcast target MAC; an NA from the VIP to
//! ff02::1 with the Override flag and the target link-layer address option.
//!
//! No single failure silences the sequence. A link that went down leaves a pending
//! `ENETDOWN` on the `AF_PACKET` socket bound to it, which the next send returns (and so
//! clears) even though the link is up again by then: every frame whose send fails is sent
//! once more at once, a frame that fails twice is counted and the rest of the burst and the
//! repeat still go out, and [`Announcer::stats`] keeps the tally for status pages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::NetlinkManager;
use super::sockaddr::link_layer;
use crate::{Error, Vip};

const ETH_P_ARP: u16 = 0x0806;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// How many announcements, and when. The defaults are keepalived's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Frames per address per burst: keepalived's `vrrp_garp_master_repeat`, default 5.
    pub repeat: u32,
    /// Gap between the frames of a burst: keepalived's `vrrp_garp_interval`, default 0.
    pub interval: Duration,
    /// When to send the second burst: keepalived's `vrrp_garp_master_delay`, default 5 s;
    /// `None` sends one burst only.
    pub refresh_delay: Option<Duration>,
    /// Also send each ARP in the reply form (opcode 2), which some switches learn from.
    pub arp_reply: bool,
}

impl Default for AnnounceConfig {
    fn default() -> AnnounceConfig {
        AnnounceConfig {
            repeat: 5,
            interval: Duration::ZERO,
            refresh_delay: Some(Duration::from_secs(5)),
            arp_reply: false,
        }
    }
}

/// What an [`Announcer`] has sent since it was made: for status pages and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnounceStats {
    /// Frames handed to the kernel.
    pub frames_sent: u64,
    /// Frames that failed twice in a row, and were given up (the sequence went on).
    pub frames_failed: u64,
    /// Frames whose first send failed and the second went out: typically the error a link
    /// going down left on the socket, returned by the first send after the link came back.
    pub frames_retried: u64,
    /// The last failure (of a frame given up or retried), as the operator should read it.
    pub last_error: Option<String>,
}

/// Sends the announcements for the addresses of one interface.
///
/// ```no_run
/// use ip_manager::{AnnounceConfig, Announcer, IpManager, NetlinkManager, Vip};
///
/// # async fn takeover() -> Result<(), ip_manager::Error> {
/// let ips = NetlinkManager::new()?;
/// let announcer = Announcer::new(&ips, "eth0", AnnounceConfig::default()).await?;
/// let vip = Vip::parse("10.99.0.200/24", "eth0")?;
/// ips.add(&vip).await?;
/// announcer.announce_once(&vip).await?; // 5 gratuitous ARPs now: the critical path
/// // keepalived's second burst 5 s later belongs in a task the demotion can cancel:
/// // tokio::spawn(async move { announcer.announce(&vip).await });
/// assert_eq!(announcer.stats().frames_failed, 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Announcer {
    interface: String,
    ifindex: u32,
    mac: [u8; 6],
    config: AnnounceConfig,
    arp: Socket,
    stats: Mutex<AnnounceStats>,
}

/// The frames of one call: how many were tried, and the last that failed.
#[derive(Default)]
struct Tally {
    attempted: usize,
    sent: usize,
    last_error: Option<Error>,
}

impl Tally {
    fn into_result(self, vip: &Vip) -> Result<usize, Error> {
        match self.last_error {
            None => Ok(self.sent),
            Some(last) => Err(Error::Announce {
                vip: vip.to_string(),
                failed: self.attempted - self.sent,
                attempted: self.attempted,
                last: Box::new(last),
            }),
        }
    }
}

impl Announcer {
    /// An announcer for `interface`, whose index and MAC it reads through `netlink`. Opens an
    /// `AF_PACKET` socket, which needs CAP_NET_RAW.
    pub async fn new(
        netlink: &NetlinkManager,
        interface: &str,
        config: AnnounceConfig,
    ) -> Result<Announcer, Error> {
        let ifindex = netlink.interface_index(interface).await?;
        let mac = netlink.interface_mac(interface).await?;
        let arp = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
        )
        .map_err(|e| Error::raw_socket("opening an AF_PACKET socket for gratuitous ARP", e))?;
        arp.bind(&link_layer(ifindex, ETH_P_ARP))
            .map_err(|e| Error::raw_socket(format!("binding the ARP socket to {interface}"), e))?;
        Ok(Announcer {
            interface: interface.to_owned(),
            ifindex,
            mac,
            config,
            arp,
            stats: Mutex::new(AnnounceStats::default()),
        })
    }

    /// The frames sent, retried and given up so far.
    pub fn stats(&self) -> AnnounceStats {
        self.lock_stats().clone()
    }

    fn lock_stats(&self) -> MutexGuard<'_, AnnounceStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The interface's MAC address, the one the announcements carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface it announces on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// One burst saying that `vip` is at `mac`, another host's: a Master handing the address
    /// over to a peer that announces nothing itself (see `failover::VipApplier::hand_off`).
    /// IPv4: gratuitous ARPs naming `mac`. IPv6: unsolicited NAs (Override) whose target
    /// link-layer address is `mac`, from this host's link-local address (the VIP is gone by
    /// then; RFC 4861 §4.4 asks only for an address of the sending interface). Either way
    /// the Ethernet source is this interface's own MAC, so that no switch learns the other
    /// host's MAC on this port.
    ///
    /// A peer receiving the NA for an address it holds ignores it, unless the address is
    /// still in duplicate address detection, which would fail it: VRRP peers add their
    /// addresses without DAD (this crate, keepalived; FRR's macvlan address must be `nodad`
    /// anyway, or the old Master answering its DAD probe fails it).
    pub async fn announce_for(&self, vip: &Vip, mac: [u8; 6]) -> Result<usize, Error> {
        let mut tally = Tally::default();
        for i in 0..self.config.repeat {
            if i > 0 && !self.config.interval.is_zero() {
                tokio::time::sleep(self.config.interval).await;
            }
            match vip.address {
                IpAddr::V4(ip) => {
                    let mut frame = gratuitous_arp(mac, ip, false);
                    frame[6..12].copy_from_slice(&self.mac);
                    self.send(
                        &mut tally,
                        || self.arp.send(&frame).map(drop),
                        || {
                            format!(
                                "sending gratuitous ARP for {ip} at another host's MAC on {}",
                                self.interface
                            )
                        },
                    );
                }
                IpAddr::V6(ip) => self.send(
                    &mut tally,
                    || self.send_na(ip, mac, false),
                    || {
                        format!(
                            "sending an unsolicited NA for {ip} at another host's MAC on {}",
                            self.interface
                        )
                    },
                ),
            }
        }
        tally.into_result(vip)
    }

    /// Sends one burst for `vip` now and returns the number of frames sent. Call it right
    /// after adding the address: this is the takeover's critical path.
    ///
    /// A frame that cannot be sent does not stop the burst: the others still go out, and the
    /// error ([`Error::Announce`]) comes after the burst, saying how many of how many failed.
    pub async fn announce_once(&self, vip: &Vip) -> Result<usize, Error> {
        let mut tally = Tally::default();
        self.burst(vip, &mut tally).await;
        tally.into_result(vip)
    }

    /// keepalived's whole sequence: a burst now, and another after `refresh_delay`. The second
    /// burst goes out whatever became of the first.
    pub async fn announce(&self, vip: &Vip) -> Result<usize, Error> {
        let mut tally = Tally::default();
        self.burst(vip, &mut tally).await;
        if let Some(delay) = self.config.refresh_delay {
            tokio::time::sleep(delay).await;
            self.burst(vip, &mut tally).await;
        }
        tally.into_result(vip)
    }

    async fn burst(&self, vip: &Vip, tally: &mut Tally) {
        for i in 0..self.config.repeat {
            if i > 0 && !self.config.interval.is_zero() {
                tokio::time::sleep(self.config.interval).await;
            }
            match vip.address {
                IpAddr::V4(ip) => {
                    for reply in [false, true] {
                        if reply && !self.config.arp_reply {
                            continue;
                        }
                        let frame = gratuitous_arp(self.mac, ip, reply);
                        self.send(
                            tally,
                            || self.arp.send(&frame).map(drop),
                            || format!("sending gratuitous ARP for {ip} on {}", self.interface),
                        );
                    }
                }
                IpAddr::V6(ip) => self.send(
                    tally,
                    || self.send_na(ip, self.mac, true),
                    || format!("sending an unsolicited NA for {ip} on {}", self.interface),
                ),
            }
        }
    }

    /// One frame, sent a second time at once if the first send fails: a link that went down
    /// left its error pending on the socket, and the failing call consumed it.
    fn send(
        &self,
        tally: &mut Tally,
        send: impl Fn() -> std::io::Result<()>,
        what: impl Fn() -> String,
    ) {
        tally.attempted += 1;
        let first = match send() {
            Ok(()) => {
                tally.sent += 1;
                self.lock_stats().frames_sent += 1;
                return;
            }
            Err(e) => e,
        };
        let again = send();
        let mut stats = self.lock_stats();
        match again {
            Ok(()) => {
                tally.sent += 1;
                stats.frames_sent += 1;
                stats.frames_retried += 1;
                stats.last_error = Some(format!("{} (sent on the second try): {first}", what()));
            }
            Err(e) => {
                let e = Error::raw_socket(what(), e);
                stats.frames_failed += 1;
                stats.last_error = Some(e.to_string());
                tally.last_error = Some(e);
            }
        }
    }

    /// An NA saying `ip` is at `mac`, through a socket of its own: bound to the VIP
    /// (keepalived's source) when `from_vip`, else from the address the kernel picks for
    /// ff02::1 on the interface (its link-local).
    fn send_na(&self, ip: Ipv6Addr, mac: [u8; 6], from_vip: bool) -> std::io::Result<()> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        // The kernel fills in the ICMPv6 checksum.
        if from_vip {
            socket.bind(&SockAddr::from(SocketAddrV6::new(ip, 0, 0, self.ifindex)))?;
        }
        socket.set_multicast_if_v6(self.ifindex)?;
        socket.set_multicast_hops_v6(255)?;
        let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        socket.send_to(&unsolicited_na(mac, ip), &to)?;
        Ok(())
    }
}

/// A gratuitous ARP Ethernet frame for `ip` from `mac`: the request form (opcode 1, target MAC
/// broadcast) as keepalived sends it, or the reply form.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[
        0x00,
        0x01,
        0x08,
        0x00,
        6,
        4,
        0x00,
        if reply { 2 } else { 1 },
    ]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    if reply {
        f[32..38].copy_from_slice(&mac);
    } else {
        f[32..38].fill(0xff);
    }
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement (ICMPv6 message, checksum left to the kernel): type
/// 136, Override set, target `ip`, target link-layer address option `mac`.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = 136;
    m[4] = 0x20; // Override; not Router, not Solicited
    m[8..24].copy_from_slice(&ip.octets());
    m[24] = 2; // target link-layer address
    m[25] = 1; // 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const MAC: [u8; 6] = [0x96, 0xcf, 0x75, 0xbb, 0x41, 0xbc];

    #[test]
    fn garp_is_keepalived_2_2_7_byte_for_byte() {
        // shared/vectors: v3_ipv4#garp, whole Ethernet frame.
        let keepalived = hex(
            "ffffffffffff96cf75bb41bc0806000108000604000196cf75bb41bc0a6300c8ffffffffffff0a6300c8",
        );
        assert_eq!(
            gratuitous_arp(MAC, Ipv4Addr::new(10, 99, 0, 200), false).to_vec(),
            keepalived
        );
        let reply = gratuitous_arp(MAC, Ipv4Addr::new(10, 99, 0, 200), true);
        assert_eq!(reply[21], 2);
        assert_eq!(&reply[32..38], &MAC);
    }

    #[test]
    fn na_is_keepalived_2_2_7_but_for_the_kernel_checksum() {
        // shared/vectors: v3_ipv6#una, the ICMPv6 part of the IPv6 packet (checksum 0x0925).
        let mut keepalived =
            hex("8800092520000000fd990000000000000000000000000200020196cf75bb41bc");
        keepalived[2..4].fill(0);
        let ip: Ipv6Addr = "fd99::200".parse().unwrap();
        assert_eq!(unsolicited_na(MAC, ip).to_vec(), keepalived);
    }

    #[test]
    fn defaults_are_keepalived_s() {
        let c = AnnounceConfig::default();
        assert_eq!(
            (c.repeat, c.interval, c.refresh_delay),
            (5, Duration::ZERO, Some(Duration::from_secs(5)))
        );
    }
}
