//! [`MaxConnError`].

use std::time::Duration;

use thiserror::Error;

/// Why a request behind a [`MaxConn`](super::MaxConn) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MaxConnError {
    /// The queue was full when the request arrived.
    #[error("backend queue full ({queue} waiting)")]
    QueueFull {
        /// The queue's bound.
        queue: usize,
    },
    /// No slot freed within the queue timeout.
    #[error("no free slot on the backend within {after:?} (timeout queue)")]
    QueueTimeout {
        /// The timeout.
        after: Duration,
    },
    /// The backend's service failed.
    #[error(transparent)]
    Inner(tower::BoxError),
}
