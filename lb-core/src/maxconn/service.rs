//! [`MaxConn`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

use super::{MaxConnError, MaxConnLayer};

/// A backend service limited to `maxconn` concurrent requests, with a bounded FIFO queue.
#[derive(Debug, Clone)]
pub struct MaxConn<S> {
    inner: S,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    config: MaxConnLayer,
}

impl<S> MaxConn<S> {
    /// Wraps `inner` (see [`MaxConnLayer::new`]).
    pub fn new(inner: S, config: MaxConnLayer) -> Self {
        MaxConn {
            inner,
            slots: Arc::new(Semaphore::new(config.maxconn)),
            waiting: Arc::new(AtomicUsize::new(0)),
            config,
        }
    }

    /// Requests running now.
    pub fn active(&self) -> usize {
        self.config.maxconn - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
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
        let run = |permit| async move {
            let result = inner
                .oneshot(request)
                .await
                .map_err(|e| MaxConnError::Inner(e.into()));
            drop(permit);
            result
        };
        // A free slot and nobody waiting: no queue (FIFO: a newcomer never jumps the queue).
        if self.waiting.load(Ordering::Relaxed) == 0
            && let Ok(permit) = self.slots.clone().try_acquire_owned()
        {
            return Box::pin(run(permit));
        }
        let queue = self.config.queue;
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= queue {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Box::pin(async move { Err(MaxConnError::QueueFull { queue }) });
        }
        let slots = self.slots.clone();
        let waiting = Leave(self.waiting.clone());
        let after = self.config.timeout;
        Box::pin(async move {
            let permit = tokio::time::timeout(after, slots.acquire_owned()).await;
            drop(waiting);
            match permit {
                Ok(Ok(permit)) => run(permit).await,
                // The semaphore is never closed; treat it like a timeout all the same.
                Ok(Err(_)) | Err(_) => Err(MaxConnError::QueueTimeout { after }),
            }
        })
    }
}

/// Leaves the queue when dropped (also when the caller gives up on the request).
struct Leave(Arc<AtomicUsize>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
