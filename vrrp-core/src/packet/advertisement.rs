//! [`Advertisement`]: a zero-copy, structurally checked view of a received VRRP message.
//!
//! ```text
//! VRRPv3 (RFC 5798 §5.1)                  VRRPv2 (RFC 3768 §5.1)
//!  0       4       8              16              24              31
//! +-------+-------+---------------+---------------+---------------+
//! |Version| Type  |     VRID      |   Priority    | Count IPvX    |
//! +-------+-------+---------------+---------------+---------------+
//! | rsvd  |  Max Adver Int (cs)   |           Checksum            |   v3
//! | Auth Type     | Adver Int (s) |           Checksum            |   v2
//! +-------+-------+---------------+---------------+---------------+
//! |                 IPvX Address(es) (4 or 16 bytes each)         |
//! +---------------------------------------------------------------+
//! |            Authentication Data (8 bytes, v2 only)             |
//! +---------------------------------------------------------------+
//! ```

use std::fmt;
use std::iter::FusedIterator;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::auth::AuthType;
use super::checksum::{self, ChecksumKind, ChecksumMode};
use super::error::DecodeError;
use super::fields::{AddressFamily, AdvertInterval, Priority, Version, Vrid};

/// Length of the fixed header before the address list.
pub(crate) const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data after the address list.
pub(crate) const AUTH_DATA_LEN: usize = 8;
/// The only packet type, ADVERTISEMENT.
pub(crate) const TYPE_ADVERTISEMENT: u8 = 1;

/// The length of a message of `version` carrying `count` addresses of `family`.
pub(crate) const fn message_len(version: Version, family: AddressFamily, count: usize) -> usize {
    let trailer = match version {
        Version::V2 => AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.address_len() + trailer
}

/// A received VRRP advertisement whose structure has been checked: version 2 or 3, type
/// ADVERTISEMENT, a non-zero VRID, count and interval, a length that matches the count, and
/// (v2) a known auth type. Accessors read the bytes in place and cannot fail.
///
/// [`parse`](Self::parse) does **not** verify the checksum, TTL, version or authentication
/// against an instance's configuration: [`ReceivePolicy::accept`] does all of RFC 5798 §7.1
/// that needs no router state, and is what a receiver should call.
///
/// [`ReceivePolicy::accept`]: super::ReceivePolicy::accept
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Advertisement<'a> {
    bytes: &'a [u8],
    family: AddressFamily,
}

