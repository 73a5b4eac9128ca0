//! The pieces of the `vrrpd` daemon that are worth testing on their own: the configuration
//! file and its checks.

pub mod config;
pub mod duration;
