//! [`BalanceError`].

use thiserror::Error;

use crate::NoBackend;

/// Why a balanced request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BalanceError {
    /// No backend could take it (a proxy answers 503).
    #[error(transparent)]
    NoBackend(#[from] NoBackend),
    /// The backend's service failed.
    #[error("backend {backend} failed: {source}")]
    Backend {
        /// The backend's key, displayed.
        backend: String,
        /// The service's error.
        source: tower::BoxError,
    },
    /// The discover stream failed.
    #[error("service discovery failed: {0}")]
    Discover(tower::BoxError),
}

impl BalanceError {
    /// The backend that failed, if it was one.
    pub fn backend(&self) -> Option<&str> {
        match self {
            BalanceError::Backend { backend, .. } => Some(backend),
            _ => None,
        }
    }
}
