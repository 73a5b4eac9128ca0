//! The `lbd` daemon as a library: an HAProxy-class load balancer composed from `lb-core`
//! (the algorithms, retries, maxconn, and the proxy itself) and `health-check` (the servers'
//! checks).
//!
//! lbd owns no proxying code: it turns configuration into calls of the library. [`config`]
//! reads and checks the file (`lbd --check`); [`Lbd`] runs it: for each `[[listen]]` it maps
//! the keys to an [`lb_core::proxy::TcpSettings`] or [`lb_core::proxy::HttpSettings`]
//! (`retries`, `redispatch`, `timeouts`, `maxconn`, `servers`, `cookie`, the `balance`
//! algorithm and its hash key; `tls` files read into rustls configurations with
//! [`lb_core::proxy::tls`], `verify` mapped to its `Verify`) and starts an
//! [`lb_core::proxy::TcpProxy`] or [`lb_core::proxy::HttpProxy`]; maxconn queueing, retries
//! and redispatch are lb-core's (`lb_core::maxconn`, `lb_core::retry`). What is lbd's own: a
//! `health-check` monitor per checked server whose verdicts take servers in and out of
//! rotation through the proxy's backend set (logged as HAProxy does:
//! `backend web server web2 127.0.0.1:18082 marked down: ...`), SIGHUP reload (the proxy's
//! `update_servers`, or a new proxy when a listener's own settings changed), SIGTERM drain,
//! and the stats page (lb-core's [`lb_core::stats_page`], feature `stats-page`), which
//! serves what the proxies count and the checks say (HTML, JSON and Prometheus metrics).
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

pub mod admin;
mod balance;
pub mod config;
mod daemon;
mod health;
mod monitors;
mod running;
mod servers;
mod stats;
mod status;
mod tls;

pub use daemon::{Lbd, Reloaded, StartError};
pub use monitors::{CheckError, CheckErrorReason};

pub use balance::Balance;
pub use health::{HealthCheck, Probe};
pub use servers::MAX_WEIGHT;
pub use stats::{DEFAULT_URI as DEFAULT_STATS_URI, METRICS_URI, Stats};
