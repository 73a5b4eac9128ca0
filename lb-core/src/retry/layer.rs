//! [`RetryLayer`].

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::Retry;

/// Which errors may be retried.
pub(crate) type Policy = Arc<dyn Fn(&tower::BoxError) -> bool + Send + Sync>;

/// Adds `retries` (and `redispatch`) to a [`Balance`](crate::Balance).
#[derive(Clone)]
pub struct RetryLayer {
    pub(crate) retries: usize,
    pub(crate) redispatch: bool,
    pub(crate) policy: Policy,
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("retries", &self.retries)
            .field("redispatch", &self.redispatch)
            .finish()
    }
}

impl RetryLayer {
    /// `retries` more attempts after a failure (HAProxy `retries`, default 3 there);
    /// `redispatch`: the last one on another backend (`option redispatch`).
    pub fn new(retries: usize, redispatch: bool) -> Self {
        RetryLayer {
            retries,
            redispatch,
            policy: Arc::new(|_| true),
        }
    }

    /// Retries only errors for which `policy` returns true (the backend service's error, boxed).
    pub fn retry_if(
        mut self,
        policy: impl Fn(&tower::BoxError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.policy = Arc::new(policy);
        self
    }
}

impl<B> Layer<B> for RetryLayer {
    type Service = Retry<B>;

    fn layer(&self, inner: B) -> Retry<B> {
        Retry {
            inner,
            config: self.clone(),
        }
    }
}
