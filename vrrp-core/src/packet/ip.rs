//! The IP header fields a VRRP receiver needs, and a parser for whole IP packets.
//!
//! A raw IPv4 socket hands the receiver the IP header with the payload; a raw IPv6 socket does
//! not (the driver reads source, destination and hop limit from the socket's ancillary data
//! and builds an [`IpHeader`] itself). [`IpPacket::parse`] covers the first case and captures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::PROTOCOL;
use super::error::DecodeError;
use super::fields::AddressFamily;

/// IP protocol number of the IP Authentication Header, which keepalived's `auth_type AH`
/// wraps around the VRRP message.
const PROTOCOL_AH: u8 = 51;

/// What the IP layer says about a received VRRP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpHeader {
    /// The sender's address (a link-local address for VRRPv3 over IPv6).
    pub source: IpAddr,
    /// The destination: the VRRP multicast group, or this router's address for unicast.
    pub destination: IpAddr,
    /// The IPv4 TTL or IPv6 Hop Limit; RFC 5798 §7.1 requires 255.
    pub ttl: u8,
}

impl IpHeader {
    /// The address family, if source and destination agree on one.
    pub fn family(&self) -> Result<AddressFamily, DecodeError> {
        let family = AddressFamily::of(&self.source);
        if AddressFamily::of(&self.destination) == family {
            Ok(family)
        } else {
            Err(DecodeError::MixedAddressFamilies {
                source_addr: self.source,
                destination: self.destination,
            })
        }
    }
}

/// An IPv4 or IPv6 packet carrying VRRP: its header fields and the VRRP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// The header fields.
    pub header: IpHeader,
    /// The VRRP message (the IP payload), trailing link-layer padding removed.
    pub payload: &'a [u8],
}

impl<'a> IpPacket<'a> {
    /// Parses an IPv4 packet (with options) or an IPv6 packet (without extension headers)
    /// whose protocol is VRRP. Bytes past the IP length (Ethernet padding) are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<IpPacket<'a>, DecodeError> {
        match bytes.first().map(|b| b >> 4) {
            Some(4) => Self::parse_v4(bytes),
            Some(6) => Self::parse_v6(bytes),
            Some(version) => Err(DecodeError::NotIp { version }),
            None => Err(DecodeError::Truncated {
                len: 0,
                needed: 20,
                what: "IP header",
            }),
        }
    }

    fn parse_v4(bytes: &'a [u8]) -> Result<IpPacket<'a>, DecodeError> {
        let Some(h) = bytes.first_chunk::<20>() else {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed: 20,
                what: "IPv4 header",
            });
        };
        let header_len = usize::from(h[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if header_len < 20 || total < header_len || total > bytes.len() {
            return Err(DecodeError::IpLengthMismatch {
                declared: total.max(header_len),
                len: bytes.len(),
            });
        }
        let flags_offset = u16::from_be_bytes([h[6], h[7]]);
        let more = flags_offset & 0x2000 != 0;
        let offset = flags_offset & 0x1fff;
        if more || offset != 0 {
            return Err(DecodeError::Fragmented { offset, more });
        }
        check_protocol(h[9])?;
        let src: [u8; 4] = [h[12], h[13], h[14], h[15]];
        let dst: [u8; 4] = [h[16], h[17], h[18], h[19]];
        Ok(IpPacket {
            header: IpHeader {
                source: IpAddr::V4(Ipv4Addr::from(src)),
                destination: IpAddr::V4(Ipv4Addr::from(dst)),
                ttl: h[8],
            },
            payload: &bytes[header_len..total],
        })
    }

    fn parse_v6(bytes: &'a [u8]) -> Result<IpPacket<'a>, DecodeError> {
        let Some((h, rest)) = bytes.split_first_chunk::<40>() else {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed: 40,
                what: "IPv6 header",
            });
        };
        let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let Some(payload) = rest.get(..payload_len) else {
            return Err(DecodeError::IpLengthMismatch {
                declared: 40 + payload_len,
                len: bytes.len(),
            });
        };
        check_protocol(h[6])?;
        let mut src = [0u8; 16];
        src.copy_from_slice(&h[8..24]);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&h[24..40]);
        Ok(IpPacket {
            header: IpHeader {
                source: IpAddr::V6(Ipv6Addr::from(src)),
                destination: IpAddr::V6(Ipv6Addr::from(dst)),
                ttl: h[7],
            },
            payload,
        })
    }
}

