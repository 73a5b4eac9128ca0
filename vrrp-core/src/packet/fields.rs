//! The small value types an advertisement is made of: [`Version`], [`Vrid`], [`Priority`],
//! [`AdvertInterval`] and [`AddressFamily`].

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::time::Duration;

use super::error::FieldError;

/// The VRRP protocol version carried in the high nibble of the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// VRRPv2, RFC 3768 (IPv4 only, advertisement interval in whole seconds, 8-byte
    /// authentication data after the addresses).
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568 (IPv4 and IPv6, interval in centiseconds, no authentication).
    V3,
}

impl Version {
    /// The number written on the wire (2 or 3).
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version with this wire number, if it is one this crate speaks.
    pub const fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// The address family of a virtual router: the family of its IP header and of every address
/// in its advertisements (one virtual router never mixes them, RFC 5798 §5.2.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4: 4-byte addresses, multicast group 224.0.0.18.
    Ipv4,
    /// IPv6: 16-byte addresses, multicast group ff02::12 (VRRPv3 only).
    Ipv6,
}

impl AddressFamily {
    /// The family of `addr`.
    pub const fn of(addr: &IpAddr) -> AddressFamily {
        match addr {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// Bytes one address of this family takes in the address list.
    pub const fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
}

/// A Virtual Router Identifier, 1..=255 (RFC 5798 §5.2.3). Zero is not a valid VRID, so this
/// type cannot hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vrid(NonZeroU8);

impl Vrid {
    /// The smallest VRID, 1.
    pub const MIN: Vrid = Vrid(NonZeroU8::MIN);

    /// The VRID `id`, or `None` for 0.
    pub const fn new(id: u8) -> Option<Vrid> {
        match NonZeroU8::new(id) {
            Some(v) => Some(Vrid(v)),
            None => None,
        }
    }

    /// The VRID as a number.
    pub const fn get(self) -> u8 {
        self.0.get()
    }
}

impl TryFrom<u8> for Vrid {
    type Error = FieldError;

    fn try_from(id: u8) -> Result<Vrid, FieldError> {
        Vrid::new(id).ok_or(FieldError::VridZero)
    }
}

impl fmt::Display for Vrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A VRRP router priority (RFC 5798 §5.2.4): 255 is the address owner, 1..=254 a backup,
/// 0 a Master that stops participating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u8);

impl Priority {
    /// 0: sent by a Master that is shutting down, so a Backup takes over after Skew_Time
    /// instead of waiting for Master_Down_Interval.
    pub const SHUTDOWN: Priority = Priority(0);
    /// 100: the RFC's default for a backup router.
    pub const DEFAULT: Priority = Priority(100);
    /// 255: the router owns the virtual addresses and is Master whenever it is up.
    pub const OWNER: Priority = Priority(255);

    /// The priority `value`; every byte is a valid priority.
    pub const fn new(value: u8) -> Priority {
        Priority(value)
    }

    /// The priority as a number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether this is the address owner's priority (255).
    pub const fn is_owner(self) -> bool {
        self.0 == 255
    }

    /// Whether this is the shutdown priority (0).
    pub const fn is_shutdown(self) -> bool {
        self.0 == 0
    }
}

impl Default for Priority {
    fn default() -> Priority {
        Priority::DEFAULT
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The advertisement interval, kept in centiseconds, the finer of the two wire units.
///
/// VRRPv3 carries it as a 12-bit count of centiseconds (10 ms ..= 40.95 s); VRRPv2 as an 8-bit
/// count of seconds (1 s ..= 255 s). A value is checked against the version when it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// The shortest interval, one centisecond (VRRPv3 only).
    pub const MIN: AdvertInterval = AdvertInterval(1);
    /// One second: the default of RFC 5798 §5.2.7 and of keepalived's `advert_int`.
    pub const DEFAULT: AdvertInterval = AdvertInterval(100);
    /// Largest VRRPv3 interval: the 12-bit field's maximum, 4095 cs = 40.95 s.
    pub const MAX_V3_CENTIS: u16 = 0x0fff;
    /// Largest VRRPv2 interval: 255 s.
    pub const MAX_V2_SECS: u8 = u8::MAX;

    /// An interval of `centis` centiseconds (1 ..= 25500, VRRPv2's 255 s).
    pub const fn from_centis(centis: u16) -> Result<AdvertInterval, FieldError> {
        if centis == 0 {
            Err(FieldError::IntervalZero)
        } else if centis > Self::MAX_V2_SECS as u16 * 100 {
            Err(FieldError::IntervalTooLong {
                centis: centis as u32,
            })
        } else {
            Ok(AdvertInterval(centis))
        }
    }

    /// An interval of `secs` whole seconds (1 ..= 255).
    pub const fn from_secs(secs: u8) -> Result<AdvertInterval, FieldError> {
        if secs == 0 {
            Err(FieldError::IntervalZero)
        } else {
            Ok(AdvertInterval(secs as u16 * 100))
        }
    }

    /// The interval as centiseconds.
    pub const fn centis(self) -> u16 {
        self.0
    }

    /// The interval as whole seconds, if it is a whole number of seconds (VRRPv2's unit).
    pub const fn whole_secs(self) -> Option<u8> {
        if self.0.is_multiple_of(100) && self.0 / 100 <= u8::MAX as u16 {
            Some((self.0 / 100) as u8)
        } else {
            None
        }
    }

    /// The interval as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }
}

impl TryFrom<Duration> for AdvertInterval {
    type Error = FieldError;

    /// Converts a duration that is a whole, non-zero number of centiseconds (10 ms steps).
    fn try_from(d: Duration) -> Result<AdvertInterval, FieldError> {
        let millis = d.as_millis();
        if !d.subsec_nanos().is_multiple_of(10_000_000) {
            return Err(FieldError::IntervalNotCentiseconds { interval: d });
        }
        let centis = millis / 10;
        let centis = u16::try_from(centis).map_err(|_| FieldError::IntervalTooLong {
            centis: u32::try_from(centis).unwrap_or(u32::MAX),
        })?;
        AdvertInterval::from_centis(centis)
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.whole_secs() {
            Some(s) => write!(f, "{s}s"),
            None => write!(f, "{}ms", u32::from(self.0) * 10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrid_zero_is_not_a_vrid_rfc5798_5_2_3() {
        assert_eq!(Vrid::new(0), None);
        assert_eq!(Vrid::try_from(0), Err(FieldError::VridZero));
        assert_eq!(Vrid::new(255).map(Vrid::get), Some(255));
    }

    #[test]
    fn interval_units_v2_seconds_v3_centiseconds() {
        let one_sec = AdvertInterval::from_secs(1).unwrap();
        assert_eq!(one_sec.centis(), 100);
        assert_eq!(one_sec.whole_secs(), Some(1));
        assert_eq!(one_sec.as_duration(), Duration::from_secs(1));
        let ten_ms = AdvertInterval::try_from(Duration::from_millis(10)).unwrap();
        assert_eq!(ten_ms.centis(), 1);
        assert_eq!(ten_ms.whole_secs(), None);
        assert_eq!(ten_ms.to_string(), "10ms");
        assert_eq!(one_sec.to_string(), "1s");
    }

    #[test]
    fn interval_rejects_zero_sub_centisecond_and_too_long() {
        assert_eq!(
            AdvertInterval::from_centis(0),
            Err(FieldError::IntervalZero)
        );
        assert_eq!(AdvertInterval::from_secs(0), Err(FieldError::IntervalZero));
        assert!(matches!(
            AdvertInterval::try_from(Duration::from_millis(15)),
            Err(FieldError::IntervalNotCentiseconds { .. })
        ));
        assert!(matches!(
            AdvertInterval::try_from(Duration::from_secs(256)),
            Err(FieldError::IntervalTooLong { centis: 25600 })
        ));
        assert!(matches!(
            AdvertInterval::try_from(Duration::from_secs(1 << 40)),
            Err(FieldError::IntervalTooLong { .. })
        ));
        assert_eq!(AdvertInterval::from_secs(255).unwrap().centis(), 25500);
    }

    #[test]
    fn priority_names_match_rfc5798_5_2_4() {
        assert!(Priority::OWNER.is_owner());
        assert!(Priority::SHUTDOWN.is_shutdown());
        assert_eq!(Priority::default().get(), 100);
    }
}
