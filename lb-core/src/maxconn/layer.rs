//! [`MaxConnLayer`].

use std::time::Duration;

use tower::Layer;

use super::MaxConn;

/// Limits a backend to `maxconn` concurrent requests, queueing up to `queue` more for at most
/// `timeout` (HAProxy `maxconn`, `maxqueue`, `timeout queue`).
#[derive(Clone, Copy, Debug)]
pub struct MaxConnLayer {
    pub(crate) maxconn: usize,
    pub(crate) queue: usize,
    pub(crate) timeout: Duration,
}

impl MaxConnLayer {
    /// `maxconn` at least 1 (0 is raised to 1); `queue` may be 0 (no waiting).
    #[must_use]
    pub fn new(maxconn: usize, queue: usize, timeout: Duration) -> Self {
        MaxConnLayer {
            maxconn: maxconn.max(1),
            queue,
            timeout,
        }
    }
}

impl<S> Layer<S> for MaxConnLayer {
    type Service = MaxConn<S>;

    fn layer(&self, inner: S) -> MaxConn<S> {
        MaxConn::new(inner, *self)
    }
}
