//! [`HealthDiscover`]: monitored services as a `tower::discover::Discover` stream (feature
//! `discover`).
//!
//! Two ways to follow health:
//! - [`HealthDiscover::new`]: a service is inserted while its monitor says up and removed while
//!   it says down, for balancers that know nothing of health (`tower::balance::p2c::Balance`).
//!   A flap removes and re-inserts the backend, so whatever the balancer kept about it (weight,
//!   admin state, counters) starts over.
//! - [`HealthDiscover::in_place`]: every service is inserted once, and health flaps are set on
//!   a [`HealthTarget`] in place, for balancers with a backend set (`lb_core::BackendSet`): a
//!   flap keeps the backend's weight, `maxconn`, admin state and counters, and a
//!   backend that is down still counts as configured.
//!
//! Either way each monitor's current state is delivered when it is attached (not only its
//! next change).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::WatchStream;
use tower::discover::Change;

use crate::{Health, Monitor, Status};

/// Where [`HealthDiscover::in_place`] sets health: a balancer's backend set, which keeps the
/// backend (weight, `maxconn`, admin state, counters) and changes only its health:
/// `lb_core::BackendSet` is one.
pub trait HealthTarget<K>: Send + Sync {
    /// `key` is attached with `health` (its monitor's current state), just before its service
    /// is yielded: add it if it is not a member yet, then set its health.
    fn join(&self, key: &K, health: Health) {
        self.set_health(key, health);
    }

    /// `key`'s monitor changed its mind.
    fn set_health(&self, key: &K, health: Health);
}

#[cfg(feature = "discover")]
impl<K, A> HealthTarget<K> for lb_core::BackendSet<K, A>
where
    K: Clone + Eq + Hash + std::fmt::Display + Send + Sync,
    A: lb_core::Algorithm,
{
    /// Adds `key` with weight 1 unless it is a member (configure weights before or after: a
    /// member's settings are kept), then sets its health.
    fn join(&self, key: &K, health: Health) {
        if self.snapshot().get(key).is_none() {
            // Lost only to a concurrent insert of the same key, which is what we wanted.
            let _ = self.insert(key.clone(), 1);
        }
        HealthTarget::set_health(self, key, health);
    }

    fn set_health(&self, key: &K, health: Health) {
        let health = match health {
            Health::Up => lb_core::Health::Up,
            Health::Down => lb_core::Health::Down,
        };
        // A key removed from the set by hand stays out: its monitor has nothing to update.
        let _ = lb_core::BackendSet::set_health(self, key, health);
    }
}

/// Services under health monitors, as a stream of [`Change`]s.
///
/// Made with [`new`](Self::new), each service is inserted when its monitor first reports up,
/// removed when it goes down, and inserted again (a clone) when it comes back. Made with
/// [`in_place`](Self::in_place), each service is inserted once, when its monitor is attached,
/// and its health goes to the target, keeping what the balancer knows of it. A monitor taken back with
/// [`remove`](Self::remove), or dropped, removes its service. Transitions are read from each
/// monitor's `watch`, so a reader that polls late never misses the final state (a down-up flap
/// between two polls yields nothing, which is the same membership).
///
/// It implements `tower::discover::Discover` (every `TryStream` of `Change` does).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use health_check::{HealthDiscover, Monitor, MonitorConfig, Start, TcpCheck};
/// use tokio_stream::StreamExt;
/// use tower::discover::Change;
///
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = server.local_addr().unwrap();
/// let config = MonitorConfig::default().interval(Duration::from_millis(20)).start(Start::Now);
/// let monitor = Monitor::spawn(Arc::new(TcpCheck::new(addr)), config).unwrap();
///
/// let mut discover = HealthDiscover::new();
/// discover.insert("web1", addr, monitor); // the "service" here is just its address
/// match discover.next().await {
///     Some(Ok(Change::Insert(key, service))) => assert_eq!((key, service), ("web1", addr)),
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
pub struct HealthDiscover<K, S>
where
    K: Clone + Unpin,
{
    watches: StreamMap<K, WatchStream<Status>>,
    members: HashMap<K, Member<S>>,
    pending: VecDeque<Change<K, S>>,
    waker: Option<Waker>,
    target: Option<Arc<dyn HealthTarget<K>>>,
}

/// Makes the service each time its backend (re)joins.
type Make<S> = Box<dyn Fn() -> S + Send + Sync>;

struct Member<S> {
    make: Make<S>,
    inserted: bool,
    /// The last health read from its monitor (`None` before the first read).
    health: Option<Health>,
    monitor: Monitor,
}

impl<K, S> std::fmt::Debug for HealthDiscover<K, S>
where
    K: Clone + Unpin + std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<(&K, &str, bool)> = self
            .members
            .iter()
            .map(|(k, m)| (k, &**m.monitor.id(), m.inserted))
            .collect();
        f.debug_struct("HealthDiscover")
            .field("members", &members)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<K, S> Default for HealthDiscover<K, S>
where
    K: Clone + Eq + Hash + Unpin,
{
    fn default() -> Self {
        HealthDiscover::new()
    }
}

