//! [`Balance`] itself.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};
use std::task::{Context, Poll};

use tower::Service;
use tower::discover::{Change, Discover};

use crate::balance::shared::{Discovery, Shared};
use crate::balance::{
    BalanceError, CompleteOnResponse, HashKeyOf, NoKey, ResponseFuture, TrackCompletion,
};
use crate::{Algorithm, BackendSet, PickContext};

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
///
/// # Sharing between tasks
///
/// When the backend services are `Clone` (HTTP clients, `service_fn`s, tower's
/// `BoxCloneService`...), so is `Balance`, and a clone is a cheap handle to the same balancer:
/// one backend set (loads, health, weights, algorithm state), one discover stream. Give each
/// task its own clone; no `tower::buffer::Buffer` is needed. Each clone holds its own clones of
/// the backend services, so `poll_ready` and `call` on one clone follow tower's contract without
/// reference to the others (a backend that is ready for one clone was made ready by that
/// clone); a clone is `Send` and `Sync` when the discover stream, the keys, the services and
/// the hash-key extractor are. Whichever clone polls next applies the discover stream's changes
/// to the set; the others copy the new membership before their next pick, and a clone waiting
/// in `poll_ready` is woken by a membership change whoever polled it.
///
/// ```
/// use lb_core::{Balance, LeastConnections};
/// use tower::{Service, ServiceExt, discover::ServiceList};
///
/// # #[tokio::main]
/// # async fn main() {
/// let backends = ["a", "b", "c"].map(|name| tower::service_fn(move |_: ()| async move {
///     Ok::<_, std::convert::Infallible>(name)
/// }));
/// let balance = Balance::new(ServiceList::new(backends), LeastConnections::new());
/// let tasks: Vec<_> = (0..4)
///     .map(|_| {
///         let mut balance = balance.clone();
///         tokio::spawn(async move { balance.ready().await?.call(()).await })
///     })
///     .collect();
/// for task in tasks {
///     assert!(task.await.unwrap().is_ok());
/// }
/// # }
/// ```
pub struct Balance<A, D, Req, X = NoKey, C = CompleteOnResponse>
where
    A: Algorithm,
    D: Discover,
{
    shared: Arc<Shared<A, D, X>>,
    /// The membership version `services` is a copy of.
    version: u64,
    /// This handle's own backend services.
    services: HashMap<D::Key, D::Service>,
    /// Backends not known to be ready (polled again in `poll_ready`).
    not_ready: Vec<D::Key>,
    key_buf: Vec<u8>,
    exclude_buf: Vec<usize>,
    completion: C,
    _request: PhantomData<fn(Req)>,
}

impl<A, D, Req, X, C> fmt::Debug for Balance<A, D, Req, X, C>
where
    A: Algorithm + fmt::Debug,
    D: Discover,
    D::Key: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("set", &self.shared.set)
            .field("not_ready", &self.not_ready)
            .finish()
    }
}

impl<A, D, Req, X, C> Clone for Balance<A, D, Req, X, C>
where
    A: Algorithm,
    D: Discover,
    D::Key: Clone + Eq + Hash,
    D::Service: Clone,
    C: Clone,
{
    /// Another handle to the same balancer, with its own clones of the backend services (it
    /// must be polled ready before its first call, like any tower service).
    fn clone(&self) -> Self {
        let mut discovery = self.shared.lock();
        if self.shared.cloner.get().is_none() {
            // Before the first clone this is the only handle: its services are the membership.
            discovery.master = self.services.clone();
            let _ = self.shared.cloner.set(<D::Service as Clone>::clone);
        }
        let services = discovery.master.clone();
        Balance {
            shared: self.shared.clone(),
            version: self.shared.version(),
            not_ready: services.keys().cloned().collect(),
            services,
            key_buf: Vec::new(),
            exclude_buf: Vec::new(),
            completion: self.completion.clone(),
            _request: PhantomData,
        }
    }
}

impl<A, D, Req> Balance<A, D, Req, NoKey>
where
    A: Algorithm,
    D: Discover,
    D::Key: Clone + Eq + Hash + fmt::Display,
{
    /// Balances over `discover`'s services with `algorithm`; requests carry no hash key, and
    /// a request counts in flight until its response arrives. For HTTP services, whose
    /// responses stream a body after their head, [`Balance::http`] counts it until the body
    /// ends.
    pub fn new(discover: D, algorithm: A) -> Self {
        Balance::with_set(discover, Arc::new(BackendSet::new(algorithm)), NoKey)
    }

    /// [`Balance::new`] for HTTP services (feature `http`): a request counts in flight until
    /// its response body ends ([`CompleteOnBodyEnd`](crate::balance::CompleteOnBodyEnd)), so
    /// a backend streaming slow bodies looks busy to least-connections and p2c, as in lb-core's
    /// own proxy. The responses' bodies are wrapped in
    /// [`InFlightBody`](crate::balance::InFlightBody).
    #[cfg(feature = "http")]
    pub fn http(
        discover: D,
        algorithm: A,
    ) -> Balance<A, D, Req, NoKey, crate::balance::CompleteOnBodyEnd> {
        Balance::new(discover, algorithm).complete_on(crate::balance::CompleteOnBodyEnd)
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
            shared: Arc::new(Shared::new(discover, set, key_of)),
            version: 0,
            services: HashMap::new(),
            not_ready: Vec::new(),
            key_buf: Vec::new(),
            exclude_buf: Vec::new(),
            completion: CompleteOnResponse,
            _request: PhantomData,
        }
    }
}

