//! The VRRP checksum and the two ways implementations compute it for VRRPv3 over IPv4.
//!
//! All versions use the Internet checksum (RFC 1071). What it covers differs:
//!
//! | version / family | covers                                                          |
//! |------------------|-----------------------------------------------------------------|
//! | v2 (IPv4)        | the VRRP message only                                           |
//! | v3 over IPv6     | IPv6 pseudo-header (RFC 8200 §8.1) + message                    |
//! | v3 over IPv4     | **disputed**: see [`ChecksumMode`]                              |
//!
//! RFC 5798 §5.2.8 says the v3 checksum includes "a pseudo-header". keepalived, FRR and
//! Wireshark's default read that as the IPv4 pseudo-header too; RFC 9568 §5.2.8 clarified that
//! over IPv4 the pseudo-header is *not* included, and Cisco, Juniper and holo follow it.
//! keepalived's `vrrp_checksum_compatibility` / `v3_checksum_as_v2` switches to that form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::fields::{AddressFamily, Version};
use super::{PROTOCOL, error::FieldError};

/// Which bytes a checksum was computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    /// The IP pseudo-header (source, destination, protocol 112, VRRP length) and the message:
    /// every VRRPv3-over-IPv6 packet, and VRRPv3 over IPv4 as keepalived and FRR send it.
    PseudoHeader,
    /// The VRRP message alone: every VRRPv2 packet, and VRRPv3 over IPv4 as RFC 9568, Cisco,
    /// Juniper and holo send it.
    MessageOnly,
}

impl fmt::Display for ChecksumKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChecksumKind::PseudoHeader => "pseudo-header",
            ChecksumKind::MessageOnly => "message-only (RFC 9568)",
        })
    }
}

/// How one VRRPv3-over-IPv4 instance computes the checksum it sends and which form it accepts.
///
/// Only VRRPv3 over IPv4 is affected: VRRPv2 is always [`ChecksumKind::MessageOnly`] and IPv6
/// always [`ChecksumKind::PseudoHeader`], whatever the mode.
///
/// The config strings (`vrrpd`'s `checksum =` key) are `"pseudo-header"`, `"rfc9568"` and
/// `"accept-either"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// Send and accept only the pseudo-header form: keepalived's and FRR's default.
    #[default]
    PseudoHeader,
    /// Send and accept only the message-only form: RFC 9568, Cisco, Juniper, holo, and
    /// keepalived with `v3_checksum_as_v2`.
    Rfc9568,
    /// Accept either form (the caller learns which matched) and send `send`. Meant for a
    /// migration, or a segment that mixes both camps.
    AcceptEither {
        /// The form this instance sends.
        send: ChecksumKind,
    },
}

impl ChecksumMode {
    /// The form this mode writes for a packet of `version` over `family`.
    pub const fn send_kind(self, version: Version, family: AddressFamily) -> ChecksumKind {
        match (version, family) {
            (Version::V2, _) => ChecksumKind::MessageOnly,
            (Version::V3, AddressFamily::Ipv6) => ChecksumKind::PseudoHeader,
            (Version::V3, AddressFamily::Ipv4) => match self {
                ChecksumMode::PseudoHeader => ChecksumKind::PseudoHeader,
                ChecksumMode::Rfc9568 => ChecksumKind::MessageOnly,
                ChecksumMode::AcceptEither { send } => send,
            },
        }
    }

    /// Whether this mode accepts a packet of `version` over `family` checksummed as `kind`.
    pub const fn accepts(
        self,
        version: Version,
        family: AddressFamily,
        kind: ChecksumKind,
    ) -> bool {
        match (version, family, self) {
            (Version::V3, AddressFamily::Ipv4, ChecksumMode::AcceptEither { .. }) => true,
            _ => matches!(
                (self.send_kind(version, family), kind),
                (ChecksumKind::PseudoHeader, ChecksumKind::PseudoHeader)
                    | (ChecksumKind::MessageOnly, ChecksumKind::MessageOnly)
            ),
        }
    }
}

impl fmt::Display for ChecksumMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChecksumMode::PseudoHeader => f.write_str("pseudo-header"),
            ChecksumMode::Rfc9568 => f.write_str("rfc9568"),
            ChecksumMode::AcceptEither { send } => write!(f, "accept-either (sending {send})"),
        }
    }
}

impl FromStr for ChecksumMode {
    type Err = FieldError;

