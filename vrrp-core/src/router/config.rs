//! [`Config`]: one virtual router instance, as keepalived's `vrrp_instance` describes it.

use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use crate::packet::{
    AddressFamily, AdvertInterval, Authentication, ChecksumMode, Priority, Version, VersionError,
    Vrid,
};

/// A tracked object (keepalived `track_script` / `track_interface` entry) and its weight.
///
/// keepalived's rule, kept exactly: a positive weight is added to the priority while the
/// object is up, a negative one while it is down, and weight 0 puts the instance in Fault
/// while the object is down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tracker {
    /// A name for events and logs (the check's or the interface's).
    pub name: String,
    /// -254..=254.
    pub weight: i16,
}

/// The configuration of one virtual router: one VRID on one interface for one family.
///
/// Made with [`Config::new`] (the RFC's defaults), then adjusted field by field; more fields
/// may come, so it cannot be written as a struct literal outside this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The virtual router id.
    pub vrid: Vrid,
    /// VRRPv2 or VRRPv3.
    pub version: Version,
    /// The configured (base) priority, 1..=255; 255 makes this router the address owner.
    pub priority: Priority,
    /// Advertisement_Interval.
    pub advert_interval: AdvertInterval,
    /// The virtual addresses; at least one, all of the family of `primary_address`.
    pub virtual_addresses: Vec<IpAddr>,
    /// The interface's primary address, the source of adverts and the tie-breaker between
    /// equal priorities (for IPv6, the link-local address).
    pub primary_address: IpAddr,
    /// Preempt_Mode: a higher-priority Backup takes over from a lower-priority Master.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after a Backup first sees a lower-priority Master, it
    /// waits this long before preempting.
    pub preempt_delay: Duration,
    /// Whether a preempting Backup takes over as soon as it hears the Master advertise a lower
    /// priority than its own, instead of letting Master_Down_Timer run out (3 intervals plus
    /// Skew_Time; 3.6 s at 1 s adverts) as RFC 5798 §6.4.2 says ("discard the
    /// ADVERTISEMENT"). A Master that lowers its own priority because a tracked object failed
    /// advertises it at once, so with this on, the handover takes one packet's way instead of
    /// seconds. Likewise a Backup whose own priority rises (its tracked object recovered)
    /// above the priority the Master advertised last takes over at once rather than at the
    /// Master's next advert. `preempt_delay` still applies. If several Backups outrank the Master, each
    /// takes over and the lower ones step back at the first advert of the highest (one
    /// one-way delay with two Masters). Off by default (the RFC's behaviour).
    pub preempt_on_lower_advert: bool,
    /// Accept_Mode (RFC 5798 §6.1): whether a non-owner Master accepts packets addressed to
    /// the virtual addresses. The core only carries it; the driver applies it.
    pub accept_mode: bool,
    /// Unicast peers: when non-empty, adverts go to each of them instead of the multicast
    /// group, and adverts from any other source are dropped.
    pub unicast_peers: Vec<IpAddr>,
    /// The VRRPv3-over-IPv4 checksum form.
    pub checksum: ChecksumMode,
    /// VRRPv2 authentication.
    pub authentication: Authentication,
    /// Tracked objects, addressed by their index in this list.
    pub trackers: Vec<Tracker>,
}

impl Tracker {
    /// A tracked object called `name` with `weight` (-254..=254; 0: Fault while down).
    pub fn new(name: impl Into<String>, weight: i16) -> Tracker {
        Tracker {
            name: name.into(),
            weight,
        }
    }
}

impl Config {
    /// A configuration with the RFC's defaults: VRRPv3 (keepalived defaults to VRRPv2: set
    /// `version` for it), priority 100, 1 s adverts, preemption without delay, no accept mode,
    /// multicast, keepalived's pseudo-header checksum, no trackers.
    pub fn new(vrid: Vrid, primary_address: IpAddr, virtual_addresses: Vec<IpAddr>) -> Config {
        Config {
            vrid,
            version: Version::V3,
            priority: Priority::DEFAULT,
            advert_interval: AdvertInterval::DEFAULT,
            virtual_addresses,
            primary_address,
            preempt: true,
            preempt_delay: Duration::ZERO,
            preempt_on_lower_advert: false,
            accept_mode: false,
            unicast_peers: Vec::new(),
            checksum: ChecksumMode::default(),
            authentication: Authentication::None,
            trackers: Vec::new(),
        }
    }

