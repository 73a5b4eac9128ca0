//! [`Gauge`]: a count of slots taken, bounded by a `maxconn`, with its high-water mark.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many slots are taken now (requests or connections on a backend, requests queued), and
/// the most taken at once (HAProxy's `scur`/`smax`, `qcur`/`qmax`). Taking a slot against a
/// limit ([`try_enter`](Self::try_enter)) is one compare-and-swap, so concurrent takers never
/// overshoot a backend's `maxconn`.
///
/// ```
/// use lb_core::maxconn::Gauge;
///
/// let on_web1 = Gauge::default();
/// assert!(on_web1.try_enter(2) && on_web1.try_enter(2));
/// assert!(!on_web1.try_enter(2), "maxconn 2 reached");
/// on_web1.leave();
/// assert_eq!((on_web1.now(), on_web1.max()), (1, 2));
/// ```
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    /// Takes a slot, whatever the count (and raises the mark).
    pub fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.max.fetch_max(now, Ordering::Relaxed);
    }

    /// Gives a slot back.
    pub fn leave(&self) {
        self.now.fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes a slot if fewer than `limit` are taken (and raises the mark); false at the limit.
    pub fn try_enter(&self, limit: usize) -> bool {
        match self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            }) {
            Ok(before) => {
                self.max.fetch_max(before + 1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Slots taken now.
    pub fn now(&self) -> usize {
        self.now.load(Ordering::Relaxed)
    }

    /// The most taken at once so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }
}
