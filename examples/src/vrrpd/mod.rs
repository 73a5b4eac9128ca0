//! The `vrrpd` daemon as a library: the configuration file and its checks, and the running
//! daemon (drivers, virtual addresses, notify scripts, tracked checks).

pub mod config;
pub mod daemon;
pub mod duration;
mod tracking;
pub mod vip_backend;
