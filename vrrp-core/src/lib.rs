//! # vrrp-core
//!
//! A sans-IO implementation of the Virtual Router Redundancy Protocol: VRRPv3 (RFC 5798, with
//! the RFC 9568 clarifications) and VRRPv2 (RFC 3768), over IPv4 and IPv6, byte-compatible with
//! keepalived. The crate reads no clock and opens no socket; a driver passes packets and time
//! in and pulls packets and events out.
//!
//! - [`router`]: a virtual router as a state machine ([`Router`]), with keepalived's Fault
//!   state, tracking weights, `preempt_delay`, unicast peers and sync groups.
//! - [`packet`]: the wire codec.
//! - `sim` (feature `sim`): a deterministic simulated segment with a virtual clock, on which
//!   routers run unchanged (the crate's scenario tests and the `ha-demo` example use it).
//!
//! ## The driver loop
//!
//! Everything a driver does, here against a fake wire: feed inputs with the current time,
//! then drain transmits and events, then sleep until `poll_timeout`.
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::{Duration, Instant};
//! use vrrp_core::packet::{IpHeader, Priority, Vrid};
//! use vrrp_core::{Config, Event, Router, State};
//!
//! let vip = IpAddr::from([10, 99, 0, 200]);
//! let mut config = Config::new(Vrid::new(51).expect("1..=255"), IpAddr::from([10, 99, 0, 11]), vec![vip]);
//! config.priority = Priority::new(101);
//! let mut router = Router::new(config)?;
//!
//! let start = Instant::now();
//! let mut now = start;
//! router.startup(now);
//! let mut wire: Vec<(IpHeader, Vec<u8>)> = Vec::new(); // received packets would go here
//! while now < start + Duration::from_secs(5) {
//!     for (ip, bytes) in wire.drain(..) {
//!         router.handle_packet(now, ip, &bytes);        // from the raw socket
//!     }
//!     router.handle_timeout(now);
//!     while let Some(tx) = router.poll_transmit() {
//!         // send tx.payload to tx.destination, IP protocol 112, TTL 255
//!         assert_eq!(tx.destination, IpAddr::from([224, 0, 0, 18]));
//!     }
//!     while let Some(event) = router.poll_event() {
//!         if let Event::StateChanged { to: State::Master, .. } = event {
//!             // add the VIPs and send gratuitous ARPs (ip-manager)
//!         }
//!     }
//!     // A real driver sleeps until this instant or until a packet arrives.
//!     now = router.poll_timeout().unwrap_or(now + Duration::from_secs(1));
//! }
//! // Nobody else on the link: Master after Master_Down_Interval (3 s + skew).
//! assert_eq!(router.state(), State::Master);
//!
//! router.shutdown(now); // sends priority 0 so a Backup takes over after Skew_Time
//! assert_eq!(router.poll_transmit().map(|t| t.payload[2]), Some(0));
//! # Ok::<(), vrrp_core::router::ConfigError>(())
//! ```
//!
//! ## The codec
//!
//! Encode an advertisement, then receive it the way a Backup does:
//!
//! ```
//! use std::net::IpAddr;
//! use vrrp_core::packet::{
//!     AdvertInterval, AdvertisementBuilder, ChecksumKind, ChecksumMode, IpHeader, Priority,
//!     ReceivePolicy, Version, Vrid, ADVERTISEMENT_TTL, MULTICAST_V4,
//! };
//!
//! let vrid = Vrid::new(51).expect("non-zero");
//! let vips = [IpAddr::from([10, 99, 0, 200])];
//! let me = IpAddr::from([10, 99, 0, 11]);
//! let group = IpAddr::from(MULTICAST_V4);
//!
//! // Master side: encode into a buffer (a `BytesMut` works too).
//! let mut buf = [0u8; vrrp_core::packet::MAX_LEN];
//! let len = AdvertisementBuilder::new(Version::V3, vrid, &vips)
//!     .priority(Priority::new(101))
//!     .advert_interval(AdvertInterval::from_centis(100)?)
//!     .encode_to_slice(me, group, ChecksumMode::PseudoHeader, &mut buf)?;
//!
//! // Backup side: the socket reported source, destination and TTL.
//! let ip = IpHeader { source: me, destination: group, ttl: ADVERTISEMENT_TTL };
//! let accepted = ReceivePolicy::new(Version::V3).accept(&ip, &buf[..len])?;
//! let adv = accepted.advertisement;
//! assert_eq!(adv.vrid(), vrid);
//! assert_eq!(adv.priority().get(), 101);
//! assert_eq!(adv.advert_interval().as_duration().as_millis(), 1000);
//! assert_eq!(adv.addresses().collect::<Vec<_>>(), vips);
//! assert_eq!(accepted.checksum, ChecksumKind::PseudoHeader);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A malformed or foreign packet is an error naming what was wrong, never a panic:
//!
//! ```
//! use vrrp_core::packet::{DropReason, IpHeader, ReceivePolicy, Version};
//!
//! let ip = IpHeader { source: [10, 0, 0, 1].into(), destination: [224, 0, 0, 18].into(), ttl: 64 };
//! let err = ReceivePolicy::new(Version::V3).accept(&ip, &[0x31, 0x33]).unwrap_err();
//! assert_eq!(err.reason(), DropReason::Ttl);
//! println!("dropped: {err}"); // TTL/hop limit is 64, not 255: the packet was forwarded ...
//! ```
// The sans-IO core has no unsafe code; the one exception is handing the driver's raw socket
// to tokio's reactor (`driver::socket::register`), behind the `tokio` feature.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tokio")]
pub mod driver;
pub mod packet;
pub mod router;
#[cfg(feature = "sim")]
pub mod sim;

pub use router::{Config, Event, Reason, Router, State, Transmit};
