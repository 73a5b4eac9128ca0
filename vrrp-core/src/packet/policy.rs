//! [`ReceivePolicy`]: the receiver checks of RFC 5798 §7.1 (and RFC 3768 §7.1 for VRRPv2) that
//! need an instance's configuration but no router state.
//!
//! What stays for the state machine: whether the VRID is configured here, and (VRRPv2) whether
//! the advertisement interval and the address list match the local ones.

use std::net::IpAddr;

use super::ADVERTISEMENT_TTL;
use super::advertisement::Advertisement;
use super::auth::{AuthType, Authentication};
use super::checksum::{ChecksumKind, ChecksumMode};
use super::error::DecodeError;
use super::fields::Version;
use super::ip::IpHeader;

/// What one virtual router instance requires of the advertisements it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivePolicy {
    /// The version the instance runs; other versions are dropped (§7.1).
    pub version: Version,
    /// The checksum forms accepted for VRRPv3 over IPv4.
    pub checksum: ChecksumMode,
    /// VRRPv2 authentication: the auth type and (simple text) password must match.
    pub authentication: Authentication,
    /// Require the first IPv6 address to be link-local (RFC 5798 §5.2.9). Off by default:
    /// keepalived 2.2.7 sends only the configured (global) virtual address, so requiring it
    /// would drop every keepalived advertisement.
    pub require_link_local_first: bool,
}

/// An advertisement that passed every check of a [`ReceivePolicy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The message.
    pub advertisement: Advertisement<'a>,
    /// Which checksum form it carried: with [`ChecksumMode::AcceptEither`] this tells which
    /// camp the peer is in.
    pub checksum: ChecksumKind,
}

impl ReceivePolicy {
    /// A policy for `version` with keepalived-compatible defaults: pseudo-header checksums,
    /// no authentication, no link-local-first requirement.
    pub const fn new(version: Version) -> ReceivePolicy {
        ReceivePolicy {
            version,
            checksum: ChecksumMode::PseudoHeader,
            authentication: Authentication::None,
            require_link_local_first: false,
        }
    }

