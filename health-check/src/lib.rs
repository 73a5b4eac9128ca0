//! # health-check
//!
//! Health checks with HAProxy's and keepalived's semantics: a [`Check`] probes once; a
//! [`Monitor`] runs it on an anchored schedule (`interval`, `fastinter`, `downinter`), with a
//! timeout, and turns results into up/down with `rise` and `fall`, published on a
//! `tokio::sync::watch`. This replaces `killall -0 haproxy` polled every 2 s, and HAProxy's
//! `check inter 2000 rise 2 fall 3`.
//!
//! Built in so far: [`TcpCheck`] (connect, optional send/expect), [`HttpCheck`] (an HTTP/1.1
//! request judged by status and optionally a string in the first 16 KiB of the body; HTTPS with
//! the `tls` feature) and [`ProcessCheck`] (by name or pid file, from /proc). Exec checks,
//! jitter, the transition stream and the lb-core adapter are still to come.
//!
//! Cargo features: `tls` (off by default) adds HTTPS to [`HttpCheck`] through rustls with the
//! ring provider: `Tls` settings verify against given CA certificates, or not at all (HAProxy's
//! `verify none`).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use health_check::{Health, Monitor, MonitorConfig, Start, TcpCheck};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let check = TcpCheck::new(backend.local_addr().unwrap());
//! let config = MonitorConfig { interval: Duration::from_millis(20), fall: 2, ..MonitorConfig::default() };
//! let monitor = Monitor::spawn(Arc::new(check), config).expect("valid config");
//! let mut status = monitor.subscribe();
//! status.changed().await.unwrap();
//! assert_eq!(status.borrow().health, Health::Up);
//!
//! drop(backend); // the server goes away: two failures later it is down
//! while status.borrow().health == Health::Up {
//!     status.changed().await.unwrap();
//! }
//! println!("down: {:?}", status.borrow().last_error);
//! # }
//! ```
#![forbid(unsafe_code)]

mod check;
#[cfg(feature = "discover")]
mod discover;
mod error;
pub mod exec;
mod http;
mod jitter;
mod monitor;
mod process;
mod tcp;
mod transition;

pub use check::Check;
#[cfg(feature = "discover")]
pub use discover::HealthDiscover;
pub use error::{CheckError, ConfigError};
pub use exec::ExecCheck;
pub use http::HttpCheck;
#[cfg(feature = "tls")]
pub use http::Tls;
pub use monitor::{Health, Monitor, MonitorConfig, Start, Status};
pub use process::ProcessCheck;
pub use tcp::TcpCheck;
pub use transition::{Transition, Transitions};
