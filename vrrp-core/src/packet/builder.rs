//! [`AdvertisementBuilder`]: encodes an advertisement into a caller's buffer.

use std::net::IpAddr;

use bytes::BytesMut;

use super::advertisement::{HEADER_LEN, TYPE_ADVERTISEMENT, message_len};
use super::auth::Authentication;
use super::checksum::{self, ChecksumMode};
use super::error::{EncodeError, VersionError};
use super::fields::{AddressFamily, AdvertInterval, Priority, Version, Vrid};

/// The fields of an advertisement to send. Borrows the address list, so building one per
/// advertisement allocates nothing.
///
/// ```
/// use std::net::IpAddr;
/// use vrrp_core::packet::{AdvertisementBuilder, ChecksumMode, Version, Vrid, Priority};
///
/// let vips = [IpAddr::from([10, 99, 0, 200])];
/// let mut buf = [0u8; 64];
/// let n = AdvertisementBuilder::new(Version::V3, Vrid::new(51).unwrap(), &vips)
///     .priority(Priority::new(101))
///     .encode_to_slice(
///         IpAddr::from([10, 99, 0, 11]),
///         IpAddr::from([224, 0, 0, 18]),
///         ChecksumMode::PseudoHeader,
///         &mut buf,
///     )?;
/// // Byte for byte what keepalived 2.2.7 sends for the same instance.
/// assert_eq!(&buf[..n], &[0x31, 0x33, 0x65, 0x01, 0x00, 0x64, 0x73, 0x3f, 10, 99, 0, 200]);
/// # Ok::<(), vrrp_core::packet::EncodeError>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a builder does nothing until it encodes"]
pub struct AdvertisementBuilder<'a> {
    version: Version,
    vrid: Vrid,
    priority: Priority,
    interval: AdvertInterval,
    addresses: &'a [IpAddr],
    authentication: Authentication,
}

