//! The backend set: members with weight, admin state, health and live load, published as
//! immutable [`Snapshot`]s through an `arc-swap` pointer.
//!
//! Read-mostly by design: a pick loads the current snapshot (wait-free, no lock, no reference
//! count contention with `Guard`s) and reads per-backend atomics; an update (add, remove,
//! reweight, up/down, admin) takes a writer lock, rebuilds the snapshot and the algorithm's
//! tables off to the side and swaps the pointer. Picks never wait for updates; in-flight counts
//! live in per-backend atomics shared by every snapshot, so a rebuild loses none of them.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::algorithm::{Algorithm, Candidate, PickContext};
use crate::error::{NoBackend, UpdateError};
use crate::hash::stable_hash;

/// An operator's state for a backend (HAProxy's `set server ... state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AdminState {
    /// Takes traffic when healthy.
    #[default]
    Ready,
    /// Takes no new traffic except sticky sessions (a cookie naming it); in-flight finishes.
    Drain,
    /// Takes no traffic at all.
    Maintenance,
}

/// Up or down, as health checks (or anything else outside) decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Health {
    /// Serving.
    #[default]
    Up,
    /// Not serving.
    Down,
}

/// The live load of one backend, shared by every snapshot it appears in.
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicUsize,
    /// Peak-EWMA of latency in nanoseconds (0: no sample yet).
    ewma_ns: AtomicU64,
    /// When the EWMA was last updated, as nanoseconds since the set was created.
    ewma_at: AtomicU64,
}

impl Load {
    /// Requests (or connections) in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn in_flight_counter(&self) -> &AtomicUsize {
        &self.in_flight
    }

    #[cfg(test)]
    pub(crate) fn set_latency_for_test(&self, ns: u64) {
        self.ewma_ns.store(ns, Ordering::Relaxed);
    }

    /// The peak-EWMA latency estimate, if any request finished yet.
    pub fn latency(&self) -> Option<Duration> {
        match self.ewma_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }
}

/// Counts one request in flight on a backend until dropped.
#[derive(Debug)]
pub struct InFlight {
    load: Arc<Load>,
    /// When it started, if the algorithm wants latencies.
    started: Option<Instant>,
    epoch: Instant,
    decay: Duration,
}

impl InFlight {
    /// A guard on a load of its own, in no set (for a request on a backend that has left).
    pub(crate) fn detached() -> Self {
        let load = Arc::new(Load::default());
        load.in_flight.store(1, Ordering::Relaxed);
        InFlight {
            load,
            started: None,
            epoch: Instant::now(),
            decay: DEFAULT_EWMA_DECAY,
        }
    }

