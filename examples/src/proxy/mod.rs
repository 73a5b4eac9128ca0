//! lbd's proxies as a library: so far the TCP proxy (`mode = "tcp"`), and in [`tls`] the
//! rustls configurations for TLS termination and TLS towards servers.
//!
//! A [`TcpProxy`] listens on one address (with `IP_FREEBIND`, so it may be a VIP that VRRP
//! has not brought here yet), picks a server for each client through an `lb-core`
//! [`BackendSet`](lb_core::BackendSet) (health, admin state, weights, in-flight counts for
//! `leastconn`), connects with `timeouts.connect`, retries failed connects (`retries`, the
//! last one to another server with `redispatch`), then copies bytes both ways with
//! half-close and an idle timeout. `maxconn` bounds the clients served at once (the next ones
//! wait in the listen backlog), a server's `maxconn` bounds its connections (clients wait up
//! to `timeouts.queue` for a slot), and [`TcpProxy::drain`] stops it gracefully.
//! [`TcpProxy::stats`] reads the counters a stats page shows.
//!
//! ```no_run
//! use examples::proxy::{ServerSettings, TcpProxy, TcpSettings};
//! use lb_core::{Health, LeastConnections};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let servers = vec![
//!     ServerSettings::new("db1", "10.0.0.11:5432".parse()?),
//!     ServerSettings::new("db2", "10.0.0.12:5432".parse()?),
//! ];
//! let settings = TcpSettings::new("pg", "10.99.0.200:5432".parse()?, servers);
//! let proxy = TcpProxy::start(settings, LeastConnections)?;
//!
//! // A health check marks a server down: it gets no new client.
//! proxy.backends().set_health(&"db2".to_string(), Health::Down)?;
//! println!("{:?}", proxy.stats());
//!
//! // Shutting down: refuse new clients, give the others 30s to finish.
//! let report = proxy.drain(Duration::from_secs(30)).await;
//! println!("closed {} connections at the deadline", report.closed);
//! # Ok(())
//! # }
//! ```

mod error;
mod listener;
mod settings;
mod splice;
mod stats;
mod tcp;
pub mod tls;

pub use error::ProxyError;
pub use settings::{ServerSettings, TcpSettings, Timeouts};
pub use stats::{ProxyStats, ServerStats};
pub use tcp::{DrainReport, TcpProxy};