impl<'a> AdvertisementBuilder<'a> {
    /// An advertisement for virtual router `vrid` carrying `addresses`, with the RFC defaults:
    /// priority 100, interval 1 s, no authentication.
    pub fn new(version: Version, vrid: Vrid, addresses: &'a [IpAddr]) -> AdvertisementBuilder<'a> {
        AdvertisementBuilder {
            version,
            vrid,
            priority: Priority::DEFAULT,
            interval: AdvertInterval::DEFAULT,
            addresses,
            authentication: Authentication::None,
        }
    }

    /// Sets the priority (0 announces a shutdown, 255 the address owner).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the advertisement interval (VRRPv2: whole seconds; VRRPv3: up to 40.95 s).
    pub fn advert_interval(mut self, interval: AdvertInterval) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the VRRPv2 authentication. VRRPv3 accepts only [`Authentication::None`].
    pub fn authentication(mut self, authentication: Authentication) -> Self {
        self.authentication = authentication;
        self
    }

    /// The number of bytes [`encode_to_slice`](Self::encode_to_slice) writes, or would write
    /// if the fields are valid.
    pub fn encoded_len(&self) -> usize {
        let family = self
            .addresses
            .first()
            .map_or(AddressFamily::Ipv4, AddressFamily::of);
        message_len(self.version, family, self.addresses.len())
    }

    /// Encodes into the front of `out` with the checksum `mode` requires between `source` and
    /// `destination` (the IP header's addresses: the pseudo-header forms read them), and
    /// returns the number of bytes written.
    pub fn encode_to_slice(
        &self,
        source: IpAddr,
        destination: IpAddr,
        mode: ChecksumMode,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let family = self.check(source, destination)?;
        let len = message_len(self.version, family, self.addresses.len());
        let available = out.len();
        let msg = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall {
            needed: len,
            available,
        })?;

        msg[0] = (self.version.number() << 4) | TYPE_ADVERTISEMENT;
        msg[1] = self.vrid.get();
        msg[2] = self.priority.get();
        // check() bounded the count to 255.
        msg[3] = u8::try_from(self.addresses.len()).unwrap_or(u8::MAX);
        match self.version {
            Version::V3 => msg[4..6].copy_from_slice(&self.interval.centis().to_be_bytes()),
            Version::V2 => {
                msg[4] = self.authentication.auth_type().number();
                msg[5] = self.interval.whole_secs().unwrap_or(0);
            }
        }
        msg[6..8].fill(0);
        let mut at = HEADER_LEN;
        for addr in self.addresses {
            match addr {
                IpAddr::V4(a) => msg[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => msg[at..at + 16].copy_from_slice(&a.octets()),
            }
            at += family.address_len();
        }
        if self.version == Version::V2 {
            msg[at..].copy_from_slice(&self.authentication.wire_data());
        }
        let kind = mode.send_kind(self.version, family);
        let sum = checksum::compute(kind, source, destination, msg);
        msg[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }

    /// Appends the encoded advertisement to `out` (see
    /// [`encode_to_slice`](Self::encode_to_slice)); on error `out` is left as it was.
    pub fn encode(
        &self,
        source: IpAddr,
        destination: IpAddr,
        mode: ChecksumMode,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        out.resize(start + self.encoded_len(), 0);
        let result = self.encode_to_slice(source, destination, mode, &mut out[start..]);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Validates the fields against each other and returns the address family.
    fn check(&self, source: IpAddr, destination: IpAddr) -> Result<AddressFamily, EncodeError> {
        let family = AddressFamily::of(&source);
        if AddressFamily::of(&destination) != family {
            return Err(EncodeError::MixedAddressFamilies {
                source_addr: source,
                destination,
            });
        }
        if self.addresses.is_empty() {
            return Err(EncodeError::NoAddresses);
        }
        if self.addresses.len() > usize::from(u8::MAX) {
            return Err(EncodeError::TooManyAddresses {
                count: self.addresses.len(),
            });
        }
        if let Some(&address) = self
            .addresses
            .iter()
            .find(|a| AddressFamily::of(a) != family)
        {
            return Err(EncodeError::AddressFamilyMismatch { address, family });
        }
        VersionError::check(self.version, family, self.interval, &self.authentication)?;
        Ok(family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Password;
    use std::net::Ipv6Addr;

    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 11));
    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 18));
    const VIP: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 200))];

    fn vrid() -> Vrid {
        Vrid::new(51).unwrap()
    }

    fn encode(
        b: AdvertisementBuilder<'_>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut out = BytesMut::new();
        b.encode(src, dst, ChecksumMode::PseudoHeader, &mut out)?;
        Ok(out.to_vec())
    }

    #[test]
    fn v2_pass_matches_keepalived_bytes() {
        let b = AdvertisementBuilder::new(Version::V2, vrid(), &VIP)
            .priority(Priority::new(101))
            .authentication(Authentication::SimpleText(
                Password::new("secret12").unwrap(),
            ));
        let bytes = encode(b, SRC, DST).unwrap();
        let expect = [
            0x21, 0x33, 0x65, 0x01, 0x01, 0x01, 0x00, 0x21, 10, 99, 0, 200, b's', b'e', b'c', b'r',
            b'e', b't', b'1', b'2',
        ];
        assert_eq!(bytes, expect);
    }

    #[test]
    fn v2_priority_zero_shutdown_matches_keepalived_bytes() {
        // keepalived 2.2.7's shutdown advert: priority 0, checksum 0xd39f.
        let b = AdvertisementBuilder::new(Version::V2, vrid(), &VIP).priority(Priority::SHUTDOWN);
        let bytes = encode(b, SRC, DST).unwrap();
        assert_eq!(
            &bytes[..8],
            &[0x21, 0x33, 0x00, 0x01, 0x00, 0x01, 0xd3, 0x9f]
        );
    }

    #[test]
    fn encode_errors_name_the_field() {
        let v6: [IpAddr; 1] = [IpAddr::V6(Ipv6Addr::LOCALHOST)];
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &[]);
        assert_eq!(encode(b, SRC, DST), Err(EncodeError::NoAddresses));
        let many = vec![VIP[0]; 256];
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &many);
        assert_eq!(
            encode(b, SRC, DST),
            Err(EncodeError::TooManyAddresses { count: 256 })
        );
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &v6);
        assert!(matches!(
            encode(b, SRC, DST),
            Err(EncodeError::AddressFamilyMismatch { .. })
        ));
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &VIP);
        assert!(matches!(
            encode(b, SRC, v6[0]),
            Err(EncodeError::MixedAddressFamilies { .. })
        ));
        // The version's rules, as a router's configuration has them too.
        let slow = AdvertInterval::from_centis(150).unwrap();
        let long = AdvertInterval::from_secs(41).unwrap();
        let password = Authentication::SimpleText(Password::new("x").unwrap());
        for (b, source, destination, error) in [
            (
                AdvertisementBuilder::new(Version::V2, vrid(), &v6),
                v6[0],
                v6[0],
                VersionError::V2OverIpv6,
            ),
            (
                AdvertisementBuilder::new(Version::V2, vrid(), &VIP).advert_interval(slow),
                SRC,
                DST,
                VersionError::IntervalNotWholeSeconds { interval: slow },
            ),
            (
                AdvertisementBuilder::new(Version::V3, vrid(), &VIP).advert_interval(long),
                SRC,
                DST,
                VersionError::IntervalTooLongForV3 { interval: long },
            ),
            (
                AdvertisementBuilder::new(Version::V3, vrid(), &VIP).authentication(password),
                SRC,
                DST,
                VersionError::AuthenticationOnV3,
            ),
        ] {
            assert_eq!(
                encode(b, source, destination),
                Err(EncodeError::Version(error))
            );
        }
    }

    #[test]
    fn small_buffer_is_an_error_and_bytesmut_is_left_untouched() {
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &VIP);
        let mut small = [0u8; 11];
        assert_eq!(
            b.encode_to_slice(SRC, DST, ChecksumMode::PseudoHeader, &mut small),
            Err(EncodeError::BufferTooSmall {
                needed: 12,
                available: 11
            })
        );
        let mut out = BytesMut::from(&b"keep"[..]);
        let bad = AdvertisementBuilder::new(Version::V3, vrid(), &[]);
        assert!(
            bad.encode(SRC, DST, ChecksumMode::PseudoHeader, &mut out)
                .is_err()
        );
        assert_eq!(&out[..], b"keep");
        assert_eq!(
            b.encode(SRC, DST, ChecksumMode::PseudoHeader, &mut out),
            Ok(12)
        );
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn rfc9568_mode_writes_the_message_only_checksum() {
        let b = AdvertisementBuilder::new(Version::V3, vrid(), &VIP).priority(Priority::new(101));
        let mut out = [0u8; 12];
        b.encode_to_slice(SRC, DST, ChecksumMode::Rfc9568, &mut out)
            .unwrap();
        let sum = u16::from_be_bytes([out[6], out[7]]);
        assert_ne!(sum, 0x733f);
        assert_eq!(
            sum,
            checksum::compute(checksum::ChecksumKind::MessageOnly, SRC, DST, &out)
        );
    }
}
