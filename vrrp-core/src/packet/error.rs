//! Errors of the codec: [`DecodeError`] for packets that are dropped, [`EncodeError`] for
//! advertisements that cannot be built, [`FieldError`] for values out of range.

use std::net::{IpAddr, Ipv6Addr};

use thiserror::Error;

use super::auth::{AuthType, Authentication};
use super::checksum::{ChecksumKind, ChecksumMode};
use super::fields::{AddressFamily, AdvertInterval, Version};

/// Why a received packet was dropped. Each variant names the offending value; RFC sections are
/// RFC 5798's unless said otherwise.
///
/// Use [`DecodeError::reason`] to count drops per kind.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the fixed part of the header that was being read.
    #[error("packet truncated: {len} bytes, the {what} needs at least {needed}")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the structure needs.
        needed: usize,
        /// The structure being read ("VRRP header", "IPv4 header", ...).
        what: &'static str,
    },
    /// Longer than any advertisement can be (255 addresses).
    #[error("packet oversized: {len} bytes, no VRRP advertisement is longer than {max}")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// The longest valid advertisement of this version and family.
        max: usize,
    },
    /// The length does not match the address count (§7.1: the packet must hold the complete
    /// message, and nothing else).
    #[error(
        "address count {count} needs a {expected}-byte {version} {family} message, but {len} bytes arrived"
    )]
    AddressCountMismatch {
        /// The Count IPvX Addr field.
        count: u8,
        /// Bytes received.
        len: usize,
        /// Bytes the count implies.
        expected: usize,
        /// The packet's version.
        version: Version,
        /// The family of the IP header it came in.
        family: AddressFamily,
    },
    /// The version nibble is neither 2 nor 3.
    #[error("VRRP version {version} is not supported (only 2 and 3 exist)")]
    UnsupportedVersion {
        /// The version nibble.
        version: u8,
    },
    /// A valid version, but not the one this instance runs (§7.1).
    #[error("received {found} but this instance runs {expected}: run version {n} to match the peers", n = found.number())]
    VersionMismatch {
        /// The locally configured version.
        expected: Version,
        /// The version in the packet.
        found: Version,
    },
    /// The type nibble is not 1 (ADVERTISEMENT), the only type defined.
    #[error("packet type {packet_type} is not ADVERTISEMENT (1)")]
    UnknownType {
        /// The type nibble.
        packet_type: u8,
    },
    /// VRRPv2 arrived over IPv6; RFC 3768 is IPv4 only.
    #[error(
        "VRRPv2 arrived over IPv6, but RFC 3768 defines it for IPv4 only; use version 3 for IPv6"
    )]
    V2OverIpv6,
    /// VRID 0 (§5.2.3: the VRID is 1..=255).
    #[error("virtual router id 0 is invalid (valid: 1..=255)")]
    VridZero,
    /// No addresses (RFC 9568 §5.2.5: Count IPvX Addr is at least 1).
    #[error("address count is 0, RFC 9568 requires at least one address")]
    NoAddresses,
    /// Advertisement interval 0 (RFC 9568 §5.2.7: it must be non-zero).
    #[error("advertisement interval is 0, RFC 9568 requires a non-zero interval")]
    ZeroInterval,
    /// TTL / hop limit other than 255: the packet crossed a router (§7.1).
    #[error(
        "TTL/hop limit is {ttl}, not 255: the packet was forwarded by a router (RFC 5798 §7.1)"
    )]
    TtlNot255 {
        /// The TTL or hop limit the socket reported.
        ttl: u8,
    },
    /// The checksum matches none of the forms the instance accepts.
    #[error(
        "bad checksum {found:#06x}: expected {expected:#06x} computed as {kind} (checksum mode {mode})"
    )]
    BadChecksum {
        /// The checksum field.
        found: u16,
        /// What the instance's form computes to.
        expected: u16,
        /// The form `expected` was computed as.
        kind: ChecksumKind,
        /// The instance's mode.
        mode: ChecksumMode,
    },
    /// The checksum is right, but in the form this instance does not accept: the two camps
    /// of VRRPv3 over IPv4 (see [`ChecksumMode`]).
    #[error(
        "checksum is valid as {peer_kind}, which checksum mode {mode} does not accept: use checksum mode \"{hint}\" (or \"accept-either\") to interoperate with this peer"
    )]
    ChecksumModeMismatch {
        /// The form the peer used.
        peer_kind: ChecksumKind,
        /// The instance's mode.
        mode: ChecksumMode,
        /// The config value that accepts the peer's form.
        hint: &'static str,
    },
    /// The auth type is not 0, 1 or 2.
    #[error("authentication type {auth_type} is unknown (defined: 0 none, 1 simple text, 2 AH)")]
    UnknownAuthType {
        /// The Auth Type byte.
        auth_type: u8,
    },
    /// IP Authentication Header (auth type 2, or IP protocol 51 around the message).
    #[error(
        "authentication type 2 (IP Authentication Header) is not supported: RFC 3768 removed it; configure the peer with `auth_type PASS` or no authentication"
    )]
    AuthenticationHeaderUnsupported,
    /// The auth type differs from the configured one (RFC 3768 §7.1).
    #[error("authentication type {found} received, but this instance is configured for {expected}")]
    AuthTypeMismatch {
        /// The configured type.
        expected: AuthType,
        /// The type in the packet.
        found: AuthType,
    },
    /// The simple text password differs from the configured one. The secret is not printed.
    #[error("simple text password does not match the configured one")]
    PasswordMismatch,
    /// RFC 5798 §5.2.9: over IPv6 the first address must be the virtual router's link-local
    /// address. Checked only when [`ReceivePolicy::require_link_local_first`] is set, because
    /// keepalived 2.2.7 sends the global address alone.
    ///
    /// [`ReceivePolicy::require_link_local_first`]: super::ReceivePolicy::require_link_local_first
    #[error(
        "first IPv6 address {address} is not link-local (fe80::/10), as RFC 5798 §5.2.9 requires"
    )]
    FirstAddressNotLinkLocal {
        /// The first address in the list.
        address: Ipv6Addr,
    },
    /// Source and destination of the IP header are of different families.
    #[error("source {source_addr} and destination {destination} are of different address families")]
    MixedAddressFamilies {
        /// The IP source.
        source_addr: IpAddr,
        /// The IP destination.
        destination: IpAddr,
    },
    /// The IP header's version nibble is neither 4 nor 6.
    #[error("IP version {version} is neither 4 nor 6")]
    NotIp {
        /// The version nibble.
        version: u8,
    },
    /// An IP packet for another protocol than VRRP (112).
    #[error("IP protocol {protocol} is not VRRP (112)")]
    NotVrrp {
        /// The protocol / next header field.
        protocol: u8,
    },
    /// An IPv4 fragment; VRRP advertisements are never fragmented.
    #[error("IPv4 fragment (offset {offset}, more fragments {more}); VRRP is never fragmented")]
    Fragmented {
        /// The fragment offset in 8-byte units.
        offset: u16,
        /// The More Fragments flag.
        more: bool,
    },
    /// The IP header's length fields disagree with the bytes received.
    #[error("IP length field says {declared} bytes but {len} arrived")]
    IpLengthMismatch {
        /// The IP header's total (IPv4) or header + payload (IPv6) length.
        declared: usize,
        /// Bytes received.
        len: usize,
    },
}