impl<'a> Advertisement<'a> {
    /// Checks the structure of `bytes` (the IP payload) received over `family`.
    ///
    /// Never panics: any input yields either a view or a [`DecodeError`] naming what is wrong.
    pub fn parse(bytes: &'a [u8], family: AddressFamily) -> Result<Advertisement<'a>, DecodeError> {
        let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed: HEADER_LEN,
                what: "VRRP header",
            });
        };
        let version =
            Version::from_number(header[0] >> 4).ok_or(DecodeError::UnsupportedVersion {
                version: header[0] >> 4,
            })?;
        let max = message_len(version, family, usize::from(u8::MAX));
        if bytes.len() > max {
            return Err(DecodeError::Oversized {
                len: bytes.len(),
                max,
            });
        }
        if header[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(DecodeError::UnknownType {
                packet_type: header[0] & 0x0f,
            });
        }
        if version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(DecodeError::V2OverIpv6);
        }
        if header[1] == 0 {
            return Err(DecodeError::VridZero);
        }
        let count = header[3];
        if count == 0 {
            return Err(DecodeError::NoAddresses);
        }
        let expected = message_len(version, family, usize::from(count));
        if bytes.len() != expected {
            return Err(DecodeError::AddressCountMismatch {
                count,
                len: bytes.len(),
                expected,
                version,
                family,
            });
        }
        let adv = Advertisement { bytes, family };
        if adv.raw_interval() == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        if version == Version::V2 && AuthType::from_number(header[4]).is_none() {
            return Err(DecodeError::UnknownAuthType {
                auth_type: header[4],
            });
        }
        Ok(adv)
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        // parse() admitted only 2 and 3.
        if self.bytes[0] >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    /// The address family of the IP header it came in, and so of its addresses.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// The Virtual Router Identifier.
    pub fn vrid(&self) -> Vrid {
        // parse() rejected 0; 1 is never reached but keeps this free of panics.
        Vrid::new(self.bytes[1]).unwrap_or(Vrid::MIN)
    }

    /// The sender's priority (0: the Master is shutting down; 255: the address owner).
    pub fn priority(&self) -> Priority {
        Priority::new(self.bytes[2])
    }

    /// The Count IPvX Addr field (≥ 1).
    pub fn address_count(&self) -> u8 {
        self.bytes[3]
    }

    /// The advertisement interval (v3: Max Adver Int in centiseconds; v2: Adver Int in
    /// seconds), non-zero.
    pub fn advert_interval(&self) -> AdvertInterval {
        let centis = match self.version() {
            Version::V2 => u16::from(self.bytes[5]) * 100,
            Version::V3 => self.raw_interval(),
        };
        // parse() rejected 0, and neither field can exceed the range.
        AdvertInterval::from_centis(centis).unwrap_or(AdvertInterval::MIN)
    }

    /// The checksum field as received.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.bytes[6], self.bytes[7]])
    }

    /// The virtual addresses, in wire order.
    pub fn addresses(&self) -> Addresses<'a> {
        let end = HEADER_LEN + usize::from(self.address_count()) * self.family.address_len();
        Addresses {
            bytes: self.bytes.get(HEADER_LEN..end).unwrap_or(&[]),
            family: self.family,
        }
    }

    /// VRRPv2's Auth Type; `None` for VRRPv3, which has no such field.
    pub fn auth_type(&self) -> Option<AuthType> {
        match self.version() {
            Version::V2 => AuthType::from_number(self.bytes[4]),
            Version::V3 => None,
        }
    }

    /// VRRPv2's 8-byte Authentication Data (the zero-padded password for simple text);
    /// `None` for VRRPv3.
    pub fn auth_data(&self) -> Option<&'a [u8; 8]> {
        match self.version() {
            Version::V2 => self.bytes.last_chunk::<AUTH_DATA_LEN>(),
            Version::V3 => None,
        }
    }

    /// The whole message, as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Which checksum form the message carries between `source` and `destination`, if any
    /// form this `mode` accepts matches (see [`ChecksumMode`]).
    pub fn verify_checksum(
        &self,
        source: IpAddr,
        destination: IpAddr,
        mode: ChecksumMode,
    ) -> Result<ChecksumKind, DecodeError> {
        if AddressFamily::of(&source) != self.family
            || AddressFamily::of(&destination) != self.family
        {
            return Err(DecodeError::MixedAddressFamilies {
                source_addr: source,
                destination,
            });
        }
        let version = self.version();
        let matches = |kind| checksum::verify(kind, source, destination, self.bytes);
        let own = mode.send_kind(version, self.family);
        let other = match own {
            ChecksumKind::PseudoHeader => ChecksumKind::MessageOnly,
            ChecksumKind::MessageOnly => ChecksumKind::PseudoHeader,
        };
        if matches(own) {
            return Ok(own);
        }
        if mode.accepts(version, self.family, other) && matches(other) {
            return Ok(other);
        }
        // Only VRRPv3 over IPv4 has two legitimate forms; elsewhere the other form matching
        // would be a coincidence, not a peer's choice.
        if version == Version::V3 && self.family == AddressFamily::Ipv4 && matches(other) {
            return Err(DecodeError::ChecksumModeMismatch {
                peer_kind: other,
                mode,
                hint: match other {
                    ChecksumKind::PseudoHeader => "pseudo-header",
                    ChecksumKind::MessageOnly => "rfc9568",
                },
            });
        }
        Err(DecodeError::BadChecksum {
            found: self.checksum(),
            expected: checksum::compute(own, source, destination, self.bytes),
            kind: own,
            mode,
        })
    }

    fn raw_interval(&self) -> u16 {
        match self.version() {
            Version::V2 => u16::from(self.bytes[5]),
            Version::V3 => u16::from_be_bytes([self.bytes[4], self.bytes[5]]) & 0x0fff,
        }
    }
}

