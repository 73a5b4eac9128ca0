//! Server `maxconn` with a queue (HAProxy's server `maxconn`, `maxqueue` and `timeout queue`):
//! the one implementation in lb-core, used by the [`MaxConn`] tower layer and by the proxy
//! (`lb_core::proxy`, feature `proxy`).
//!
//! The pieces:
//! - [`Gauge`]: the slots taken on a backend, bounded by its `maxconn` (one compare-and-swap
//!   per request), with the high-water mark;
//! - [`pick_free`]: the algorithm's pick passing over full backends (HAProxy picks among the
//!   servers below their `maxconn`);
//! - [`Queue`]: where a request waits when every candidate is full, in arrival order, at most
//!   `bound` of them and each for at most the queue timeout; a slot given back wakes it.
//!
//! # The tower layer
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
//!
//! ```
//! use std::time::Duration;
//! use lb_core::MaxConnLayer;
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), lb_core::maxconn::MaxConnError> {
//! let web1 = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>("web1") });
//! // maxconn 100, maxqueue 1000, timeout queue 5s.
//! let mut web1 = MaxConnLayer::new(100, 1000, Duration::from_secs(5)).layer(web1);
//! assert_eq!(web1.ready().await?.call(()).await?, "web1");
//! assert_eq!((web1.active(), web1.queued()), (0, 0));
//! # Ok(())
//! # }
//! ```

mod error;
mod gauge;
mod layer;
mod pick;
mod queue;
mod service;

pub use error::{MaxConnError, QueueError};
pub use gauge::Gauge;
pub use layer::MaxConnLayer;
pub use pick::pick_free;
pub use queue::{Attempt, Queue};
pub use service::{MaxConn, MaxConnFuture};
