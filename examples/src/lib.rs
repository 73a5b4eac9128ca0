//! Reference daemons and tools composed from the workspace's crates.
//!
//! - [`vrrpd`]: a keepalived-like VRRP daemon (binary `vrrpd`).
//! - [`hald`]: both in one process, the balancer's health moving the VRRP priority and a
//!   planned handover drained first (binary `hald`).
//! - [`lbd`]: an HAProxy-class load balancer (binary `lbd`): configuration turned into calls
//!   of `lb_core::proxy` (lb-core's features `proxy` and `proxy-tls`).
//! - `vrrpdump` prints the VRRP advertisements seen in a network namespace, decoded and
//!   checked by [`vrrp_core`]; `vipctl` adds, removes and announces virtual addresses
//!   with `ip-manager`; `ha-demo` tells the whole story (two hald hosts, backends, HTTP load,
//!   five failures) with these crates.
//! - [`diagnostics`] and [`duration`]: what the daemons' configuration checkers share;
//!   [`prometheus`]: lb-core's metrics text writer, named for vrrpd's `/metrics`; [`cli`]: the
//!   end of their argument loops.
//!
//! ```text
//! cargo build --release -p examples
//! ip netns exec NS target/release/vrrpdump --count 5 --timeout 10
//! ```
#![forbid(unsafe_code)]

pub mod alerts;
pub mod cli;
pub mod diagnostics;
pub mod duration;
pub mod hald;
mod http_responder;
pub mod lbd;
pub mod prometheus;
mod task;
pub mod vrrpd;
