//! [`MaxConn`]: a per-backend concurrency limit with a bounded queue and a queue timeout
//! (HAProxy's server `maxconn`, `maxqueue` and `timeout queue`).
//!
//! Wrap each backend's service in a [`MaxConnLayer`] before handing it to the balancer. At
//! most `maxconn` requests run on the backend; the next ones wait in arrival order (FIFO), at
//! most `queue` of them; a request still waiting after `timeout` fails with
//! [`MaxConnError::QueueTimeout`] and one arriving at a full queue fails at once with
//! [`MaxConnError::QueueFull`] (a proxy answers 503 for both, as HAProxy does).
//!
//! `poll_ready` is always ready: the wait happens in the response future, so that the
//! balancer's readiness reflects whether a backend can be reached, not whether it is busy
//! (HAProxy, too, picks the server and then queues on it). The inner service is called through
//! a clone (`ServiceExt::oneshot`) once a slot is free, so it must be `Clone`.

mod error;
mod layer;
mod service;

pub use error::MaxConnError;
pub use layer::MaxConnLayer;
pub use service::{MaxConn, MaxConnFuture};
