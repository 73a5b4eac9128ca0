//! [`Queue`]: where requests wait while every backend they may use is at its `maxconn`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Gauge, QueueError};

/// What one look for a slot found (the closure given to [`Queue::wait_for`]).
#[derive(Debug)]
pub enum Attempt<T> {
    /// A slot, taken.
    Taken(T),
    /// Every candidate is at its `maxconn`: wait for a slot to be given back.
    Full,
}

/// The requests waiting for a slot: HAProxy's queue, bounded by `maxqueue` (`bound`) and
/// `timeout queue` (`timeout`).
///
/// A request that found every candidate full waits here; each slot given back
/// ([`release`](Self::release)) wakes the waiters, which look again in the order they were
/// woken, so the first to arrive is first served. A request arriving while others wait
/// should queue behind them ([`waiting`](Self::waiting) is above 0) rather than take a slot
/// freed for them. Waiting costs nothing on the hot path: `release` is one atomic load while
/// nobody waits.
///
/// This is the one implementation of `maxconn` queueing in lb-core: [`MaxConn`](super::MaxConn)
/// (a tower layer per backend) and the proxy's server slots (`lb_core::proxy`, feature `proxy`)
/// both wait here.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lb_core::maxconn::{Attempt, Gauge, Queue, QueueError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let slots = Arc::new(Gauge::default()); // one backend, maxconn 1
/// let queue = Arc::new(Queue::new(10, Duration::from_secs(5)));
/// assert!(slots.try_enter(1));
/// let waiter = {
///     let (slots, queue) = (slots.clone(), queue.clone());
///     tokio::spawn(async move {
///         let take = || {
///             Ok::<_, QueueError<()>>(if slots.try_enter(1) { Attempt::Taken(()) } else { Attempt::Full })
///         };
///         queue.wait_for(take).await
///     })
/// };
/// tokio::task::yield_now().await;
/// assert_eq!(queue.waiting(), 1);
/// slots.leave(); // the slot is given back...
/// queue.release(); // ...and the queue told
/// waiter.await.unwrap().unwrap();
/// assert_eq!((queue.waiting(), slots.now()), (0, 1));
/// # }
/// ```
#[derive(Debug)]
pub struct Queue {
    /// Signalled when a slot is given back while `waiting` is above 0.
    freed: Notify,
    /// Requests between "found every candidate full" and "got a slot or gave up".
    waiting: AtomicUsize,
    queued: Gauge,
    bound: usize,
    timeout: Duration,
}

impl Queue {
    /// A queue of at most `bound` requests (HAProxy `maxqueue`; `usize::MAX`: no bound), each
    /// waiting at most `timeout` (`timeout queue`).
    #[must_use]
    pub fn new(bound: usize, timeout: Duration) -> Self {
        Queue {
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            queued: Gauge::default(),
            bound,
            timeout,
        }
    }

    /// How long a request may wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Requests waiting now and the most at once so far (`qcur`, `qmax`).
    pub fn queued(&self) -> &Gauge {
        &self.queued
    }

    /// A slot was given back: wakes the waiters, if any. Call it after the slot's count went
    /// down (SeqCst on both sides: either the waiter sees the slot free or this sees the
    /// waiter).
    pub fn release(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }

    /// Waits for a slot: `take` looks for one (on the backends the request may use) at once
    /// and again each time one is given back, until it finds one, fails, or `timeout` passes.
    ///
    /// Fails with [`QueueError::Full`] when `bound` requests wait already,
    /// [`QueueError::Timeout`] after `timeout`, or with `take`'s own error (e.g. no backend is
    /// available any more). Dropping the future leaves the queue.
    pub async fn wait_for<T, E>(
        &self,
        mut take: impl FnMut() -> Result<Attempt<T>, QueueError<E>>,
    ) -> Result<T, QueueError<E>> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.bound {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Full { queue: self.bound });
        }
        self.queued.enter();
        let _leave = Leave(self);
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a slot freed in between still wakes us.
            freed.as_mut().enable();
            if let Attempt::Taken(slot) = take()? {
                return Ok(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(QueueError::Timeout {
                    after: self.timeout,
                });
            }
        }
    }
}

/// Leaves the queue when dropped (also when the caller gives up on the request).
struct Leave<'a>(&'a Queue);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.queued.leave();
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
