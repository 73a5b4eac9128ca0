//! Errors: why no backend could be picked, why an update was refused.

use thiserror::Error;

/// No backend can take the request: the service turns this into a 503 or a refused connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoBackend {
    /// Every member is down, drained, in maintenance or weighted 0 (or there is none). The
    /// text counts them, each under one reason (maintenance, then drain, then down, then
    /// weight 0): `no backend available: 3 configured, 3 down`.
    #[error(
        "no backend available: {members} configured{}",
        reasons(&[(*maintenance, "in maintenance"), (*drained, "drained"), (*down, "down"), (*weight_zero, "at weight 0")])
    )]
    #[non_exhaustive]
    NoneAvailable {
        /// Members in the set.
        members: usize,
        /// Members in maintenance.
        maintenance: usize,
        /// Members draining (they still take sticky sessions, no new ones).
        drained: usize,
        /// Members down (and ready as far as the operator is concerned).
        down: usize,
        /// Members up and ready but weighted 0.
        weight_zero: usize,
    },
    /// The available ones were all excluded (tried already, or not ready).
    #[error("all {available} available backends were already tried or are not ready")]
    AllExcluded {
        /// Available members.
        available: usize,
    },
}

/// `, 2 down, 1 drained` for the reasons that count any member.
fn reasons(counts: &[(usize, &str)]) -> String {
    counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!(", {n} {why}"))
        .collect()
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
