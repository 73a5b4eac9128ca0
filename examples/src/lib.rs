//! Reference daemons and tools composed from the workspace's crates.
//!
//! So far: `vrrpdump`, which prints the VRRP advertisements seen in a network namespace,
//! decoded and checked by [`vrrp_core`]. The daemons `vrrpd`, `lbd` and `hald` follow as their
//! crates land.
//!
//! ```text
//! cargo build --release -p examples
//! ip netns exec NS target/release/vrrpdump --count 5 --timeout 10
//! ```
#![forbid(unsafe_code)]

pub mod diagnostics;
pub mod duration;
pub mod lbd;
pub mod vrrpd;
