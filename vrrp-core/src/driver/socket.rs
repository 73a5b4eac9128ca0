//! [`VrrpSocket`]: a raw IP socket for protocol 112 on one interface and address family.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, recvmsg, sendmsg,
    setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::driver::DriverError;
use crate::packet::{AddressFamily, IpHeader, IpPacket, MULTICAST_V4, MULTICAST_V6, PROTOCOL};
use crate::router::Transmit;

/// The largest VRRP datagram read (an IPv4 header with options and the biggest message).
const RECV_BUFFER: usize = 60 + crate::packet::MAX_LEN;

/// A received advertisement: what the IP layer said, and the VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// Source, destination, TTL / hop limit.
    pub header: IpHeader,
    /// The VRRP message.
    pub payload: &'a [u8],
}

/// A raw socket for VRRP (IP protocol 112) bound to one interface, for one address family:
/// joined to the VRRP multicast group (224.0.0.18 / ff02::12) on that interface, sending with
/// TTL / hop limit 255, and reporting the TTL / hop limit of what it receives so the core's
/// RFC 5798 §7.1 check is real. IPv6 adverts leave from the interface's link-local address.
///
/// Needs `CAP_NET_RAW` (opening it) and nothing else; share one per interface and family
/// between the virtual routers there.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    family: AddressFamily,
    interface: String,
    index: u32,
    source: IpAddr,
}

/// The index of `interface`.
fn interface_index(interface: &str) -> Result<u32, DriverError> {
    nix::net::if_::if_nametoindex(interface).map_err(|_| DriverError::UnknownInterface {
        interface: interface.to_owned(),
    })
}

