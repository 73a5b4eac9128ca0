//! [`MaxConnError`] and [`QueueError`].

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

/// Why a request got no slot from a [`Queue`](super::Queue): it was full, the wait timed
/// out, or looking for a slot failed with `E` (e.g. no backend is available).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError<E> {
    /// `bound` requests were waiting already (HAProxy `maxqueue`).
    #[error("backend queue full ({queue} waiting)")]
    Full {
        /// The queue's bound.
        queue: usize,
    },
    /// No slot was given back within the timeout (HAProxy `timeout queue`).
    #[error("no free slot within {after:?} (timeout queue)")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// Looking for a slot failed.
    #[error(transparent)]
    Refused(E),
}

impl<E> From<QueueError<E>> for MaxConnError
where
    E: Into<tower::BoxError>,
{
    fn from(e: QueueError<E>) -> MaxConnError {
        match e {
            QueueError::Full { queue } => MaxConnError::QueueFull { queue },
            QueueError::Timeout { after } => MaxConnError::QueueTimeout { after },
            QueueError::Refused(e) => MaxConnError::Inner(e.into()),
        }
    }
}