    /// Parses the config value. `"accept-either"` sends the pseudo-header form, keepalived's
    /// default; build [`ChecksumMode::AcceptEither`] directly to send the other.
    fn from_str(s: &str) -> Result<ChecksumMode, FieldError> {
        match s {
            "pseudo-header" => Ok(ChecksumMode::PseudoHeader),
            "rfc9568" => Ok(ChecksumMode::Rfc9568),
            "accept-either" => Ok(ChecksumMode::AcceptEither {
                send: ChecksumKind::PseudoHeader,
            }),
            other => Err(FieldError::UnknownChecksumMode {
                value: other.to_owned(),
            }),
        }
    }
}

/// The checksum that `message` (a whole VRRP message; its checksum field is skipped) should
/// carry when computed as `kind` between `source` and `destination`.
///
/// The addresses are read only for [`ChecksumKind::PseudoHeader`]; both must be of one family.
pub fn compute(kind: ChecksumKind, source: IpAddr, destination: IpAddr, message: &[u8]) -> u16 {
    let mut sum = pseudo_header_sum(kind, source, destination, message.len());
    // The checksum field is bytes 6..8; both halves around it start at even offsets.
    sum += ones_complement_sum(message.get(..6).unwrap_or(message));
    sum += ones_complement_sum(message.get(8..).unwrap_or(&[]));
    !fold(sum)
}

/// Whether `message`, checksum field included, sums to all-ones when computed as `kind`.
/// Both encodings of zero (0x0000 and 0xffff) pass, as RFC 1071 allows.
pub(crate) fn verify(
    kind: ChecksumKind,
    source: IpAddr,
    destination: IpAddr,
    message: &[u8],
) -> bool {
    let sum =
        pseudo_header_sum(kind, source, destination, message.len()) + ones_complement_sum(message);
    fold(sum) == 0xffff
}

fn pseudo_header_sum(kind: ChecksumKind, source: IpAddr, destination: IpAddr, len: usize) -> u64 {
    if kind == ChecksumKind::MessageOnly {
        return 0;
    }
    let proto = u64::from(PROTOCOL);
    // Lengths above 64 KiB cannot come off an IP socket; saturate rather than wrap.
    let len = u64::try_from(len).unwrap_or(u64::MAX >> 16);
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // RFC 768-style: src, dst, zero, protocol, 16-bit length.
            ones_complement_sum(&s.octets()) + ones_complement_sum(&d.octets()) + proto + len
        }
        (s, d) => {
            // RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header. A mixed pair
            // cannot be a real packet; summing both as IPv6 keeps this total and the caller's
            // family check reports it.
            ones_complement_sum(&to_v6_octets(s))
                + ones_complement_sum(&to_v6_octets(d))
                + (len >> 16)
                + (len & 0xffff)
                + proto
        }
    }
}

