//! [`Retry`].

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::discover::Discover;
use tower::{Service, ServiceExt};

use super::{Next, RetryLayer};
use crate::Algorithm;
use crate::InFlight;
use crate::balance::{Balance, BalanceError, HashKeyOf, TrackCompletion};

/// A [`Balance`] whose failed requests are retried (see the [module](super) docs). Cloning it
/// clones the balancer handle (see [`Balance`]'s sharing).
#[derive(Clone, Debug)]
pub struct Retry<B> {
    pub(crate) inner: B,
    pub(crate) config: RetryLayer,
}

impl<B> Retry<B> {
    /// The balancer inside.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

/// The response future of [`Retry`].
pub type RetryFuture<T> = Pin<Box<dyn Future<Output = Result<T, BalanceError>> + Send>>;

impl<A, D, Req, X, C> Service<Req> for Retry<Balance<A, D, Req, X, C>>
where
    A: Algorithm,
    D: Discover + Unpin,
    D::Key: Clone + Eq + Hash + fmt::Display + Send + Sync + 'static,
    D::Error: Into<tower::BoxError>,
    D::Service: Service<Req> + Clone + Send + 'static,
    <D::Service as Service<Req>>::Future: Send,
    <D::Service as Service<Req>>::Error: Into<tower::BoxError>,
    <D::Service as Service<Req>>::Response: Send,
    X: HashKeyOf<Req>,
    Req: Clone + Send + 'static,
    C: TrackCompletion<<D::Service as Service<Req>>::Response> + Send + 'static,
    C::Output: Send,
{
    type Response = C::Output;
    type Error = BalanceError;
    type Future = RetryFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BalanceError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let balance = &mut self.inner;
        let (primary, in_flight) = match balance.pick_for(&request, None) {
            Ok(picked) => picked,
            Err(e) => return Box::pin(async move { Err(e.into()) }),
        };
        // The redispatch target is chosen now, while the balancer is at hand; it is only
        // counted in flight if it is used.
        let fallback = if self.config.redispatch && self.config.retries > 0 {
            balance
                .pick_for(&request, Some(&primary))
                .ok()
                .and_then(|(key, guard)| {
                    drop(guard);
                    balance.service_clone(&key).map(|svc| (key, svc))
                })
        } else {
            None
        };
        let again = (self.config.retries > 0)
            .then(|| balance.service_clone(&primary))
            .flatten();
        let set = balance.backends().clone();
        let Some(service) = balance.take_turn(&primary) else {
            return Box::pin(async {
                Err(BalanceError::Discover(
                    "picked backend has no service".into(),
                ))
            });
        };
        let first = service.call(request.clone());
        let config = self.config.clone();
        let completion = balance.completion().clone();
        Box::pin(async move {
            let failed = |key: &D::Key, e: tower::BoxError| BalanceError::Backend {
                backend: key.to_string(),
                source: e,
            };
            let mut error = match first.await {
                Ok(response) => return Ok(completion.track_completion(in_flight, response)),
                Err(e) => {
                    drop(in_flight);
                    e.into()
                }
            };
            let mut attempts = config.attempts();
            let mut last = &primary;
            while let Some(next) = attempts.next() {
                if !(config.policy)(&error) {
                    break;
                }
                let (key, service, after) = match (next, &fallback, &again) {
                    (Next::Redispatch, Some((key, svc)), _) => (key, svc.clone(), None),
                    (Next::Same { after }, _, Some(svc)) => (&primary, svc.clone(), Some(after)),
                    // No other backend to redispatch to: the last retry stays.
                    (Next::Redispatch, None, Some(svc)) => (&primary, svc.clone(), None),
                    _ => break,
                };
                if let Some(after) = after.filter(|after| !after.is_zero()) {
                    tokio::time::sleep(after).await;
                }
                last = key;
                let snapshot = set.snapshot();
                let guard = snapshot.get(key).map(|b| snapshot.start(b));
                match service.oneshot(request.clone()).await {
                    Ok(response) => {
                        // A backend that left the set meanwhile is counted nowhere.
                        let guard = guard.unwrap_or_else(InFlight::detached);
                        return Ok(completion.track_completion(guard, response));
                    }
                    Err(e) => error = e.into(),
                }
            }
            Err(failed(last, error))
        })
    }
}
