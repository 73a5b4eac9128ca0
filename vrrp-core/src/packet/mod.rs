//! The VRRP wire format: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798, RFC 9568) advertisements over
//! IPv4 and IPv6.
//!
//! - Receive: [`ReceivePolicy::accept`] runs the RFC 5798 §7.1 checks and returns an
//!   [`Advertisement`], a zero-copy view of the bytes; [`IpPacket::parse`] first when the
//!   socket delivers the IP header too.
//! - Send: [`AdvertisementBuilder`] encodes into a slice or a [`bytes::BytesMut`].
//! - Checksums: VRRPv3 over IPv4 comes in two incompatible forms; [`ChecksumMode`] picks one
//!   per instance, or accepts either.
//!
//! Nothing here panics on input: every malformed packet is a [`DecodeError`], whose
//! [`reason`](DecodeError::reason) is the counter to bump.

mod advertisement;
mod auth;
mod builder;
mod checksum;
mod error;
mod fields;
mod ip;
mod policy;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use advertisement::{Addresses, Advertisement};
pub use auth::{AuthType, Authentication, Password};
pub use builder::AdvertisementBuilder;
pub use checksum::{ChecksumKind, ChecksumMode, compute as compute_checksum};
pub use error::{DecodeError, DropReason, EncodeError, FieldError, VersionError};
pub use fields::{AddressFamily, AdvertInterval, Priority, Version, Vrid};
pub use ip::{IpHeader, IpPacket};
pub use policy::{Accepted, ReceivePolicy};

/// The IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The IPv4 multicast group advertisements are sent to (RFC 5798 §5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group advertisements are sent to (RFC 5798 §5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every advertisement is sent with and must arrive with (§5.1.1.3).
pub const ADVERTISEMENT_TTL: u8 = 255;
/// The longest possible advertisement: VRRPv3 over IPv6 with 255 addresses.
pub const MAX_LEN: usize = 8 + 255 * 16;

#[cfg(test)]
mod test_util {
    /// Bytes from a hex string (test vectors are written as captured hex).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex"))
            .collect()
    }
}
