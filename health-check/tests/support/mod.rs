//! What the health-check tests share.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use health_check::{Health, Monitor, MonitorConfig, Start, Status};

/// A configuration checking every `interval`, the first check at once.
pub(crate) fn at_once(interval: Duration) -> MonitorConfig {
    MonitorConfig::default()
        .interval(interval)
        .start(Start::Now)
}

/// A loopback address nothing listens on (a port bound, then closed again).
pub(crate) fn closed_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local address")
}

/// Waits until `monitor` is no longer up and returns its status then.
pub(crate) async fn down(monitor: &Monitor) -> Status {
    let mut rx = monitor.subscribe();
    while rx.borrow().health == Health::Up {
        rx.changed().await.expect("the monitor runs");
    }
    rx.borrow().clone()
}
