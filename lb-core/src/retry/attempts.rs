//! [`Attempts`]: how many retries a request has left and where each goes.

use std::time::Duration;

/// Where the next attempt of a failed request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// To the same backend again (HAProxy retries the server it chose), after `after`: the
    /// turn-around delay, zero when `redispatch` is on (HAProxy waits only when the retry
    /// has to go to the same server; with redispatch it retries at once).
    Same {
        /// How long to wait first (the caller may skip it when no connection was tried,
        /// e.g. a request that failed on an established connection).
        after: Duration,
    },
    /// To another backend, picked by the same algorithm with the failed one excluded (`option
    /// redispatch`, on the last retry); to the same one when no other is available.
    Redispatch,
}

/// The retries one request has left (HAProxy `retries`, `option redispatch` and the
/// turn-around timer), from [`RetryLayer::attempts`](super::RetryLayer::attempts).
///
/// This is the one implementation of retries and redispatch in lb-core: the [`Retry`](super::Retry)
/// layer and the proxy (`lb_core::proxy`, feature `proxy`) both ask it where each retry goes.
///
/// ```
/// use std::time::Duration;
/// use lb_core::RetryLayer;
/// use lb_core::retry::Next;
///
/// // retries 3 + option redispatch: twice the same server, then another one.
/// let mut attempts = RetryLayer::new(3, true).attempts();
/// let same = Next::Same { after: Duration::ZERO };
/// assert_eq!([attempts.next(), attempts.next()], [Some(same), Some(same)]);
/// assert_eq!(attempts.next(), Some(Next::Redispatch));
/// assert_eq!(attempts.next(), None);
/// // Without redispatch, each retry waits the turn-around delay first.
/// let mut attempts = RetryLayer::new(1, false).delay(Duration::from_secs(1)).attempts();
/// assert_eq!(attempts.next(), Some(Next::Same { after: Duration::from_secs(1) }));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Attempts {
    left: usize,
    redispatch: bool,
    delay: Duration,
}

impl Attempts {
    pub(crate) fn new(retries: usize, redispatch: bool, delay: Duration) -> Self {
        Attempts {
            left: retries,
            redispatch,
            delay,
        }
    }

    /// Where the next retry goes, `None` when none is left (the request fails: a proxy
    /// answers 502 or closes the client).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Next> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(if self.left == 0 && self.redispatch {
            Next::Redispatch
        } else if self.redispatch {
            Next::Same {
                after: Duration::ZERO,
            }
        } else {
            Next::Same { after: self.delay }
        })
    }

    /// Retries left.
    pub fn left(&self) -> usize {
        self.left
    }
}
