//! What the clones of one [`Balance`](super::Balance) share: the discover stream (polled by
//! whichever clone gets to it), the master copies of the backend services, and the wakers of
//! the clones waiting for a membership change.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Wake, Waker};

use tower::discover::Discover;

use crate::{Algorithm, BackendSet};

/// `S::clone`, kept as a plain function so that only the `Clone` impl of `Balance` needs
/// `S: Clone`.
pub(crate) type Cloner<S> = fn(&S) -> S;

/// The state every clone of a `Balance` points to.
pub(crate) struct Shared<A: Algorithm, D: Discover, X> {
    pub(crate) set: Arc<BackendSet<D::Key, A>>,
    pub(crate) key_of: X,
    pub(crate) discovery: Mutex<Discovery<D>>,
    /// Bumped by every membership change; a clone whose copy is older resyncs from `master`.
    pub(crate) version: AtomicU64,
    /// How to copy a service: set by the first clone of the balancer (which proves the
    /// services `Clone`); until then there is one handle and no master copies are kept.
    pub(crate) cloner: OnceLock<Cloner<D::Service>>,
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) waker: Waker,
}

/// The discover stream and the services it gave, as of `Shared::version`.
pub(crate) struct Discovery<D: Discover> {
    pub(crate) discover: D,
    pub(crate) done: bool,
    /// Every member's service (kept once the balancer has been cloned).
    pub(crate) master: HashMap<D::Key, D::Service>,
}

impl<A: Algorithm, D: Discover, X> Shared<A, D, X>
where
    D::Key: Eq + Hash,
{
    pub(crate) fn new(discover: D, set: Arc<BackendSet<D::Key, A>>, key_of: X) -> Self {
        let waiters = Arc::new(Waiters::default());
        Shared {
            set,
            key_of,
            discovery: Mutex::new(Discovery {
                discover,
                done: false,
                master: HashMap::new(),
            }),
            version: AtomicU64::new(0),
            cloner: OnceLock::new(),
            waker: Waker::from(waiters.clone()),
            waiters,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Discovery<D>> {
        // A panic while holding the lock (in the discover stream or a service's clone) leaves
        // at worst a membership change half applied, which the next change repairs.
        self.discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// The clones waiting for a membership change: the discover stream is polled with one waker
/// that wakes them all, so the clone that polled last does not take the wake-up from the others.
#[derive(Debug, Default)]
pub(crate) struct Waiters(Mutex<Vec<Waker>>);

/// Past this many waiting tasks the list is woken and emptied (a spurious wake-up is harmless;
/// tasks that gave up waiting would otherwise pile up until the next membership change).
const MAX_WAITERS: usize = 1024;

impl Waiters {
    fn list(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register(&self, waker: &Waker) {
        let mut list = self.list();
        if list.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if list.len() >= MAX_WAITERS {
            list.drain(..).for_each(Waker::wake);
        }
        list.push(waker.clone());
    }

    pub(crate) fn deregister(&self, waker: &Waker) {
        self.list().retain(|w| !w.will_wake(waker));
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let woken = std::mem::take(&mut *self.list());
        woken.into_iter().for_each(Waker::wake);
    }
}