    /// The address family of the instance.
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(&self.primary_address)
    }

    /// Checks the fields against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let family = self.family();
        if self.priority.is_shutdown() {
            return Err(ConfigError::PriorityZero);
        }
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ConfigError::TooManyVirtualAddresses {
                count: self.virtual_addresses.len(),
            });
        }
        let foreign = self
            .virtual_addresses
            .iter()
            .chain(&self.unicast_peers)
            .find(|a| AddressFamily::of(a) != family);
        if let Some(&address) = foreign {
            return Err(ConfigError::MixedFamilies { address, family });
        }
        VersionError::check(
            self.version,
            family,
            self.advert_interval,
            &self.authentication,
        )?;
        if let Some(t) = self
            .trackers
            .iter()
            .find(|t| !(-254..=254).contains(&t.weight))
        {
            return Err(ConfigError::WeightOutOfRange {
                tracker: t.name.clone(),
                weight: t.weight,
            });
        }
        // Trackers are addressed by name (the driver's `Command::Track`).
        for (i, t) in self.trackers.iter().enumerate() {
            if self.trackers[..i].iter().any(|u| u.name == t.name) {
                return Err(ConfigError::DuplicateTracker {
                    tracker: t.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why a [`Config`] cannot run.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Base priority 0, which only means "shutting down" on the wire.
    #[error("priority must be 1..=255 (0 is reserved for the shutdown advert)")]
    PriorityZero,
    /// No virtual addresses.
    #[error("virtual_addresses is empty: a virtual router needs at least one address")]
    NoVirtualAddresses,
    /// More than an advert carries.
    #[error("{count} virtual addresses, but an advertisement carries at most 255")]
    TooManyVirtualAddresses {
        /// How many were given.
        count: usize,
    },
    /// An address of the other family.
    #[error("{address} is not {family} like the primary address; use one instance per family")]
    MixedFamilies {
        /// The offending virtual address or peer.
        address: IpAddr,
        /// The instance's family.
        family: AddressFamily,
    },
    /// A field that the version does not allow.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// Two tracked objects of one name: each must be addressable by its name.
    #[error("{tracker:?} is tracked twice: give each tracked object a name of its own")]
    DuplicateTracker {
        /// The name.
        tracker: String,
    },
    /// A tracker weight outside keepalived's -254..=254.
    #[error("tracker {tracker:?} has weight {weight}, outside -254..=254")]
    WeightOutOfRange {
        /// The tracker's name.
        tracker: String,
        /// Its weight.
        weight: i16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let vrid = Vrid::new(51).expect("non-zero");
        Config::new(
            vrid,
            IpAddr::from([10, 99, 0, 11]),
            vec![IpAddr::from([10, 99, 0, 200])],
        )
    }

    #[test]
    fn trackers_are_addressed_by_name_so_a_name_is_tracked_once() {
        let mut c = config();
        c.trackers = vec![Tracker::new("eth1", 0), Tracker::new("chk", -10)];
        assert_eq!(c.validate(), Ok(()));
        c.trackers.push(Tracker::new("eth1", -20));
        let err = c.validate().expect_err("a name twice");
        assert_eq!(
            err,
            ConfigError::DuplicateTracker {
                tracker: "eth1".into()
            }
        );
        assert!(
            err.to_string().contains("\"eth1\" is tracked twice"),
            "{err}"
        );
    }

    #[test]
    fn a_weight_beyond_keepalived_s_range_is_refused_naming_the_tracker() {
        let mut c = config();
        c.trackers = vec![Tracker::new("chk", 255)];
        assert!(matches!(
            c.validate(),
            Err(ConfigError::WeightOutOfRange { weight: 255, .. })
        ));
    }
}