impl<K, S> HealthDiscover<K, S>
where
    K: Clone + Eq + Hash + Unpin,
{
    /// An empty set whose services are removed while down.
    pub fn new() -> Self {
        HealthDiscover {
            watches: StreamMap::new(),
            members: HashMap::new(),
            pending: VecDeque::new(),
            waker: None,
            target: None,
        }
    }

    /// An empty set whose services stay in while down: health changes are set on `target`
    /// (the balancer's `lb_core::BackendSet`), so a flap keeps the
    /// backend's weight, `maxconn`, admin state and counters. The stream yields an insertion
    /// per service when it is attached (after `target` has its current health) and a removal
    /// only when it is [`remove`](Self::remove)d or its monitor ends.
    ///
    /// ```
    /// # #[cfg(feature = "discover")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use health_check::{HealthDiscover, Monitor, MonitorConfig, Start, TcpCheck};
    /// use lb_core::{BackendSet, Balance, LeastConnections};
    /// use tower::{Service, ServiceExt};
    ///
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let addr = server.local_addr().unwrap();
    /// let config = MonitorConfig::default().interval(Duration::from_millis(20)).start(Start::Now);
    /// let monitor = Monitor::spawn(Arc::new(TcpCheck::new(addr)), config).unwrap();
    ///
    /// let set = Arc::new(BackendSet::new(LeastConnections::new()));
    /// let mut discover = HealthDiscover::in_place(set.clone());
    /// let upstream = tower::service_fn(|()| async { Ok::<_, std::convert::Infallible>("hi") });
    /// discover.insert("web1", upstream, monitor);
    /// let mut balance = Balance::with_set(discover, set.clone(), lb_core::balance::NoKey);
    /// assert_eq!(balance.ready().await.unwrap().call(()).await.unwrap(), "hi");
    /// // Its monitor's flaps change its health in `set`; its weight and the rest stay.
    /// assert_eq!(set.snapshot().backends().len(), 1);
    /// # }
    /// # #[cfg(not(feature = "discover"))]
    /// # fn main() {}
    /// ```
    pub fn in_place(target: Arc<dyn HealthTarget<K>>) -> Self {
        HealthDiscover {
            target: Some(target),
            ..HealthDiscover::new()
        }
    }

    /// Adds `service` under `key`, followed through `monitor` (which this set keeps running);
    /// each (re)join yields a clone. A service already under `key` is replaced (removed first
    /// if it was in).
    pub fn insert(&mut self, key: K, service: S, monitor: Monitor)
    where
        S: Clone + Send + Sync + 'static,
    {
        self.insert_with(key, move || service.clone(), monitor);
    }

    /// Like [`insert`](Self::insert) for services that are not `Clone`: `make` builds a fresh
    /// one each time the backend (re)joins.
    pub fn insert_with<F>(&mut self, key: K, make: F, monitor: Monitor)
    where
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.remove(&key);
        let watch = WatchStream::new(monitor.subscribe());
        self.watches.insert(key.clone(), watch);
        let member = Member {
            make: Box::new(make),
            inserted: false,
            health: None,
            monitor,
        };
        self.members.insert(key, member);
        self.wake();
    }

    /// Takes `key` out (yielding a removal if its service was in) and stops its monitor.
    pub fn remove(&mut self, key: &K) {
        self.watches.remove(key);
        if let Some(member) = self.members.remove(key)
            && member.inserted
        {
            self.pending.push_back(Change::Remove(key.clone()));
            self.wake();
        }
    }

    /// The keys whose services are in and up as far as the stream has reported.
    pub fn up(&self) -> impl Iterator<Item = &K> {
        self.members
            .iter()
            .filter(|(_, m)| m.inserted && m.health == Some(Health::Up))
            .map(|(k, _)| k)
    }

    /// How many services are monitored, up or down.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no service is monitored.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The change, if any, that `health` makes to `key`'s membership.
    fn apply(&mut self, key: K, health: Health) -> Option<Change<K, S>> {
        let member = self.members.get_mut(&key)?;
        let before = member.health.replace(health);
        if let Some(target) = &self.target {
            if member.inserted {
                if before != Some(health) {
                    target.set_health(&key, health);
                }
                return None;
            }
            // First sight of this monitor: the target has its health before the balancer
            // sees the service, so a backend attached down is never picked.
            target.join(&key, health);
            member.inserted = true;
            return Some(Change::Insert(key, (member.make)()));
        }
        match (health, member.inserted) {
            (Health::Up, false) => {
                member.inserted = true;
                Some(Change::Insert(key, (member.make)()))
            }
            (Health::Down, true) => {
                member.inserted = false;
                Some(Change::Remove(key))
            }
            _ => None,
        }
    }
}

impl<K, S> Stream for HealthDiscover<K, S>
where
    K: Clone + Eq + Hash + Unpin,
    S: Unpin,
{
    type Item = Result<Change<K, S>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(change) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            match Pin::new(&mut this.watches).poll_next(cx) {
                Poll::Ready(Some((key, status))) => {
                    if let Some(change) = this.apply(key, status.health) {
                        return Poll::Ready(Some(Ok(change)));
                    }
                }
                // A monitor's task ended (it cannot, short of a panic in a check): its
                // service is no longer followed, so it leaves. StreamMap drops ended streams;
                // find members without a watch.
                Poll::Ready(None) | Poll::Pending => {
                    let orphans: Vec<K> = this
                        .members
                        .keys()
                        .filter(|k| !this.watches.contains_key(k))
                        .cloned()
                        .collect();
                    for key in orphans {
                        this.remove(&key);
                    }
                    if !this.pending.is_empty() {
                        continue;
                    }
                    // Never ends: services can still be inserted.
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}