fn to_v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The RFC 1071 sum of `data` as big-endian 16-bit words (an odd last byte padded with zero),
/// not yet folded. A u64 holds the sum of any packet without overflow.
fn ones_complement_sum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves sum <= 0xffff.
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_util::hex;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4_SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11));
    const V4_DST: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 after folding.
        assert_eq!(fold(ones_complement_sum(&hex("0001f203f4f5f6f7"))), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    /// `msg` (hex) from `src` to `dst` has checksum `want` by `kind`, and verifies; returns
    /// its bytes.
    fn assert_vector(
        kind: ChecksumKind,
        src: IpAddr,
        dst: IpAddr,
        msg: &str,
        want: u16,
    ) -> Vec<u8> {
        let msg = hex(msg);
        assert_eq!(compute(kind, src, dst, &msg), want);
        assert!(verify(kind, src, dst, &msg));
        msg
    }

    #[test]
    fn v2_checksum_covers_message_only_keepalived_vector() {
        // keepalived 2.2.7, VRRPv2 vrid 51 prio 101, 10.99.0.200, no auth: checksum 0x6e9f.
        let msg = "2133650100016e9f0a6300c80000000000000000";
        assert_vector(ChecksumKind::MessageOnly, V4_SRC, V4_DST, msg, 0x6e9f);
    }

    #[test]
    fn v3_ipv4_keepalived_uses_the_pseudo_header() {
        // keepalived 2.2.7, VRRPv3 over IPv4: 0x733f only with the IPv4 pseudo-header.
        let msg = assert_vector(
            ChecksumKind::PseudoHeader,
            V4_SRC,
            V4_DST,
            "313365010064733f0a6300c8",
            0x733f,
        );
        assert!(!verify(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg));
    }

    #[test]
    fn v3_ipv6_pseudo_header_keepalived_vector() {
        let src: IpAddr = "fe80::94cf:75ff:febb:41bc"
            .parse::<Ipv6Addr>()
            .unwrap()
            .into();
        let dst: IpAddr = "ff02::12".parse::<Ipv6Addr>().unwrap().into();
        let msg = "3133650100642068fd990000000000000000000000000200";
        assert_vector(ChecksumKind::PseudoHeader, src, dst, msg, 0x2068);
    }

    #[test]
    fn hand_computed_v2_vector() {
        // VRRPv2 vrid 51 prio 101 count 1, auth 0, int 1 s, 10.99.0.200, 8 zero auth bytes:
        //   0x2133 + 0x6501 + 0x0001 + 0x0a63 + 0x00c8 = 0x9160, !0x9160 = 0x6e9f
        // (the checksum field, bytes 6..8, is zero here and skipped by compute() anyway)
        let msg = hex(concat!("2133650100010000", "0a6300c8", "0000000000000000"));
        assert_eq!(
            compute(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg),
            0x6e9f
        );
    }

    #[test]
    fn hand_computed_v3_ipv4_vectors_in_both_forms() {
        // VRRPv3 vrid 51 prio 101 count 1, 100 cs, 10.99.0.200 from 10.99.0.11 to 224.0.0.18.
        //   message:       0x3133 + 0x6501 + 0x0064 + 0x0a63 + 0x00c8           = 0xa1c3
        //   pseudo-header: 0x0a63 + 0x000b + 0xe000 + 0x0012 + 0x0070 + 0x000c  = 0xeafc
        //   RFC 9568 form: !0xa1c3                                               = 0x5e3c
        //   pseudo form:   0xa1c3 + 0xeafc = 0x18cbf -> 0x8cc0, !0x8cc0          = 0x733f
        let msg = hex(concat!("3133650100640000", "0a6300c8"));
        assert_eq!(
            compute(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg),
            0x5e3c
        );
        assert_eq!(
            compute(ChecksumKind::PseudoHeader, V4_SRC, V4_DST, &msg),
            0x733f
        );
    }

    #[test]
    fn both_encodings_of_zero_verify() {
        // A message whose own sum is 0xffff needs checksum 0x0000; 0xffff is the same value in
        // ones-complement arithmetic and must be accepted too.
        let mut msg = [0xff, 0xff, 0, 0, 0, 0, 0, 0];
        assert_eq!(compute(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg), 0);
        assert!(verify(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg));
        msg[6] = 0xff;
        msg[7] = 0xff;
        assert!(verify(ChecksumKind::MessageOnly, V4_SRC, V4_DST, &msg));
    }

    #[test]
    fn mode_applies_to_v3_ipv4_only() {
        use AddressFamily::*;
        use ChecksumKind::*;
        for mode in [
            ChecksumMode::PseudoHeader,
            ChecksumMode::Rfc9568,
            ChecksumMode::AcceptEither { send: MessageOnly },
        ] {
            assert_eq!(mode.send_kind(Version::V2, Ipv4), MessageOnly);
            assert_eq!(mode.send_kind(Version::V3, Ipv6), PseudoHeader);
            assert!(mode.accepts(Version::V2, Ipv4, MessageOnly));
            assert!(!mode.accepts(Version::V2, Ipv4, PseudoHeader));
            assert!(!mode.accepts(Version::V3, Ipv6, MessageOnly));
        }
        assert!(!ChecksumMode::PseudoHeader.accepts(Version::V3, Ipv4, MessageOnly));
        assert!(!ChecksumMode::Rfc9568.accepts(Version::V3, Ipv4, PseudoHeader));
        let either = ChecksumMode::AcceptEither { send: MessageOnly };
        assert!(either.accepts(Version::V3, Ipv4, MessageOnly));
        assert!(either.accepts(Version::V3, Ipv4, PseudoHeader));
        assert_eq!(either.send_kind(Version::V3, Ipv4), MessageOnly);
    }

    #[test]
    fn config_strings() {
        assert_eq!("pseudo-header".parse(), Ok(ChecksumMode::PseudoHeader));
        assert_eq!("rfc9568".parse(), Ok(ChecksumMode::Rfc9568));
        assert_eq!(
            "accept-either".parse(),
            Ok(ChecksumMode::AcceptEither {
                send: ChecksumKind::PseudoHeader
            })
        );
        let err = "v2".parse::<ChecksumMode>().unwrap_err().to_string();
        assert!(
            err.contains("pseudo-header") && err.contains("rfc9568"),
            "{err}"
        );
    }
}
