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
//! While it runs, the owner steers it with [`Command`]s, naming routers by VRID: tracked
//! objects and link state, routers added and removed without disturbing the others (a
//! configuration reload), a [`DriverSnapshot`] of every router's state, priority and
//! counters (a status page), and a graceful stop.
//!
//! ```no_run
//! use std::net::IpAddr;
//! use vrrp_core::driver::{Command, Driver, VrrpSocket};
//! use vrrp_core::packet::{AddressFamily, Vrid};
//! use vrrp_core::{Config, Router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let primary: IpAddr = "10.99.0.11".parse()?;
//! let socket = VrrpSocket::open("eth0", AddressFamily::Ipv4, primary)?;
//! let vrid = Vrid::new(51).ok_or("VRID 0 is not valid")?;
//! let router = Router::new(Config::new(vrid, primary, vec!["10.99.0.200".parse()?]))?;
//! let (commands, rx) = tokio::sync::mpsc::unbounded_channel();
//! let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
//! tokio::spawn(Driver::new(socket, vec![router]).run(rx, tx));
//! while let Some(e) = events.recv().await {
//!     println!("VRID {}: {:?}", e.vrid, e.event); // become Master: add the VIP, send GARPs
//! }
//! # let _ = commands.send(Command::Stop);
//! # Ok(()) }
//! ```

mod error;
mod run;
mod snapshot;
mod socket;
mod timer;

pub use error::DriverError;
pub use run::{Command, Driver, DriverEvent, DriverStats};
pub use snapshot::{DriverSnapshot, RouterSnapshot};
pub use socket::{MAX_DATAGRAM, Received, VrrpSocket};
