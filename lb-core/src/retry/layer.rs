//! [`RetryLayer`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::{Attempts, Retry};

/// Which errors may be retried.
pub(crate) type Policy = Arc<dyn Fn(&tower::BoxError) -> bool + Send + Sync>;

/// Adds `retries` (and `redispatch`) to a [`Balance`](crate::Balance).
#[derive(Clone)]
pub struct RetryLayer {
    pub(crate) retries: usize,
    pub(crate) redispatch: bool,
    pub(crate) delay: Duration,
    pub(crate) policy: Policy,
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("retries", &self.retries)
            .field("redispatch", &self.redispatch)
            .field("delay", &self.delay)
            .finish()
    }
}

impl RetryLayer {
    /// `retries` more attempts after a failure (HAProxy `retries`, default 3 there);
    /// `redispatch`: the last one on another backend (`option redispatch`). No delay between
    /// attempts (see [`delay`](Self::delay)); every error retried (see
    /// [`retry_if`](Self::retry_if)).
    #[must_use]
    pub fn new(retries: usize, redispatch: bool) -> Self {
        RetryLayer {
            retries,
            redispatch,
            delay: Duration::ZERO,
            policy: Arc::new(|_| true),
        }
    }

    /// Waits `delay` before a retry on the same backend when `redispatch` is off (HAProxy's
    /// turn-around timer, `min(timeout connect, 1s)`); default zero.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The retries of one request, to be asked where each goes.
    #[must_use]
    pub fn attempts(&self) -> Attempts {
        Attempts::new(self.retries, self.redispatch, self.delay)
    }

    /// `retries`, as given.
    pub fn retries(&self) -> usize {
        self.retries
    }

    /// Whether the last retry goes to another backend.
    pub fn redispatch(&self) -> bool {
        self.redispatch
    }

    /// Retries only errors for which `policy` returns true (the backend service's error, boxed).
    #[must_use]
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
