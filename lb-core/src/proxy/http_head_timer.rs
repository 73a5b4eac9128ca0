//! The `timeouts.http_request` of an HTTP/1 client connection (HAProxy `timeout http-request`):
//! a request head must arrive within it, counted from the connection's start or from the end
//! of the previous response (so it is also the keep-alive idle timeout).
//!
//! hyper's own `header_read_timeout` allocates and arms a timer for every request head. This
//! one stamps two instants per request instead ([`HeadClock::head_received`] when the head has
//! been parsed, [`HeadClock::response_done`] when the response body ends) and one timer per
//! connection ([`expired`]) sleeps until the deadline and, when it finds a request in progress
//! or a newer stamp, sleeps again: one timer per timeout period, not per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// "A request is in progress": no head is awaited.
const IN_REQUEST: u64 = u64::MAX;

/// Since when a connection waits for a request head, if it does.
#[derive(Debug)]
pub(crate) struct HeadClock {
    start: Instant,
    /// Milliseconds since `start` at which the wait began, or [`IN_REQUEST`].
    waiting_since_ms: AtomicU64,
}

impl HeadClock {
    /// A clock for a connection that starts now, waiting for its first head.
    pub(crate) fn new() -> Self {
        HeadClock {
            start: Instant::now(),
            waiting_since_ms: AtomicU64::new(0),
        }
    }

    /// A request head arrived: no head is awaited until its response ends.
    pub(crate) fn head_received(&self) {
        self.waiting_since_ms.store(IN_REQUEST, Ordering::Relaxed);
    }

    /// The response ended: the next head is awaited from now.
    pub(crate) fn response_done(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(IN_REQUEST - 1);
        self.waiting_since_ms.store(ms, Ordering::Relaxed);
    }

    /// Since when a head is awaited (`None` while a request is in progress).
    fn waiting_since(&self) -> Option<Instant> {
        match self.waiting_since_ms.load(Ordering::Relaxed) {
            IN_REQUEST => None,
            ms => Some(self.start + Duration::from_millis(ms)),
        }
    }
}

/// Returns once a head has been awaited for `timeout`.
pub(crate) async fn expired(clock: &HeadClock, timeout: Duration) {
    loop {
        let deadline = match clock.waiting_since() {
            Some(since) => since + timeout,
            // A request in progress: look again a timeout later.
            None => Instant::now() + timeout,
        };
        if deadline <= Instant::now() {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
        if let Some(since) = clock.waiting_since()
            && since + timeout <= Instant::now()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_expires_only_while_a_head_is_awaited() {
        let clock = HeadClock::new();
        let timeout = Duration::from_millis(100);
        // A request from the start through 250 ms, then its response ends.
        clock.head_received();
        let started = Instant::now();
        let watch = expired(&clock, timeout);
        tokio::pin!(watch);
        let in_request = tokio::time::timeout(Duration::from_millis(250), watch.as_mut()).await;
        assert!(in_request.is_err(), "no expiry during a request");
        clock.response_done();
        watch.await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(340) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_expires_after_the_timeout() {
        let clock = HeadClock::new();
        let started = Instant::now();
        expired(&clock, Duration::from_millis(50)).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(49) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }
}
