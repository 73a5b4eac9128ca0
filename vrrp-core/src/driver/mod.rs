//! The tokio driver (feature `tokio`): raw sockets and the loop that runs [`Router`](crate::Router)s
//! on them.
//!
//! The core stays sans-IO; this module is the thin part that touches the world. A
//! [`VrrpSocket`] is one raw IP socket (protocol 112) per interface and address family, shared
//! by the virtual routers there; a [`Driver`] feeds it packets and deadlines to its routers,
//! sends their advertisements, and hands their [`Event`](crate::Event)s to the caller (who adds the virtual
//! addresses, announces them, runs notify scripts: see the `ip-manager` crate and the `vrrpd`
//! example daemon).
//!
//! [`Driver::spawn`] runs it on a task of its own: the owner steers it from any task through
//! a cloneable [`DriverHandle`] (tracked objects by name, link state, routers added and
//! removed without disturbing the others, a [`DriverSnapshot`] for a status page, stop and
//! wait) and reads its routers' events from a bounded [`DriverEvents`], then how the driver
//! ended ([`DriverExit`]). Whatever ends it (a stop, a socket error, a panic, every handle
//! dropped), the owner learns it, and a driver that returned shut its routers down first.
//! [`Driver::run`] is the same loop over channels the owner keeps.
//!
//! The `ip-manager` crate (feature `vrrp`) applies the events to virtual addresses (add and
//! announce on Master, remove on leaving it or when the driver ends), with the whole set-up in
//! one builder; `health-check` (feature `vrrp`) feeds a monitor into a tracked object.
//!
//! ```no_run
//! use std::net::IpAddr;
//! use vrrp_core::driver::{DEFAULT_EVENT_CAPACITY, Driver, VrrpSocket};
//! use vrrp_core::packet::{AddressFamily, Vrid};
//! use vrrp_core::{Config, Router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let primary: IpAddr = "10.99.0.11".parse()?;
//! let socket = VrrpSocket::open("eth0", AddressFamily::Ipv4, primary)?;
//! let vrid = Vrid::new(51).ok_or("VRID 0 is not valid")?;
//! let router = Router::new(Config::new(vrid, primary, vec!["10.99.0.200".parse()?]))?;
//! let (driver, mut events) = Driver::new(socket, vec![router]).spawn(DEFAULT_EVENT_CAPACITY);
//! while let Some(e) = events.recv().await {
//!     println!("VRID {}: {:?}", e.vrid, e.event); // become Master: add the VIP, send GARPs
//! }
//! println!("the driver {}", events.exit().await);
//! # drop(driver);
//! # Ok(()) }
//! ```

mod error;
mod handle;
mod run;
mod snapshot;
mod socket;
mod timer;

pub use error::{CommandError, DriverError, DriverExit};
pub use handle::{DEFAULT_EVENT_CAPACITY, DriverEvents, DriverHandle, TrackerHandle};
pub use run::{Command, Driver, DriverEvent, DriverStats};
pub use snapshot::{DriverSnapshot, RouterSnapshot};
pub use socket::{MAX_DATAGRAM, Received, VrrpSocket};
