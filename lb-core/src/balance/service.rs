//! [`Balance`] itself.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;
use tower::discover::{Change, Discover};

use crate::balance::{BalanceError, HashKeyOf, NoKey, ResponseFuture};
use crate::{Algorithm, BackendSet, Context as PickContext};

/// Spreads requests over the services of a `Discover` stream with algorithm `A`.
///
/// ```
/// use lb_core::{Balance, RoundRobin};
/// use tower::{Service, ServiceExt, discover::ServiceList};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let backends = ["a", "b", "c"].map(|name| tower::service_fn(move |_: ()| async move {
///     Ok::<_, std::convert::Infallible>(name)
/// }));
/// let mut balance = Balance::new(ServiceList::new(backends), RoundRobin);
/// let mut seen = Vec::new();
/// for _ in 0..6 {
///     seen.push(balance.ready().await.unwrap().call(()).await.unwrap());
/// }
/// assert_eq!(seen, ["a", "b", "c", "a", "b", "c"]);
/// # }
/// ```
pub struct Balance<A, D, Req, X = NoKey>
where
    A: Algorithm,
    D: Discover,
{
    discover: D,
    discover_done: bool,
    set: Arc<BackendSet<D::Key, A>>,
    services: HashMap<D::Key, D::Service>,
    /// Backends not known to be ready (polled again in `poll_ready`).
    not_ready: Vec<D::Key>,
    key_of: X,
    key_buf: Vec<u8>,
    exclude_buf: Vec<usize>,
    _request: PhantomData<fn(Req)>,
}

impl<A, D, Req, X> fmt::Debug for Balance<A, D, Req, X>
where
    A: Algorithm + fmt::Debug,
    D: Discover,
    D::Key: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("set", &self.set)
            .field("not_ready", &self.not_ready)
            .finish()
    }
}

impl<A, D, Req> Balance<A, D, Req, NoKey>
where
    A: Algorithm,
    D: Discover,
    D::Key: Clone + Eq + Hash + fmt::Display,
{
    /// Balances over `discover`'s services with `algorithm`; requests carry no hash key.
    pub fn new(discover: D, algorithm: A) -> Self {
        Balance::with_set(discover, Arc::new(BackendSet::new(algorithm)), NoKey)
    }
}