impl<A, D, Req, X, C> Balance<A, D, Req, X, C>
where
    A: Algorithm,
    D: Discover,
    D::Key: Clone + Eq + Hash + fmt::Display,
{
    /// Decides with `completion` when a request stops counting in flight (default
    /// [`CompleteOnResponse`]: when its response future resolves). For HTTP services whose
    /// bodies stream, `complete_on(CompleteOnBodyEnd)` (feature `http`) counts each request
    /// until its response body ends; responses then carry an `InFlightBody`.
    pub fn complete_on<C2>(self, completion: C2) -> Balance<A, D, Req, X, C2> {
        Balance {
            shared: self.shared,
            version: self.version,
            services: self.services,
            not_ready: self.not_ready,
            key_buf: self.key_buf,
            exclude_buf: self.exclude_buf,
            completion,
            _request: PhantomData,
        }
    }

    /// The [`TrackCompletion`] in use.
    pub(crate) fn completion(&self) -> &C {
        &self.completion
    }

    /// The backend set: change weights, health, admin state from anywhere (a backend-state
    /// setter for health checks and admin APIs).
    pub fn backends(&self) -> &Arc<BackendSet<D::Key, A>> {
        &self.shared.set
    }

    /// How many backend services this handle holds (after its last `poll_ready`).
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
        let has_key = self.shared.key_of.hash_key(request, &mut self.key_buf);
        let set = &self.shared.set;
        let snapshot = set.guard();
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
        let backend = snapshot.pick(set.algorithm(), &context)?;
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

    /// Copies the membership from the master copies if another clone changed it.
    fn resync(&mut self, discovery: &Discovery<D>) {
        let version = self.shared.version();
        if version == self.version {
            return;
        }
        if let Some(clone) = self.shared.cloner.get() {
            self.services = discovery
                .master
                .iter()
                .map(|(k, s)| (k.clone(), clone(s)))
                .collect();
            self.not_ready = self.services.keys().cloned().collect();
        }
        self.version = version;
    }

    /// Applies one change to the set, this handle and the master copies (under the lock).
    fn apply(&mut self, discovery: &mut Discovery<D>, change: Change<D::Key, D::Service>) {
        let set = &self.shared.set;
        match change {
            Change::Insert(key, service) => {
                if set.snapshot().get(&key).is_none() {
                    // Cannot be a duplicate: checked just above, under the discovery lock.
                    let _ = set.insert(key.clone(), 1);
                }
                if let Some(clone) = self.shared.cloner.get() {
                    discovery.master.insert(key.clone(), clone(&service));
                }
                self.services.insert(key.clone(), service);
                if !self.not_ready.contains(&key) {
                    self.not_ready.push(key);
                }
            }
            Change::Remove(key) => {
                let _ = set.remove(&key);
                discovery.master.remove(&key);
                self.services.remove(&key);
                self.not_ready.retain(|k| k != &key);
            }
        }
        self.version = self.shared.version.fetch_add(1, Ordering::AcqRel) + 1;
    }

    /// A backend whose service failed: out of the set and of every clone.
    fn drop_failed(&mut self, key: &D::Key) {
        let shared = Arc::clone(&self.shared);
        let mut discovery = shared.lock();
        self.resync(&discovery);
        self.apply(&mut discovery, Change::Remove(key.clone()));
    }

    fn poll_discover(&mut self, cx: &mut Context<'_>) -> Result<(), BalanceError>
    where
        D: Unpin,
        D::Error: Into<tower::BoxError>,
    {
        let shared = Arc::clone(&self.shared);
        shared.waiters.register(cx.waker());
        // Another clone polling the stream right now applies what it has; this one waits for
        // it (a poll of the stream is short) and copies it. Going on without it would read a
        // membership the other clone is still filling: an empty one, at the start.
        let mut discovery = match shared.discovery.try_lock() {
            Ok(d) => d,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => shared.lock(),
        };
        self.resync(&discovery);
        let mut wake_all = Context::from_waker(&shared.waker);
        while !discovery.done {
            match Pin::new(&mut discovery.discover).poll_discover(&mut wake_all) {
                Poll::Ready(Some(Ok(change))) => self.apply(&mut discovery, change),
                Poll::Ready(Some(Err(e))) => return Err(BalanceError::Discover(e.into())),
                // The stream ended: the membership is final.
                Poll::Ready(None) => discovery.done = true,
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}

impl<A, D, Req, X, C> Service<Req> for Balance<A, D, Req, X, C>
where
    A: Algorithm,
    D: Discover + Unpin,
    D::Key: Clone + Eq + Hash + fmt::Display,
    D::Error: Into<tower::BoxError>,
    D::Service: Service<Req>,
    <D::Service as Service<Req>>::Error: Into<tower::BoxError>,
    X: HashKeyOf<Req>,
    C: TrackCompletion<<D::Service as Service<Req>>::Response>,
{
    type Response = C::Output;
    type Error = BalanceError;
    type Future = ResponseFuture<<D::Service as Service<Req>>::Future, D::Key, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BalanceError>> {
        self.poll_discover(cx)?;
        self.shared.set.tick();
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
                    self.drop_failed(&key);
                }
                Poll::Pending => i += 1,
            }
        }
        let snapshot = self.shared.set.guard();
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
            self.shared.waiters.deregister(cx.waker());
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
        ResponseFuture::called(future, key, in_flight, self.completion.clone())
    }
}