impl VrrpSocket {
    /// Opens the socket on `interface` for `family`. `source` is the address adverts are sent
    /// from: the interface's primary IPv4 address, or its IPv6 link-local address (its scope is
    /// the interface).
    pub fn open(
        interface: &str,
        family: AddressFamily,
        source: IpAddr,
    ) -> Result<VrrpSocket, DriverError> {
        let index = interface_index(interface)?;
        let io = |what: &'static str| {
            let interface = interface.to_owned();
            move |source: io::Error| DriverError::from_io(what, &interface, source)
        };
        let domain = match family {
            AddressFamily::Ipv4 => Domain::IPV4,
            AddressFamily::Ipv6 => Domain::IPV6,
        };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(PROTOCOL))))
            .map_err(io("opening a raw IP socket"))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(io("binding to the interface"))?;
        match family {
            AddressFamily::Ipv4 => {
                socket
                    .set_multicast_ttl_v4(255)
                    .map_err(io("setting the multicast TTL"))?;
                socket.set_ttl_v4(255).map_err(io("setting the TTL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(io("disabling multicast loop"))?;
                socket
                    .join_multicast_v4_n(&MULTICAST_V4, &InterfaceIndexOrAddress::Index(index))
                    .map_err(io("joining 224.0.0.18"))?;
                if let IpAddr::V4(v4) = source {
                    // The device binding already routes multicast out of the interface; the
                    // source address makes it explicit, as keepalived does. (No bind(): on a
                    // raw socket it would also filter what is received by destination, and
                    // the multicast adverts would never arrive.)
                    match socket.set_multicast_if_v4(&v4) {
                        Ok(()) => {}
                        // The source is another interface's (the parent's, for a macvlan that
                        // carries the virtual router MAC): the device binding and each
                        // packet's IP_PKTINFO route it all the same.
                        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {}
                        Err(e) => return Err(io("choosing the multicast interface")(e)),
                    }
                }
            }
            AddressFamily::Ipv6 => {
                socket
                    .set_multicast_hops_v6(255)
                    .map_err(io("setting the multicast hop limit"))?;
                socket
                    .set_unicast_hops_v6(255)
                    .map_err(io("setting the hop limit"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(io("disabling multicast loop"))?;
                socket
                    .set_multicast_if_v6(index)
                    .map_err(io("choosing the multicast interface"))?;
                socket
                    .join_multicast_v6(&MULTICAST_V6, index)
                    .map_err(io("joining ff02::12"))?;
                socket
                    .set_recv_hoplimit_v6(true)
                    .map_err(io("asking for hop limits"))?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| io("asking for destinations")(io::Error::from(e)))?;
            }
        }
        VrrpSocket::from_socket(socket, interface, family, source)
    }

    /// Adopts a raw socket opened and set up elsewhere, as [`open`](Self::open) would have:
    /// by this process before it dropped `CAP_NET_RAW`, or by a supervisor that passed it
    /// down. It is made non-blocking and registered with the runtime; nothing else about it
    /// is changed or checked, so a descriptor that is not such a socket fails at the first
    /// receive, and the driver ends with that error.
    pub fn from_socket(
        socket: Socket,
        interface: &str,
        family: AddressFamily,
        source: IpAddr,
    ) -> Result<VrrpSocket, DriverError> {
        let index = interface_index(interface)?;
        socket
            .set_nonblocking(true)
            .map_err(|e| DriverError::from_io("making the socket non-blocking", interface, e))?;
        let fd = register(socket)
            .map_err(|e| DriverError::from_io("registering with the runtime", interface, e))?;
        Ok(VrrpSocket {
            fd,
            family,
            interface: interface.to_owned(),
            index,
            source,
        })
    }

    /// The interface.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The address family.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// Sends one advertisement from the configured source address (given per packet in
    /// `IP_PKTINFO` / `IPV6_PKTINFO`, so the socket needs no bind), TTL / hop limit 255.
    pub async fn send(&self, transmit: &Transmit) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| self.send_now(fd.get_ref(), transmit)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    fn send_now(&self, socket: &Socket, transmit: &Transmit) -> io::Result<()> {
        let iov = [IoSlice::new(&transmit.payload)];
        let flags = MsgFlags::empty();
        let fd = socket.as_raw_fd();
        let sent = match (transmit.destination, self.source) {
            (IpAddr::V4(to), IpAddr::V4(from)) => {
                let info = nix::libc::in_pktinfo {
                    ipi_ifindex: i32::try_from(self.index).unwrap_or(0),
                    ipi_spec_dst: nix::libc::in_addr {
                        s_addr: u32::from_ne_bytes(from.octets()),
                    },
                    ipi_addr: nix::libc::in_addr { s_addr: 0 },
                };
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                let to = SockaddrIn::from(std::net::SocketAddrV4::new(to, 0));
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))
            }
            (IpAddr::V6(to), IpAddr::V6(from)) => {
                let info = nix::libc::in6_pktinfo {
                    ipi6_addr: nix::libc::in6_addr {
                        s6_addr: from.octets(),
                    },
                    ipi6_ifindex: self.index,
                };
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                let scope = if to.is_multicast() || is_link_local(&to) {
                    self.index
                } else {
                    0
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(to, 0, 0, scope));
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "advert destination and source are of different families",
                ));
            }
        };
        sent.map(drop).map_err(io::Error::from)
    }

    /// Receives the next VRRP datagram into `buffer` (at least [`MAX_DATAGRAM`] bytes).
    /// Datagrams that are not VRRP over IP at all are reported as errors of kind
    /// `InvalidData` for the caller to count; the rest of the checks are the core's.
    pub async fn recv<'b>(&self, buffer: &'b mut [u8]) -> io::Result<Received<'b>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let got = guard.try_io(|fd| match self.family {
                AddressFamily::Ipv4 => {
                    let mut reader: &Socket = fd.get_ref();
                    std::io::Read::read(&mut reader, buffer).map(|n| (n, None))
                }
                AddressFamily::Ipv6 => recv_v6(fd.get_ref(), buffer).map(|(n, h)| (n, Some(h))),
            });
            let (len, header) = match got {
                Ok(result) => result?,
                Err(_would_block) => continue,
            };
            let bytes = &buffer[..len];
            return match header {
                None => {
                    let packet = IpPacket::parse(bytes)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    Ok(Received {
                        header: packet.header,
                        payload: packet.payload,
                    })
                }
                Some(header) => Ok(Received {
                    header,
                    payload: bytes,
                }),
            };
        }
    }
}

/// The receive buffer size that fits any VRRP datagram.
pub const MAX_DATAGRAM: usize = RECV_BUFFER;

/// Hands the socket to tokio's reactor.
#[allow(unsafe_code)]
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the `AsyncFd` takes ownership of `socket`, whose descriptor is open and owned
    // by it alone; `Socket::as_raw_fd` always returns that same descriptor, and nothing closes
    // or replaces it until the `AsyncFd` (and the socket with it) is dropped.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE) }
        .map_err(|e| e.into_parts().1)
}

fn is_link_local(v6: &Ipv6Addr) -> bool {
    v6.segments()[0] & 0xffc0 == 0xfe80
}

/// One IPv6 datagram with its hop limit and destination from the ancillary data (a raw IPv6
/// socket does not deliver the IP header).
fn recv_v6(socket: &Socket, buffer: &mut [u8]) -> io::Result<(usize, IpHeader)> {
    let mut control = [0u8; 128];
    let mut iov = [IoSliceMut::new(buffer)];
    let msg = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let source = msg
        .address
        .map(|a| IpAddr::V6(a.ip()))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
    let mut ttl = None;
    let mut destination = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).ok(),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            _ => {}
        }
    }
    let header = IpHeader {
        source,
        destination: destination.unwrap_or(IpAddr::V6(MULTICAST_V6)),
        // No hop limit reported would be a kernel bug; 0 fails the core's check loudly.
        ttl: ttl.unwrap_or(0),
    };
    Ok((msg.bytes, header))
}