/// A [`DecodeError`] without its values: the key to count drops by, as `stats()` will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Truncated, oversized, length/count mismatch, or a bad IP header.
    Malformed,
    /// Version nibble unknown or not the configured one.
    Version,
    /// Type other than ADVERTISEMENT.
    Type,
    /// VRID 0, zero addresses, zero interval, non-link-local first IPv6 address.
    InvalidField,
    /// TTL / hop limit not 255.
    Ttl,
    /// Checksum wrong, or right only in the form this instance does not accept.
    Checksum,
    /// Authentication type or password mismatch, or an unsupported authentication.
    Authentication,
    /// Not a VRRP packet at all (other IP protocol or version).
    NotVrrp,
    /// A valid advert for another VRID (the driver handed it to every router on the link).
    OtherVrid,
    /// In unicast mode, an advert from an address that is not a configured peer.
    UnknownSource,
    /// The router's own advert, looped back.
    OwnAdvert,
    /// VRRPv2: an advert interval other than the local one (RFC 3768 §7.1).
    IntervalMismatch,
}

impl DropReason {
    /// A short stable name, for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::InvalidField => "invalid_field",
            DropReason::Ttl => "ttl",
            DropReason::Checksum => "checksum",
            DropReason::Authentication => "authentication",
            DropReason::NotVrrp => "not_vrrp",
            DropReason::OtherVrid => "other_vrid",
            DropReason::UnknownSource => "unknown_source",
            DropReason::OwnAdvert => "own_advert",
            DropReason::IntervalMismatch => "interval_mismatch",
        }
    }
}

impl DecodeError {
    /// The counter this error belongs to.
    pub const fn reason(&self) -> DropReason {
        use DecodeError::*;
        match self {
            Truncated { .. }
            | Oversized { .. }
            | AddressCountMismatch { .. }
            | V2OverIpv6
            | MixedAddressFamilies { .. }
            | Fragmented { .. }
            | IpLengthMismatch { .. } => DropReason::Malformed,
            UnsupportedVersion { .. } | VersionMismatch { .. } => DropReason::Version,
            UnknownType { .. } => DropReason::Type,
            VridZero | NoAddresses | ZeroInterval | FirstAddressNotLinkLocal { .. } => {
                DropReason::InvalidField
            }
            TtlNot255 { .. } => DropReason::Ttl,
            BadChecksum { .. } | ChecksumModeMismatch { .. } => DropReason::Checksum,
            UnknownAuthType { .. }
            | AuthenticationHeaderUnsupported
            | AuthTypeMismatch { .. }
            | PasswordMismatch => DropReason::Authentication,
            NotIp { .. } | NotVrrp { .. } => DropReason::NotVrrp,
        }
    }
}