    /// Runs the checks of RFC 5798 §7.1 in its order on the VRRP message `vrrp` that arrived
    /// with the IP header fields `ip`: TTL 255, version, length and count, checksum, and
    /// (VRRPv2) authentication, plus RFC 9568's non-zero count and interval.
    pub fn accept<'a>(&self, ip: &IpHeader, vrrp: &'a [u8]) -> Result<Accepted<'a>, DecodeError> {
        if ip.ttl != ADVERTISEMENT_TTL {
            return Err(DecodeError::TtlNot255 { ttl: ip.ttl });
        }
        let family = ip.family()?;
        if let Some(found) = vrrp.first().and_then(|b| Version::from_number(b >> 4))
            && found != self.version
        {
            return Err(DecodeError::VersionMismatch {
                expected: self.version,
                found,
            });
        }
        let advertisement = Advertisement::parse(vrrp, family)?;
        let checksum = advertisement.verify_checksum(ip.source, ip.destination, self.checksum)?;
        if let Some(found) = advertisement.auth_type() {
            self.check_authentication(found, advertisement.auth_data())?;
        }
        if self.require_link_local_first
            && let Some(IpAddr::V6(first)) = advertisement.addresses().next()
            && !first.is_unicast_link_local()
        {
            return Err(DecodeError::FirstAddressNotLinkLocal { address: first });
        }
        Ok(Accepted {
            advertisement,
            checksum,
        })
    }

    fn check_authentication(
        &self,
        found: AuthType,
        data: Option<&[u8; 8]>,
    ) -> Result<(), DecodeError> {
        if found == AuthType::IpAuthenticationHeader {
            return Err(DecodeError::AuthenticationHeaderUnsupported);
        }
        let expected = self.authentication.auth_type();
        if found != expected {
            return Err(DecodeError::AuthTypeMismatch { expected, found });
        }
        if let Authentication::SimpleText(password) = &self.authentication
            && data != Some(password.as_wire())
        {
            return Err(DecodeError::PasswordMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{AdvertisementBuilder, DropReason, Password, Vrid};
    use std::net::Ipv6Addr;

    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 11));
    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 18));
    const VIP: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 200))];

    fn ip(ttl: u8) -> IpHeader {
        IpHeader {
            source: SRC,
            destination: DST,
            ttl,
        }
    }

    fn v2(auth: Authentication) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        AdvertisementBuilder::new(Version::V2, Vrid::new(51).unwrap(), &VIP)
            .authentication(auth)
            .encode(SRC, DST, ChecksumMode::PseudoHeader, &mut out)
            .unwrap();
        out.to_vec()
    }

    fn pass(s: &str) -> Authentication {
        Authentication::SimpleText(Password::new(s).unwrap())
    }

    #[test]
    fn ttl_must_be_255_rfc5798_7_1() {
        let b = v2(Authentication::None);
        let policy = ReceivePolicy::new(Version::V2);
        assert!(policy.accept(&ip(255), &b).is_ok());
        let err = policy.accept(&ip(254), &b).unwrap_err();
        assert_eq!(err, DecodeError::TtlNot255 { ttl: 254 });
        assert_eq!(err.reason(), DropReason::Ttl);
    }

    #[test]
    fn version_must_match_the_instance_rfc5798_7_1() {
        let b = v2(Authentication::None);
        let err = ReceivePolicy::new(Version::V3)
            .accept(&ip(255), &b)
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::VersionMismatch {
                expected: Version::V3,
                found: Version::V2
            }
        );
        assert!(err.to_string().contains("run version 2"), "{err}");
    }

    #[test]
    fn bad_checksum_is_dropped() {
        let mut b = v2(Authentication::None);
        b[7] ^= 1;
        let err = ReceivePolicy::new(Version::V2)
            .accept(&ip(255), &b)
            .unwrap_err();
        assert!(matches!(err, DecodeError::BadChecksum { .. }), "{err:?}");
    }

    #[test]
    fn v2_auth_type_and_password_must_match_rfc3768_7_1() {
        let mut policy = ReceivePolicy::new(Version::V2);
        policy.authentication = pass("secret12");
        assert!(policy.accept(&ip(255), &v2(pass("secret12"))).is_ok());
        assert_eq!(
            policy.accept(&ip(255), &v2(pass("secret13"))),
            Err(DecodeError::PasswordMismatch)
        );
        assert_eq!(
            policy.accept(&ip(255), &v2(Authentication::None)),
            Err(DecodeError::AuthTypeMismatch {
                expected: AuthType::SimpleText,
                found: AuthType::NoAuthentication
            })
        );
        let open = ReceivePolicy::new(Version::V2);
        assert!(matches!(
            open.accept(&ip(255), &v2(pass("secret12"))),
            Err(DecodeError::AuthTypeMismatch { .. })
        ));
    }

    #[test]
    fn v2_auth_type_ah_is_rejected() {
        // The VRRP message inside keepalived's AH packet: auth type 2, checksum 0x6c9f.
        let b = [
            0x21, 0x33, 0x65, 0x01, 0x02, 0x01, 0x6c, 0x9f, 10, 99, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let err = ReceivePolicy::new(Version::V2)
            .accept(&ip(255), &b)
            .unwrap_err();
        assert_eq!(err, DecodeError::AuthenticationHeaderUnsupported);
        assert_eq!(err.reason(), DropReason::Authentication);
    }

    #[test]
    fn link_local_first_is_optional_because_keepalived_omits_it() {
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let dst: IpAddr = "ff02::12".parse().unwrap();
        let global: [IpAddr; 1] = ["fd99::200".parse().unwrap()];
        let mut out = bytes::BytesMut::new();
        AdvertisementBuilder::new(Version::V3, Vrid::new(51).unwrap(), &global)
            .encode(ll, dst, ChecksumMode::PseudoHeader, &mut out)
            .unwrap();
        let hdr = IpHeader {
            source: ll,
            destination: dst,
            ttl: 255,
        };
        let mut policy = ReceivePolicy::new(Version::V3);
        assert!(policy.accept(&hdr, &out).is_ok());
        policy.require_link_local_first = true;
        assert_eq!(
            policy.accept(&hdr, &out),
            Err(DecodeError::FirstAddressNotLinkLocal {
                address: "fd99::200".parse::<Ipv6Addr>().unwrap()
            })
        );
        let with_ll: [IpAddr; 2] = ["fe80::200".parse().unwrap(), global[0]];
        let mut out = bytes::BytesMut::new();
        AdvertisementBuilder::new(Version::V3, Vrid::new(51).unwrap(), &with_ll)
            .encode(ll, dst, ChecksumMode::PseudoHeader, &mut out)
            .unwrap();
        assert!(policy.accept(&hdr, &out).is_ok());
    }

    #[test]
    fn mixed_family_header_is_malformed() {
        let hdr = IpHeader {
            source: SRC,
            destination: "ff02::12".parse().unwrap(),
            ttl: 255,
        };
        let b = v2(Authentication::None);
        let err = ReceivePolicy::new(Version::V2).accept(&hdr, &b);
        assert!(matches!(err, Err(DecodeError::MixedAddressFamilies { .. })));
    }
}