fn check_protocol(protocol: u8) -> Result<(), DecodeError> {
    match protocol {
        PROTOCOL => Ok(()),
        PROTOCOL_AH => Err(DecodeError::AuthenticationHeaderUnsupported),
        protocol => Err(DecodeError::NotVrrp { protocol }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_util::hex;

    // keepalived 2.2.7 VRRPv3 over IPv4, whole IP packet.
    const V4: &str = "45c0002000010000ff70d02c0a63000be0000012313365010064733f0a6300c8";
    // keepalived 2.2.7 VRRPv3 over IPv6 from the link-local address.
    const V6: &str = "6c07ac4e001870fffe8000000000000094cf75fffebb41bcff0200000000000000000000000000123133650100642068fd990000000000000000000000000200";
    // keepalived 2.2.7 VRRPv2 with auth_type AH: IP protocol 51.
    const AH: &str = "45c0004000010000ff33d0490a63000be0000012700400000a63000b000000016f95815b0d78a23f259cb3332133650102016c9f0a6300c80000000000000000";

    #[test]
    fn ipv4_header_fields_and_padding() {
        let mut b = hex(V4);
        b.extend_from_slice(&[0; 14]); // Ethernet minimum-frame padding
        let p = IpPacket::parse(&b).unwrap();
        assert_eq!(p.header.source, IpAddr::from([10, 99, 0, 11]));
        assert_eq!(p.header.destination, IpAddr::from([224, 0, 0, 18]));
        assert_eq!(p.header.ttl, 255);
        assert_eq!(p.payload, &hex(V4)[20..]);
        assert_eq!(p.header.family(), Ok(AddressFamily::Ipv4));
    }

    #[test]
    fn ipv6_header_fields() {
        let b = hex(V6);
        let p = IpPacket::parse(&b).unwrap();
        assert_eq!(
            p.header.source,
            "fe80::94cf:75ff:febb:41bc".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.header.destination, "ff02::12".parse::<IpAddr>().unwrap());
        assert_eq!(p.header.ttl, 255);
        assert_eq!(p.payload.len(), 24);
    }

    #[test]
    fn authentication_header_is_rejected_clearly() {
        let err = IpPacket::parse(&hex(AH)).unwrap_err();
        assert_eq!(err, DecodeError::AuthenticationHeaderUnsupported);
        assert!(err.to_string().contains("auth_type PASS"), "{err}");
    }

    /// Why `bytes` is refused.
    fn parse_err(bytes: &[u8]) -> DecodeError {
        IpPacket::parse(bytes).expect_err("refused")
    }

    #[test]
    fn malformed_ip_headers() {
        let b = hex(V4);
        assert!(matches!(parse_err(&b[..19]), DecodeError::Truncated { .. }));
        assert!(matches!(
            parse_err(&b[..30]),
            DecodeError::IpLengthMismatch { .. }
        ));
        let mut frag = b.clone();
        frag[6] = 0x20;
        assert!(matches!(
            parse_err(&frag),
            DecodeError::Fragmented { more: true, .. }
        ));
        let mut udp = b.clone();
        udp[9] = 17;
        assert_eq!(parse_err(&udp), DecodeError::NotVrrp { protocol: 17 });
        assert_eq!(parse_err(&[0x50]), DecodeError::NotIp { version: 5 });
        assert!(matches!(parse_err(&[]), DecodeError::Truncated { .. }));
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert!(matches!(
            parse_err(&short_ihl),
            DecodeError::IpLengthMismatch { .. }
        ));
        let v6 = hex(V6);
        assert!(matches!(
            parse_err(&v6[..50]),
            DecodeError::IpLengthMismatch { .. }
        ));
        assert!(matches!(
            parse_err(&v6[..39]),
            DecodeError::Truncated { .. }
        ));
    }
}
