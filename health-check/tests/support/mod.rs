//! What the health-check tests share.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use health_check::{Check, CheckError, Health, Monitor, MonitorConfig, Start, Status};
use tokio::net::{TcpListener, TcpStream};

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

/// Runs `check` once and expects it to pass (`what` says what passes).
pub(crate) async fn passes(check: impl Check, what: &str) {
    check.check().await.expect(what);
}

/// Runs `check` once and returns why it failed.
pub(crate) async fn fails(check: impl Check) -> CheckError {
    check.check().await.expect_err("the check fails")
}

/// Runs `check` once and expects it to fail saying `why`; returns the error.
pub(crate) async fn fails_saying(check: impl Check, why: &str) -> CheckError {
    let err = fails(check).await;
    assert_eq!(err.to_string(), why);
    err
}

/// A TCP server on 127.0.0.1 that serves each connection with `serve` on a task of its own,
/// until the test ends: its address.
pub(crate) async fn serve_tcp<F>(serve: impl Fn(TcpStream) -> F + Send + 'static) -> SocketAddr
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}
