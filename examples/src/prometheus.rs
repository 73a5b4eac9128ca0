//! The Prometheus text format the daemons' `/metrics` endpoints write: lb-core's writer
//! ([`lb_core::stats_page::prometheus`]), named here for vrrpd's metrics.

pub use lb_core::stats_page::prometheus::{CONTENT_TYPE, Family, Metric, count, flag};
