//! [`MaxConn`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use super::{Attempt, Gauge, MaxConnError, MaxConnLayer, Queue, QueueError};

/// A backend service limited to `maxconn` concurrent requests, with a bounded FIFO queue.
#[derive(Debug, Clone)]
pub struct MaxConn<S> {
    inner: S,
    shared: Arc<Limit>,
}

/// What the clones of one [`MaxConn`] share.
#[derive(Debug)]
struct Limit {
    active: Gauge,
    queue: Queue,
    maxconn: usize,
}

impl Limit {
    /// One look for a slot.
    fn take(self: &Arc<Self>) -> Attempt<Slot> {
        if self.active.try_enter(self.maxconn) {
            Attempt::Taken(Slot(self.clone()))
        } else {
            Attempt::Full
        }
    }
}

/// A slot taken, given back (and the queue told) on drop.
struct Slot(Arc<Limit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.leave();
        self.0.queue.release();
    }
}

impl<S> MaxConn<S> {
    /// Wraps `inner` (see [`MaxConnLayer::new`]).
    pub fn new(inner: S, config: MaxConnLayer) -> Self {
        MaxConn {
            inner,
            shared: Arc::new(Limit {
                active: Gauge::default(),
                queue: Queue::new(config.queue, config.timeout),
                maxconn: config.maxconn,
            }),
        }
    }

    /// Requests running now.
    pub fn active(&self) -> usize {
        self.shared.active.now()
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.shared.queue.waiting()
    }
}

/// The response future of [`MaxConn`].
pub type MaxConnFuture<T> = Pin<Box<dyn Future<Output = Result<T, MaxConnError>> + Send>>;

impl<S, Req> Service<Req> for MaxConn<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<tower::BoxError>,
    S::Response: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = MaxConnError;
    type Future = MaxConnFuture<S::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), MaxConnError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let inner = self.inner.clone();
        let run = |slot: Slot| async move {
            let result = inner
                .oneshot(request)
                .await
                .map_err(|e| MaxConnError::Inner(e.into()));
            drop(slot);
            result
        };
        // A free slot and nobody waiting: no queue (a newcomer never jumps the queue).
        if self.shared.queue.waiting() == 0
            && let Attempt::Taken(slot) = self.shared.take()
        {
            return Box::pin(run(slot));
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            let take = || Ok::<_, QueueError<Infallible>>(shared.take());
            let slot = shared.queue.wait_for(take).await?;
            run(slot).await
        })
    }
}
