//! The `hald` daemon as a library: vrrpd's VRRP instances and lbd's listeners in one process,
//! tied by the libraries with no script between them:
//! - the balancer's own server health moves the instances' priority
//!   ([`health_check::vrrp::track_status`] and [`health_check::vrrp::track_any_status`] on
//!   the listeners' monitors): a weight per server down, FAULT (or a weight) when all are;
//! - a watchdog on an OS thread of its own ([`health_check::Watchdog`]) puts every instance in
//!   FAULT when the balancer's event loop stops answering; VRRP runs on another thread and
//!   runtime, so it still advertises (priority 0) while the balancer is wedged;
//! - listeners bind their virtual address before this host owns it (`IP_FREEBIND`, in
//!   `lb_core::proxy`), so a takeover only moves the address;
//! - leaving Master on purpose (SIGTERM, a reload that rebuilds or removes an instance)
//!   drains first: the instance's listeners hand their clients over
//!   ([`lb_core::proxy::HttpProxy::close_connections`]) and, once no connection is open (or at
//!   `[hald] drain`), the instance sends priority 0 and removes its addresses.
//!
//! - one stats page for both halves: the listeners' page (`stats = { bind }` on a listener)
//!   also shows the VRRP instances ([`page`]), in its JSON too, and serves vrrpd's metrics on
//!   its `/metrics`.
//!
//! [`config`] reads the file (`hald --check`); [`daemon::run`] runs it.

pub mod config;
pub mod daemon;
pub mod page;
