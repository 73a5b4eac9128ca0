//! The `vrrpd` daemon as a library: the configuration file and its checks, the running
//! daemon (drivers, virtual addresses, notify scripts, tracked checks, SIGHUP reloads), and
//! what it reports (the JSON status and Prometheus metrics).

pub mod capabilities;
pub mod config;
pub mod daemon;
pub use crate::duration;
mod instances;
mod links;
pub mod metrics;
mod registry;
pub mod reload;
pub mod status;
pub mod status_socket;
mod tracking;
pub mod vip_backend;
