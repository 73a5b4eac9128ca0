//! # health-check
//!
//! Health checks with HAProxy's and keepalived's semantics, for any tokio service: the thing
//! that replaces `killall -0 haproxy` polled every 2 s and HAProxy's `check inter 2s rise 2
//! fall 3`.
//!
//! A [`Check`] probes once; a [`Monitor`] runs it on an anchored schedule (`interval`,
//! `fastinter` while the state is changing, `downinter` while down, HAProxy's `spread-checks`
//! jitter, first runs spread over the interval), bounds every run by a timeout, turns results
//! into up/down with `rise` and `fall`, and publishes the [`Status`] on a `tokio::sync::watch`
//! and every [`Transition`] (with timestamps, counts and the last error) as a stream.
//!
//! Built-in checks:
//! - [`TcpCheck`]: connect, optionally send bytes and expect a reply prefix (`tcp-check
//!   send/expect`); connects as HAProxy does (delayed ACK, reset on close).
//! - [`HttpCheck`]: an HTTP/1.1 request judged by its status (a set or a range, default 2xx/3xx)
//!   and optionally a string in the first 16 KiB of the body; HTTPS with the `tls` feature.
//! - [`ExecCheck`]: a program, healthy on exit 0; no shell unless asked; its whole process group
//!   is killed when the run ends or times out; one run in flight.
//! - [`IcmpCheck`]: an ICMP echo answered in time, IPv4 or IPv6 (raw socket, or a ping
//!   socket unprivileged): keepalived's default-gateway check against split brains.
//! - [`ProcessCheck`]: a process alive, by name or pid file, read from /proc (nothing spawned);
//!   between checks its processes are watched through pidfds, so an exit marks it down at
//!   once ([`Check::failed`]), not at the next poll.
//!
//! Your own checks implement [`Check`]. Each monitor carries an id for its consumers; the
//! weight is theirs to give (a VRRP tracker's priority weight, 0 = FAULT; a balancer's server
//! weight). With the `discover`
//! feature, `HealthDiscover` turns monitored services into a `tower::discover` stream that
//! a balancer (lb-core's, or tower's p2c) follows.
//!
//! Cargo features (all off by default): `tls` (HTTPS for [`HttpCheck`]: rustls with the ring
//! provider; verify against given CAs, or not at all like HAProxy's `verify none`),
//! `discover` (`HealthDiscover`, on tower's `discover`, with `HealthDiscover::in_place` on
//! lb-core's `BackendSet`: health flaps set health in place, keeping weights, `maxconn`, admin
//! state and counters) and `vrrp` (a monitor, a runtime watchdog or "any backend up" fed into
//! a VRRP tracked object). [`Health`] is lb-core's, re-exported: the crates share one.
//!
//! ## Example: check an HTTP backend, print its transitions
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use health_check::{Health, HttpCheck, Monitor, MonitorConfig, Start};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio_stream::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A backend on loopback whose /health says "ok" while `healthy` is set.
//! let (healthy, is_healthy) = tokio::sync::watch::channel(true);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let backend = listener.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut conn, _)) = listener.accept().await {
//!         let mut request = [0u8; 1024];
//!         let _ = conn.read(&mut request).await;
//!         let reply: &[u8] = if *is_healthy.borrow() {
//!             b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
//!         } else {
//!             b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
//!         };
//!         let _ = conn.write_all(reply).await;
//!     }
//! });
//!
//! // HAProxy: `option httpchk GET /health`, `http-check expect string ok`,
//! // `server web1 ... check inter 50ms fastinter 10ms rise 2 fall 3`.
//! let check = HttpCheck::new(backend).path("/health").expect_body("ok");
//! let config = MonitorConfig::default()
//!     .interval(Duration::from_millis(50))
//!     .fastinter(Duration::from_millis(10))
//!     .timeout(Duration::from_millis(500))
//!     .rise(2)
//!     .fall(3)
//!     .start(Start::Now)
//!     .id("web1");
//! let monitor = Monitor::spawn(Arc::new(check), config)?;
//! let mut transitions = monitor.transitions();
//!
//! healthy.send(false)?; // the backend starts failing: three 503s later it is down
//! let down = transitions.next().await.expect("a transition");
//! println!("{} {:?} -> {:?} after {} failures: {:?}",
//!     down.id, down.from, down.to, down.failures, down.last_error);
//! assert_eq!(down.to, Health::Down);
//! assert!(down.last_error.unwrap().contains("HTTP 503"));
//!
//! healthy.send(true)?; // and back: two successes later it is up
//! let up = transitions.next().await.expect("a transition");
//! println!("{} {:?} -> {:?} after {} successes", up.id, up.from, up.to, up.successes);
//! assert_eq!((up.to, monitor.status().health), (Health::Up, Health::Up));
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod check;
#[cfg(feature = "discover")]
mod discover;
mod error;
pub mod exec;
mod http;
mod icmp;
mod jitter;
mod monitor;
mod process;
mod tcp;
mod transition;
#[cfg(feature = "vrrp")]
pub mod vrrp;
mod watchdog;

pub use check::Check;
#[cfg(feature = "discover")]
pub use discover::{HealthDiscover, HealthTarget};
pub use error::{CheckError, ConfigError};
pub use exec::ExecCheck;
pub use http::HttpCheck;
#[cfg(feature = "tls")]
pub use http::Tls;
pub use icmp::{IcmpCheck, echo_request, internet_checksum};
pub use monitor::{Health, Monitor, MonitorConfig, Start, Status};
pub use process::ProcessCheck;
pub use tcp::TcpCheck;
pub use transition::{Transition, Transitions};
pub use watchdog::{Watchdog, WatchdogConfig};
