//! Errors: why no backend could be picked, why an update was refused.

use thiserror::Error;

/// No backend can take the request: the service turns this into a 503 or a refused connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoBackend {
    /// Every member is down, drained, in maintenance or weighted 0 (or there is none).
    #[error("no backend available ({members} configured, none up and ready)")]
    NoneAvailable {
        /// Members in the set.
        members: usize,
    },
    /// The available ones were all excluded (tried already, or not ready).
    #[error("all {available} available backends were already tried or are not ready")]
    AllExcluded {
        /// Available members.
        available: usize,
    },
}

/// An update to a [`BackendSet`](crate::BackendSet) that cannot apply.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// No backend has that key.
    #[error("no backend {key:?} in the set")]
    Unknown {
        /// The key, displayed.
        key: String,
    },
    /// A backend with that key exists already.
    #[error("backend {key:?} is already in the set: remove it first or change its weight")]
    Duplicate {
        /// The key, displayed.
        key: String,
    },
}