    /// Records the request's latency in the backend's peak-EWMA (tower's `PeakEwma` rule: a
    /// sample above the estimate replaces it, a lower one decays into it with time constant
    /// `decay`). Call it when the response arrived; dropping without it records nothing. Only
    /// algorithms that read latencies ([`Algorithm::uses_latency`]) pay for the clock reads.
    pub fn finish(self) {
        let Some(started) = self.started else {
            return;
        };
        let now = Instant::now();
        let sample = u64::try_from((now - started).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let at = u64::try_from((now - self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let last_at = self.load.ewma_at.swap(at, Ordering::Relaxed);
        let old = self.load.ewma_ns.load(Ordering::Relaxed);
        let new = if old == 0 || sample > old {
            sample
        } else {
            let elapsed = at.saturating_sub(last_at) as f64;
            let w = (-elapsed / self.decay.as_nanos().max(1) as f64).exp();
            (old as f64 * w + sample as f64 * (1.0 - w)) as u64
        };
        self.load.ewma_ns.store(new.max(1), Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// HAProxy's `slowstart`: a backend that comes up (or is added) starts at a fraction of its
/// weight that grows linearly to the full weight over `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowStart {
    /// How long the ramp lasts.
    pub period: Duration,
}

/// One member of a [`Snapshot`].
#[derive(Debug)]
pub struct Backend<K> {
    /// What the writer kept about it when the snapshot was built.
    member: Member<K>,
    id_hash: u64,
}

impl<K> Backend<K> {
    /// Its key.
    pub fn key(&self) -> &K {
        &self.member.key
    }

    /// Its configured weight.
    pub fn weight(&self) -> u32 {
        self.member.weight
    }

    /// Its connection limit.
    pub fn maxconn(&self) -> Option<u32> {
        self.member.maxconn
    }

    /// When its slow-start ramp began, while it is ramping.
    pub fn ramping_since(&self) -> Option<Instant> {
        self.member.ramp_from
    }

    /// Its admin state.
    pub fn admin(&self) -> AdminState {
        self.member.admin
    }

    /// Its health.
    pub fn health(&self) -> Health {
        self.member.health
    }

    /// Its live load.
    pub fn load(&self) -> &Arc<Load> {
        &self.member.load
    }

    /// Whether new traffic may go there: ready, up, weight above 0.
    pub fn available(&self) -> bool {
        self.admin() == AdminState::Ready && self.health() == Health::Up && self.weight() > 0
    }

    /// Whether a sticky session may still go there (available, or draining and up).
    pub fn sticky_available(&self) -> bool {
        self.available() || (self.admin() == AdminState::Drain && self.health() == Health::Up)
    }
}

/// An immutable view of the set: all members, the available ones as the algorithm's
/// candidates, and the algorithm's tables built for exactly these.
pub struct Snapshot<K, A: Algorithm> {
    backends: Vec<Backend<K>>,
    candidates: Vec<Candidate>,
    table: A::Table,
    by_key: HashMap<K, usize>,
    by_name: HashMap<String, usize>,
    timed: bool,
    epoch: Instant,
    decay: Duration,
}

impl<K: fmt::Debug, A: Algorithm> fmt::Debug for Snapshot<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("backends", &self.backends)
            .field("available", &self.candidates.len())
            .finish()
    }
}

impl<K, A> Snapshot<K, A>
where
    K: Clone + Eq + Hash,
    A: Algorithm,
{
    /// Every member, available or not, in insertion order.
    pub fn backends(&self) -> &[Backend<K>] {
        &self.backends
    }

    /// The member under `key`.
    pub fn get(&self, key: &K) -> Option<&Backend<K>> {
        self.by_key.get(key).map(|&i| &self.backends[i])
    }

    /// The member whose key displays as `name` (how a stickiness cookie names its server).
    pub fn get_by_name(&self, name: &str) -> Option<&Backend<K>> {
        self.by_name.get(name).map(|&i| &self.backends[i])
    }

    /// How many members may take new traffic.
    pub fn available(&self) -> usize {
        self.candidates.len()
    }

    /// Picks a backend for a request with `context` (see [`PickContext`]), skipping unavailable
    /// ones and those the context excludes.
    pub fn pick(&self, algorithm: &A, context: &PickContext<'_>) -> Result<&Backend<K>, NoBackend> {
        if self.candidates.is_empty() {
            return Err(self.none_available());
        }
        match algorithm.pick(&self.table, &self.candidates, context) {
            Some(i) => Ok(&self.backends[self.candidates[i].slot]),
            None => Err(NoBackend::AllExcluded {
                available: self.candidates.len(),
            }),
        }
    }

    /// Why no member is available, counted (each member under its first reason).
    fn none_available(&self) -> NoBackend {
        let (mut maintenance, mut drained, mut down, mut weight_zero) = (0, 0, 0, 0);
        for b in &self.backends {
            match (b.admin(), b.health()) {
                (AdminState::Maintenance, _) => maintenance += 1,
                (AdminState::Drain, _) => drained += 1,
                (AdminState::Ready, Health::Down) => down += 1,
                (AdminState::Ready, Health::Up) if b.weight() == 0 => weight_zero += 1,
                (AdminState::Ready, Health::Up) => {}
            }
        }
        NoBackend::NoneAvailable {
            members: self.backends.len(),
            maintenance,
            drained,
            down,
            weight_zero,
        }
    }

    /// Counts a request in flight on `backend` until the guard drops.
    pub fn start(&self, backend: &Backend<K>) -> InFlight {
        backend.load().in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: backend.load().clone(),
            started: self.timed.then(Instant::now),
            epoch: self.epoch,
            decay: self.decay,
        }
    }

    /// The slot (position in [`backends`](Self::backends)) of `key`.
    pub fn slot(&self, key: &K) -> Option<usize> {
        self.by_key.get(key).copied()
    }
}

/// What the writer keeps about one member.
#[derive(Debug, Clone)]
struct Member<K> {
    key: K,
    weight: u32,
    maxconn: Option<u32>,
    admin: AdminState,
    health: Health,
    ramp_from: Option<Instant>,
    load: Arc<Load>,
}

/// A set of backends picked from by algorithm `A`; share it (`Arc`) between the tasks that
/// pick and the ones that update (health checks, an admin API).
pub struct BackendSet<K, A: Algorithm> {
    algorithm: A,
    current: ArcSwap<Snapshot<K, A>>,
    members: Mutex<Vec<Member<K>>>,
    slow_start: Option<SlowStart>,
    /// Whether some member is ramping (refresh has work), and when it last rebuilt.
    ramping: AtomicBool,
    last_refresh: AtomicU64,
    epoch: Instant,
    decay: Duration,
}

/// How often slow-start ramps rebuild the snapshot, at most.
pub const SLOW_START_STEP: Duration = Duration::from_millis(100);

impl<K: fmt::Debug, A: Algorithm + fmt::Debug> fmt::Debug for BackendSet<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendSet")
            .field("algorithm", &self.algorithm)
            .field("snapshot", &*self.current.load())
            .finish()
    }
}