/// A field that the chosen VRRP version does not allow (RFC 3768 for VRRPv2, RFC 5798 for
/// VRRPv3): one set of rules for an advertisement being built ([`EncodeError::Version`]) and
/// for a router's configuration (`ConfigError::Version`).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionError {
    /// VRRPv2 over IPv6.
    #[error("VRRPv2 is IPv4 only (RFC 3768): use version 3 (`Version::V3`) for IPv6")]
    V2OverIpv6,
    /// A VRRPv2 interval that is not whole seconds.
    #[error(
        "VRRPv2 carries the advertisement interval in whole seconds, {interval} is not: use version 3 for sub-second intervals"
    )]
    IntervalNotWholeSeconds {
        /// The interval.
        interval: AdvertInterval,
    },
    /// A VRRPv3 interval above 40.95 s.
    #[error("VRRPv3 advertisement interval {interval} exceeds the 12-bit field's 40.95s")]
    IntervalTooLongForV3 {
        /// The interval.
        interval: AdvertInterval,
    },
    /// Authentication on VRRPv3, which has none (RFC 5798 §9).
    #[error(
        "VRRPv3 has no authentication (RFC 5798 §9): use `Authentication::None`, or version 2 (`Version::V2`)"
    )]
    AuthenticationOnV3,
}

impl VersionError {
    /// Checks the address `family`, `interval` and `authentication` against `version`.
    pub(crate) fn check(
        version: Version,
        family: AddressFamily,
        interval: AdvertInterval,
        authentication: &Authentication,
    ) -> Result<(), VersionError> {
        match version {
            Version::V2 if family == AddressFamily::Ipv6 => Err(VersionError::V2OverIpv6),
            Version::V2 if interval.whole_secs().is_none() => {
                Err(VersionError::IntervalNotWholeSeconds { interval })
            }
            Version::V3 if interval.centis() > AdvertInterval::MAX_V3_CENTIS => {
                Err(VersionError::IntervalTooLongForV3 { interval })
            }
            Version::V3 if *authentication != Authentication::None => {
                Err(VersionError::AuthenticationOnV3)
            }
            Version::V2 | Version::V3 => Ok(()),
        }
    }
}

/// Why an advertisement could not be encoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// No addresses; RFC 9568 requires at least one.
    #[error("an advertisement needs at least one virtual address")]
    NoAddresses,
    /// More addresses than the 8-bit count can carry.
    #[error("{count} virtual addresses, but an advertisement carries at most 255")]
    TooManyAddresses {
        /// Addresses given.
        count: usize,
    },
    /// An address whose family is not that of the IP source and destination.
    #[error("virtual address {address} is not {family} like the packet's source and destination")]
    AddressFamilyMismatch {
        /// The offending address.
        address: IpAddr,
        /// The family of the IP header.
        family: AddressFamily,
    },
    /// Source and destination of different families.
    #[error("source {source_addr} and destination {destination} are of different address families")]
    MixedAddressFamilies {
        /// The IP source.
        source_addr: IpAddr,
        /// The IP destination.
        destination: IpAddr,
    },
    /// A field that the version does not allow.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The output slice is too short.
    #[error("output buffer holds {available} bytes, the advertisement needs {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

/// A value out of its range, from the constructors of the codec's field types and config parsers.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// VRID 0.
    #[error("virtual router id must be 1..=255, got 0")]
    VridZero,
    /// Interval 0.
    #[error("advertisement interval must be non-zero")]
    IntervalZero,
    /// Interval above VRRPv2's 255 s.
    #[error("advertisement interval of {centis} centiseconds exceeds the 255s maximum")]
    IntervalTooLong {
        /// The interval asked for.
        centis: u32,
    },
    /// Interval not a whole number of centiseconds.
    #[error("advertisement interval {interval:?} is not a multiple of 10ms (VRRPv3's unit)")]
    IntervalNotCentiseconds {
        /// The interval asked for.
        interval: std::time::Duration,
    },
    /// Password of 0 bytes.
    #[error("the password must not be empty")]
    PasswordEmpty,
    /// Password over 8 bytes.
    #[error("the password is {len} bytes, VRRPv2 simple text passwords are at most 8")]
    PasswordTooLong {
        /// Its length.
        len: usize,
    },
    /// Password containing NUL.
    #[error("the password must not contain a NUL byte")]
    PasswordNul,
    /// Unknown checksum mode string.
    #[error(
        "checksum mode {value:?} is unknown: use \"pseudo-header\", \"rfc9568\" or \"accept-either\""
    )]
    UnknownChecksumMode {
        /// The string given.
        value: String,
    },
}