impl fmt::Debug for Advertisement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Advertisement");
        s.field("version", &self.version())
            .field("vrid", &self.vrid())
            .field("priority", &self.priority())
            .field("advert_interval", &self.advert_interval())
            .field("checksum", &format_args!("{:#06x}", self.checksum()))
            .field("addresses", &self.addresses());
        if let Some(t) = self.auth_type() {
            // The password itself stays out of logs.
            s.field("auth_type", &t);
        }
        s.finish()
    }
}

/// The address list of an [`Advertisement`], yielded as [`IpAddr`]s in wire order.
#[derive(Clone)]
pub struct Addresses<'a> {
    bytes: &'a [u8],
    family: AddressFamily,
}

impl Iterator for Addresses<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match self.family {
            AddressFamily::Ipv4 => {
                let (a, rest) = self.bytes.split_first_chunk::<4>()?;
                self.bytes = rest;
                Some(IpAddr::V4(Ipv4Addr::from(*a)))
            }
            AddressFamily::Ipv6 => {
                let (a, rest) = self.bytes.split_first_chunk::<16>()?;
                self.bytes = rest;
                Some(IpAddr::V6(Ipv6Addr::from(*a)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / self.family.address_len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Addresses<'_> {}
impl FusedIterator for Addresses<'_> {}

impl fmt::Debug for Addresses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_util::hex;

    // keepalived 2.2.7: VRRPv2 vrid 51 prio 101 1s, 10.99.0.200, auth PASS "secret12".
    const V2_PASS: &str = "21336501010100210a6300c87365637265743132";
    // keepalived 2.2.7: VRRPv3 over IPv4 vrid 51 prio 101 100cs, 10.99.0.200.
    const V3_V4: &str = "313365010064733f0a6300c8";

    /// Parses the IPv4 advert `text` (hex) and checks the fields both versions have: its
    /// version, interval, authentication (type and data) and one address; then `more`.
    fn reads(
        text: &str,
        version: Version,
        interval: AdvertInterval,
        auth: Option<(AuthType, &[u8; 8])>,
        more: impl FnOnce(&Advertisement<'_>),
    ) {
        let b = hex(text);
        let a = Advertisement::parse(&b, AddressFamily::Ipv4).unwrap();
        assert_eq!(a.version(), version);
        assert_eq!(a.advert_interval(), interval);
        assert_eq!(a.auth_type(), auth.map(|(t, _)| t));
        assert_eq!(a.auth_data(), auth.map(|(_, d)| d));
        assert_eq!(a.addresses().len(), 1);
        more(&a);
    }

    #[test]
    fn reads_every_v2_field() {
        let auth = Some((AuthType::SimpleText, b"secret12"));
        reads(
            V2_PASS,
            Version::V2,
            AdvertInterval::from_secs(1).unwrap(),
            auth,
            |a| {
                assert_eq!(a.vrid().get(), 51);
                assert_eq!(a.priority().get(), 101);
                assert_eq!(a.address_count(), 1);
                assert_eq!(a.checksum(), 0x0021);
                assert_eq!(
                    a.addresses().collect::<Vec<_>>(),
                    [IpAddr::from([10, 99, 0, 200])]
                );
                assert!(
                    !format!("{a:?}").contains("secret"),
                    "Debug must not leak the password"
                );
            },
        );
    }

    #[test]
    fn reads_every_v3_field() {
        let interval = AdvertInterval::from_centis(100).unwrap();
        reads(V3_V4, Version::V3, interval, None, |a| {
            assert_eq!(a.advert_interval().centis(), 100);
        });
    }

    #[test]
    fn v3_reserved_bits_are_ignored_rfc5798_5_2_6() {
        let mut b = hex(V3_V4);
        b[4] |= 0xf0;
        let a = Advertisement::parse(&b, AddressFamily::Ipv4).unwrap();
        assert_eq!(a.advert_interval().centis(), 100);
    }

    #[test]
    fn structural_errors_name_the_field() {
        let good = hex(V3_V4);
        let parse = |b: &[u8]| Advertisement::parse(b, AddressFamily::Ipv4).unwrap_err();

        assert!(matches!(
            parse(&good[..7]),
            DecodeError::Truncated {
                len: 7,
                needed: 8,
                ..
            }
        ));
        let mut b = good.clone();
        b[0] = 0x41;
        assert_eq!(parse(&b), DecodeError::UnsupportedVersion { version: 4 });
        b[0] = 0x32;
        assert_eq!(parse(&b), DecodeError::UnknownType { packet_type: 2 });
        let mut b = good.clone();
        b[1] = 0;
        assert_eq!(parse(&b), DecodeError::VridZero);
        let mut b = good.clone();
        b[3] = 0;
        assert_eq!(parse(&b), DecodeError::NoAddresses);
        let mut b = good.clone();
        b[3] = 2;
        assert!(matches!(
            parse(&b),
            DecodeError::AddressCountMismatch {
                count: 2,
                len: 12,
                expected: 16,
                ..
            }
        ));
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(
            parse(&b),
            DecodeError::AddressCountMismatch { len: 13, .. }
        ));
        let mut b = good.clone();
        b[4] = 0xf0;
        b[5] = 0;
        assert_eq!(parse(&b), DecodeError::ZeroInterval);
        assert!(matches!(
            parse(&[0x31; 5000]),
            DecodeError::Oversized {
                len: 5000,
                max: 1028
            }
        ));
    }

    #[test]
    fn v2_structural_errors() {
        let good = hex(V2_PASS);
        let mut b = good.clone();
        b[4] = 7;
        assert_eq!(
            Advertisement::parse(&b, AddressFamily::Ipv4),
            Err(DecodeError::UnknownAuthType { auth_type: 7 })
        );
        let mut b = good.clone();
        b[5] = 0;
        assert_eq!(
            Advertisement::parse(&b, AddressFamily::Ipv4),
            Err(DecodeError::ZeroInterval)
        );
        // v2 without its 8 bytes of authentication data is a count mismatch.
        assert!(matches!(
            Advertisement::parse(&good[..12], AddressFamily::Ipv4),
            Err(DecodeError::AddressCountMismatch { expected: 20, .. })
        ));
        let mut v6 = good.clone();
        v6.resize(8 + 16 + 8, 0);
        assert_eq!(
            Advertisement::parse(&v6, AddressFamily::Ipv6),
            Err(DecodeError::V2OverIpv6)
        );
    }

    #[test]
    fn checksum_mode_mismatch_tells_the_operator_what_to_set() {
        let b = hex(V3_V4);
        let a = Advertisement::parse(&b, AddressFamily::Ipv4).unwrap();
        let src = IpAddr::from([10, 99, 0, 11]);
        let dst = IpAddr::from([224, 0, 0, 18]);
        assert_eq!(
            a.verify_checksum(src, dst, ChecksumMode::PseudoHeader),
            Ok(ChecksumKind::PseudoHeader)
        );
        let err = a
            .verify_checksum(src, dst, ChecksumMode::Rfc9568)
            .unwrap_err();
        assert_eq!(err.reason(), super::super::DropReason::Checksum);
        assert!(
            err.to_string()
                .contains("use checksum mode \"pseudo-header\""),
            "{err}"
        );
        let either = ChecksumMode::AcceptEither {
            send: ChecksumKind::MessageOnly,
        };
        assert_eq!(
            a.verify_checksum(src, dst, either),
            Ok(ChecksumKind::PseudoHeader)
        );
        // A different source breaks the pseudo-header sum; nothing matches.
        let other = IpAddr::from([10, 99, 0, 12]);
        assert!(matches!(
            a.verify_checksum(other, dst, ChecksumMode::PseudoHeader),
            Err(DecodeError::BadChecksum {
                found: 0x733f,
                kind: ChecksumKind::PseudoHeader,
                ..
            })
        ));
        assert!(matches!(
            a.verify_checksum(
                IpAddr::from(Ipv6Addr::LOCALHOST),
                dst,
                ChecksumMode::PseudoHeader
            ),
            Err(DecodeError::MixedAddressFamilies { .. })
        ));
    }
}
