//! The `lbd` daemon as a library: an HAProxy-class load balancer composed from `lb-core`
//! (the algorithms, retries, maxconn) and `health-check` (the servers' checks).
//!
//! So far its configuration file ([`config`]: `lbd --check`) and its stats page
//! ([`stats_page`]: HTML, JSON and Prometheus metrics); the proxy itself is issue 10's next
//! step.

mod balance;
pub mod config;
mod health;
mod servers;
mod stats;
pub mod stats_page;

pub use balance::Balance;
pub use health::{HealthCheck, Probe};
pub use servers::MAX_WEIGHT;
pub use stats::{DEFAULT_URI as DEFAULT_STATS_URI, METRICS_URI, Stats};
