//! The `lbd` daemon as a library: an HAProxy-class load balancer composed from `lb-core`
//! (the algorithms, retries, maxconn) and `health-check` (the servers' checks).
//!
//! [`config`] reads and checks the file (`lbd --check`); [`Lbd`] runs it: a proxy per
//! listener ([`lb_core::proxy`]), a `health-check` monitor per checked server whose verdicts
//! take servers in and out of rotation (logged as HAProxy does:
//! `backend web server web2 127.0.0.1:18082 marked down: ...`), reload and drain;
//! [`stats_page`] serves what it counts (HTML, JSON and Prometheus metrics).
//!
//! ```no_run
//! use std::time::Duration;
//! use examples::lbd::{Lbd, config};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let text = r#"
//! [[listen]]
//! name = "db"
//! bind = "127.0.0.1:15432"
//! balance = "leastconn"
//! check = { tcp = true, interval = "1s" }
//! servers = [{ name = "db1", addr = "127.0.0.1:5432" }]
//! "#;
//! let config = config::parse("lbd.toml", text).map_err(|errors| errors[0].to_string())?;
//! let mut lbd = Lbd::start(&config).await?;
//! println!("{:?}", lbd.addresses());
//! // SIGHUP: a new file, applied without dropping connections.
//! lbd.reload(&config, Duration::from_secs(30)).await?;
//! // SIGTERM: stop accepting, let the connections finish.
//! lbd.drain(Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```

mod balance;
pub mod config;
mod daemon;
mod health;
mod monitors;
mod running;
mod servers;
mod stats;
pub mod stats_page;
mod status;
mod tls;

pub use daemon::{Lbd, Reloaded, StartError};
pub use monitors::{CheckError, CheckErrorReason};

pub use balance::Balance;
pub use health::{HealthCheck, Probe};
pub use servers::MAX_WEIGHT;
pub use stats::{DEFAULT_URI as DEFAULT_STATS_URI, METRICS_URI, Stats};