impl<A, D, Req, X> Balance<A, D, Req, X>
where
    A: Algorithm,
    D: Discover,
    D::Key: Clone + Eq + Hash + fmt::Display,
{
    /// Balances over `discover`'s services in `set` (which may already be shared with health
    /// checks or an admin API, and may carry slow start), hashing requests with `key_of`.
    /// Backends the stream inserts join the set with weight 1 unless already in it.
    pub fn with_set(discover: D, set: Arc<BackendSet<D::Key, A>>, key_of: X) -> Self {
        Balance {
            discover,
            discover_done: false,
            set,
            services: HashMap::new(),
            not_ready: Vec::new(),
            key_of,
            key_buf: Vec::new(),
            exclude_buf: Vec::new(),
            _request: PhantomData,
        }
    }

    /// The backend set: change weights, health, admin state from anywhere (a backend-state
    /// setter for health checks and admin APIs).
    pub fn backends(&self) -> &Arc<BackendSet<D::Key, A>> {
        &self.set
    }

    /// How many backend services the balancer holds.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Picks the backend for `request`, skipping unready backends and `avoid`; counts it in
    /// flight.
    pub(crate) fn pick_for(
        &mut self,
        request: &Req,
        avoid: Option<&D::Key>,
    ) -> Result<(D::Key, crate::InFlight), crate::NoBackend>
    where
        X: HashKeyOf<Req>,
    {
        self.key_buf.clear();
        let has_key = self.key_of.hash_key(request, &mut self.key_buf);
        let snapshot = self.set.guard();
        self.exclude_buf.clear();
        for key in self.not_ready.iter().chain(avoid) {
            if let Some(slot) = snapshot.slot(key) {
                self.exclude_buf.push(slot);
            }
        }
        // Members of the set without a service here (added to the shared set by hand) cannot
        // take requests through this balancer.
        if snapshot.backends().len() != self.services.len() {
            for (slot, b) in snapshot.backends().iter().enumerate() {
                if !self.services.contains_key(b.key()) {
                    self.exclude_buf.push(slot);
                }
            }
        }
        let context = PickContext {
            key: has_key.then_some(self.key_buf.as_slice()),
            exclude: &self.exclude_buf,
        };
        let backend = snapshot.pick(self.set.algorithm(), &context)?;
        Ok((backend.key().clone(), snapshot.start(backend)))
    }

    /// The service of `key` and marks it as needing `poll_ready` again (it is about to be
    /// called).
    pub(crate) fn take_turn(&mut self, key: &D::Key) -> Option<&mut D::Service> {
        let service = self.services.get_mut(key)?;
        self.not_ready.push(key.clone());
        Some(service)
    }

    /// A clone of the service of `key`.
    pub(crate) fn service_clone(&self, key: &D::Key) -> Option<D::Service>
    where
        D::Service: Clone,
    {
        self.services.get(key).cloned()
    }

    fn apply(&mut self, change: Change<D::Key, D::Service>) {
        match change {
            Change::Insert(key, service) => {
                if self.set.snapshot().get(&key).is_none() {
                    // Cannot be a duplicate: checked just above, under our own ownership.
                    let _ = self.set.insert(key.clone(), 1);
                }
                self.services.insert(key.clone(), service);
                if !self.not_ready.contains(&key) {
                    self.not_ready.push(key);
                }
            }
            Change::Remove(key) => {
                let _ = self.set.remove(&key);
                self.services.remove(&key);
                self.not_ready.retain(|k| k != &key);
            }
        }
    }

    fn poll_discover(&mut self, cx: &mut Context<'_>) -> Result<(), BalanceError>
    where
        D: Unpin,
        D::Error: Into<tower::BoxError>,
    {
        while !self.discover_done {
            match Pin::new(&mut self.discover).poll_discover(cx) {
                Poll::Ready(Some(Ok(change))) => self.apply(change),
                Poll::Ready(Some(Err(e))) => return Err(BalanceError::Discover(e.into())),
                // The stream ended: the membership is final.
                Poll::Ready(None) => self.discover_done = true,
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}

impl<A, D, Req, X> Service<Req> for Balance<A, D, Req, X>
where
    A: Algorithm,
    D: Discover + Unpin,
    D::Key: Clone + Eq + Hash + fmt::Display,
    D::Error: Into<tower::BoxError>,
    D::Service: Service<Req>,
    <D::Service as Service<Req>>::Error: Into<tower::BoxError>,
    X: HashKeyOf<Req>,
{
    type Response = <D::Service as Service<Req>>::Response;
    type Error = BalanceError;
    type Future = ResponseFuture<<D::Service as Service<Req>>::Future, D::Key>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BalanceError>> {
        self.poll_discover(cx)?;
        self.set.tick();
        let mut i = 0;
        while i < self.not_ready.len() {
            let key = &self.not_ready[i];
            let Some(service) = self.services.get_mut(key) else {
                self.not_ready.swap_remove(i);
                continue;
            };
            match service.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    self.not_ready.swap_remove(i);
                }
                Poll::Ready(Err(_)) => {
                    // A failed service is gone for good (tower's contract): drop the backend.
                    let key = self.not_ready.swap_remove(i);
                    let _ = self.set.remove(&key);
                    self.services.remove(&key);
                }
                Poll::Pending => i += 1,
            }
        }
        let snapshot = self.set.guard();
        // Usually every member has a service here: then more available members than unready
        // services means one is available and ready, without a scan.
        let ready_available = if snapshot.backends().len() == self.services.len() {
            snapshot.available() > self.not_ready.len()
                || snapshot
                    .backends()
                    .iter()
                    .any(|b| b.available() && !self.not_ready.contains(b.key()))
        } else {
            snapshot.backends().iter().any(|b| {
                b.available()
                    && self.services.contains_key(b.key())
                    && !self.not_ready.contains(b.key())
            })
        };
        if ready_available || snapshot.available() == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let (key, in_flight) = match self.pick_for(&request, None) {
            Ok(picked) => picked,
            Err(e) => return ResponseFuture::failed(e.into()),
        };
        let Some(service) = self.take_turn(&key) else {
            return ResponseFuture::failed(BalanceError::Discover(
                "picked backend has no service".into(),
            ));
        };
        let future = service.call(request);
        ResponseFuture::called(future, key, in_flight)
    }
}
