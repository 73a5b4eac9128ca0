//! The `lbd` daemon as a library: an HAProxy-class load balancer composed from `lb-core`
//! (the algorithms, retries, maxconn) and `health-check` (the servers' checks).
//!
//! So far only its configuration file is here ([`config`]: `lbd --check`); the proxy itself
//! is issue 10's next step.

mod balance;
pub mod config;
mod health;
mod servers;
mod stats;
mod tls;

pub use balance::Balance;
pub use health::{HealthCheck, Probe};
pub use servers::MAX_WEIGHT;
pub use stats::{DEFAULT_URI as DEFAULT_STATS_URI, METRICS_URI, Stats};