/// The default time constant of the peak-EWMA latency estimate (tower's default).
pub const DEFAULT_EWMA_DECAY: Duration = Duration::from_secs(10);

impl<K, A> BackendSet<K, A>
where
    K: Clone + Eq + Hash + fmt::Display,
    A: Algorithm,
{
    /// An empty set.
    pub fn new(algorithm: A) -> Self {
        let epoch = Instant::now();
        let decay = DEFAULT_EWMA_DECAY;
        let empty = build(&algorithm, &[], None, None, epoch, decay, epoch);
        BackendSet {
            algorithm,
            current: ArcSwap::from_pointee(empty),
            members: Mutex::new(Vec::new()),
            slow_start: None,
            ramping: AtomicBool::new(false),
            last_refresh: AtomicU64::new(0),
            epoch,
            decay,
        }
    }

    /// Ramps up backends that come up or join over `period` (HAProxy `slowstart`). Call
    /// [`refresh`](Self::refresh) now and then (the tower `Balance` does) so the ramp advances.
    pub fn with_slow_start(mut self, period: Duration) -> Self {
        self.slow_start = (!period.is_zero()).then_some(SlowStart { period });
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The current snapshot (wait-free).
    pub fn snapshot(&self) -> Arc<Snapshot<K, A>> {
        self.current.load_full()
    }

    /// The current snapshot without touching its reference count (for per-request use inside
    /// the crate; do not hold it across awaits).
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<Snapshot<K, A>>> {
        self.current.load()
    }

    /// Picks from the current snapshot: the backend's key and an in-flight guard.
    pub fn pick(&self, context: &PickContext<'_>) -> Result<(K, InFlight), NoBackend> {
        let snapshot = self.current.load();
        let backend = snapshot.pick(&self.algorithm, context)?;
        Ok((backend.key().clone(), snapshot.start(backend)))
    }

    /// Adds a backend (up, ready). Adding a key that is there is an error.
    pub fn insert(&self, key: K, weight: u32) -> Result<(), UpdateError> {
        let mut members = self.lock();
        if members.iter().any(|m| m.key == key) {
            return Err(UpdateError::Duplicate {
                key: key.to_string(),
            });
        }
        members.push(Member {
            key,
            weight,
            maxconn: None,
            admin: AdminState::Ready,
            health: Health::Up,
            ramp_from: self.slow_start.map(|_| Instant::now()),
            load: Arc::new(Load::default()),
        });
        if self.slow_start.is_some() {
            self.ramping.store(true, Ordering::Relaxed);
        }
        self.publish(&members);
        Ok(())
    }

    /// Removes a backend; requests in flight on it are not affected.
    pub fn remove(&self, key: &K) -> Result<(), UpdateError> {
        let mut members = self.lock();
        let before = members.len();
        members.retain(|m| &m.key != key);
        if members.len() == before {
            return Err(unknown(key));
        }
        self.publish(&members);
        Ok(())
    }

    /// Changes a backend's weight (0 takes it out of rotation, like HAProxy's `weight 0`).
    pub fn set_weight(&self, key: &K, weight: u32) -> Result<(), UpdateError> {
        self.update(key, |m| m.weight = weight)
    }

    /// Sets a backend's connection limit (HAProxy `maxconn`), read by [`First`](crate::First).
    pub fn set_maxconn(&self, key: &K, maxconn: Option<u32>) -> Result<(), UpdateError> {
        self.update(key, |m| m.maxconn = maxconn)
    }

    /// Changes a backend's admin state.
    pub fn set_admin(&self, key: &K, admin: AdminState) -> Result<(), UpdateError> {
        self.update(key, |m| m.admin = admin)
    }

    /// Changes a backend's health; coming up starts the slow-start ramp.
    pub fn set_health(&self, key: &K, health: Health) -> Result<(), UpdateError> {
        let ramp = self.slow_start.map(|_| Instant::now());
        let mut started = false;
        self.update(key, |m| {
            if m.health == Health::Down && health == Health::Up {
                m.ramp_from = ramp;
                started = ramp.is_some();
            }
            m.health = health;
        })?;
        if started {
            self.ramping.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// [`refresh`](Self::refresh) at the current time, reading the clock only when a backend
    /// is ramping.
    pub fn tick(&self) {
        if self.slow_start.is_some() && self.ramping.load(Ordering::Relaxed) {
            self.refresh(Instant::now());
        }
    }

    /// Advances slow-start ramps to `now`: rebuilds the snapshot if a backend is ramping, at
    /// most every [`SLOW_START_STEP`]. One atomic load when no backend is ramping, so it can be
    /// called per request (the tower `Balance` calls it in `poll_ready`).
    pub fn refresh(&self, now: Instant) {
        let Some(slow) = self.slow_start else {
            return;
        };
        if !self.ramping.load(Ordering::Relaxed) {
            return;
        }
        let at =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_refresh.load(Ordering::Relaxed);
        // Throttled only going forward: an earlier `now` (callers with their own clock) is
        // taken as is.
        if at >= last && at - last < SLOW_START_STEP.as_nanos() as u64 {
            return;
        }
        self.last_refresh.store(at, Ordering::Relaxed);
        let mut members = self.lock();
        let mut changed = false;
        for m in members.iter_mut() {
            if let Some(from) = m.ramp_from {
                if now.saturating_duration_since(from) >= slow.period {
                    m.ramp_from = None;
                }
                changed = true;
            }
        }
        self.ramping.store(
            members.iter().any(|m| m.ramp_from.is_some()),
            Ordering::Relaxed,
        );
        if changed {
            self.publish_at(&members, now);
        }
    }

    fn update(&self, key: &K, change: impl FnOnce(&mut Member<K>)) -> Result<(), UpdateError> {
        let mut members = self.lock();
        let member = members
            .iter_mut()
            .find(|m| &m.key == key)
            .ok_or_else(|| unknown(key))?;
        change(member);
        self.publish(&members);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Member<K>>> {
        // A panic while holding the lock cannot leave members half-updated (each update is one
        // assignment), so a poisoned lock is still consistent.
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, members: &[Member<K>]) {
        self.publish_at(members, Instant::now());
    }

    fn publish_at(&self, members: &[Member<K>], now: Instant) {
        let previous = self.current.load();
        let next = build(
            &self.algorithm,
            members,
            Some(&previous.table),
            self.slow_start,
            self.epoch,
            self.decay,
            now,
        );
        self.current.store(Arc::new(next));
    }
}

fn unknown<K: fmt::Display>(key: &K) -> UpdateError {
    UpdateError::Unknown {
        key: key.to_string(),
    }
}

/// The weight a backend counts with now: its weight, scaled by the slow-start ramp.
fn effective_weight(
    weight: u32,
    ramp_from: Option<Instant>,
    slow: Option<SlowStart>,
    now: Instant,
) -> u32 {
    match (ramp_from, slow) {
        (Some(from), Some(slow)) if weight > 0 => {
            let elapsed = now.saturating_duration_since(from).as_secs_f64();
            let fraction = (elapsed / slow.period.as_secs_f64()).min(1.0);
            // HAProxy never lets a ramping server's weight reach 0.
            ((f64::from(weight) * fraction).ceil() as u32).max(1)
        }
        _ => weight,
    }
}

fn build<K, A>(
    algorithm: &A,
    members: &[Member<K>],
    previous: Option<&A::Table>,
    slow: Option<SlowStart>,
    epoch: Instant,
    decay: Duration,
    now: Instant,
) -> Snapshot<K, A>
where
    K: Clone + Eq + Hash + fmt::Display,
    A: Algorithm,
{
    let backends: Vec<Backend<K>> = members
        .iter()
        .map(|m| Backend {
            member: m.clone(),
            id_hash: stable_hash(m.key.to_string().as_bytes(), 0),
        })
        .collect();
    let candidates: Vec<Candidate> = backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.available())
        .map(|(slot, b)| Candidate {
            slot,
            weight: effective_weight(b.weight(), b.ramping_since(), slow, now),
            configured_weight: b.weight(),
            maxconn: b.maxconn(),
            id_hash: b.id_hash,
            load: b.load().clone(),
        })
        .collect();
    let table = algorithm.build(&candidates, previous);
    let by_key = backends
        .iter()
        .enumerate()
        .map(|(i, b)| (b.key().clone(), i))
        .collect();
    let by_name = backends
        .iter()
        .enumerate()
        .map(|(i, b)| (b.key().to_string(), i))
        .collect();
    Snapshot {
        backends,
        candidates,
        table,
        by_key,
        by_name,
        timed: algorithm.uses_latency(),
        epoch,
        decay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoundRobin;

    fn weight_of(set: &BackendSet<&'static str, RoundRobin>, key: &'static str) -> u32 {
        let s = set.snapshot();
        let slot = s.slot(&key).expect("member");
        s.candidates
            .iter()
            .find(|c| c.slot == slot)
            .map_or(0, |c| c.weight)
    }

    #[test]
    fn slow_start_ramps_in_steps_and_stops_when_done() {
        let set = BackendSet::new(RoundRobin).with_slow_start(Duration::from_secs(10));
        let t0 = Instant::now();
        set.insert("web1", 100).unwrap();
        assert!(weight_of(&set, "web1") <= 1, "starts at the bottom");
        set.refresh(t0 + Duration::from_secs(5));
        assert!(
            (49..=51).contains(&weight_of(&set, "web1")),
            "{}",
            weight_of(&set, "web1")
        );
        // Within the step: no rebuild even if time moved.
        set.refresh(t0 + Duration::from_millis(5050));
        assert!((49..=51).contains(&weight_of(&set, "web1")));
        set.refresh(t0 + Duration::from_secs(11));
        assert_eq!(weight_of(&set, "web1"), 100);
        assert!(!set.ramping.load(Ordering::Relaxed), "nothing left to ramp");
        // Going down and up again restarts the ramp.
        set.set_health(&"web1", Health::Down).unwrap();
        set.set_health(&"web1", Health::Up).unwrap();
        assert!(set.ramping.load(Ordering::Relaxed));
        assert!(weight_of(&set, "web1") <= 1);
    }

    #[test]
    fn updates_name_the_key_and_the_fix() {
        let set = BackendSet::new(RoundRobin);
        set.insert("web1", 1).unwrap();
        assert_eq!(
            set.insert("web1", 1).unwrap_err().to_string(),
            "backend \"web1\" is already in the set: remove it first or change its weight"
        );
        assert_eq!(
            set.set_weight(&"web9", 2).unwrap_err().to_string(),
            "no backend \"web9\" in the set"
        );
    }
}
