//! Desired versus actual: a [`VipApplier`](super::VipApplier)'s addresses checked against what
//! the backend says, whenever the backend notices a change (netlink notifications), on its
//! period (a cloud API), and right after every takeover and release. See
//! [`VipApplier::reconcile`](super::VipApplier::reconcile).
//!
//! - On a Master (the addresses added and not released since), an address that is not
//!   [`in_place`](crate::IpManager::in_place) any more (`ip addr del`, a DHCP client or
//!   NetworkManager flushing the interface, an Elastic IP moved away) is added again,
//!   announced once more (one burst of gratuitous ARP / unsolicited NA, with the applier's
//!   announcer), counted and reported ([`FailoverEvent::Restored`]).
//! - Elsewhere (Backup, Fault, not started), an address the backend
//!   [`owns`](crate::IpManager::owns) is removed, counted and reported
//!   ([`FailoverEvent::StaleRemoved`]): a crash left it, and two hosts answering for it is
//!   worse than none. Only once it has stayed for [`STALE_GRACE`] (an instance being replaced
//!   on the same host may still be releasing it), and after each removal that it came back
//!   from, twice as long (up to a minute: two routers configured with one address do not fight
//!   over it). Not for a backend that is not [`exclusive`](crate::Reconcile::exclusive) (an
//!   address active on every node by design), and not again for an address that the backend
//!   keeps after a removal on purpose (an Elastic IP left with its last holder).
//!
//! The applier's own changes and the reconciler's checks take turns (one lock), so a check
//! never puts back an address that a demotion is removing, and a demotion never races a
//! restore. A restore is one `in_place` and one `add` after the notification: well under a
//! millisecond for netlink (BENCHMARKS.md has the measured figures).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, OwnedMutexGuard, mpsc};
use tokio::task::JoinHandle;

use super::FailoverEvent;
use super::apply::report;
use crate::{Announcer, Changes, Error, IpManager, Vip};

/// What the reconciler did so far (a snapshot of [`ReconcileCounters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileStats {
    /// Addresses put back on a Master after they went behind its back.
    pub restored: u64,
    /// Addresses removed from a node that was not Master (left by a crash).
    pub stale_removed: u64,
    /// Checks run (each reads every address once).
    pub checks: u64,
    /// Reads, restores or removals that failed (each also reported as
    /// [`FailoverEvent::Failed`]).
    pub failures: u64,
    /// How long the last restore took, from the check's start to the address added and
    /// announced.
    pub last_restore: Option<Duration>,
}

/// The reconciler's counters, shared with whoever shows them (a status page, metrics).
#[derive(Debug, Default)]
pub struct ReconcileCounters {
    restored: AtomicU64,
    stale_removed: AtomicU64,
    checks: AtomicU64,
    failures: AtomicU64,
    /// Microseconds, plus one (0: none yet).
    last_restore: AtomicU64,
}

impl ReconcileCounters {
    /// The counters now.
    pub fn stats(&self) -> ReconcileStats {
        let last = self.last_restore.load(Ordering::Relaxed);
        ReconcileStats {
            restored: self.restored.load(Ordering::Relaxed),
            stale_removed: self.stale_removed.load(Ordering::Relaxed),
            checks: self.checks.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_restore: last.checked_sub(1).map(Duration::from_micros),
        }
    }
}

/// How long an address must stay on a node that is not Master before it is removed as a
/// leftover.
pub const STALE_GRACE: Duration = Duration::from_secs(1);

/// The longest wait before removing an address that keeps coming back.
const STALE_GRACE_MAX: Duration = Duration::from_secs(60);

/// What the addresses should be now; the lock that makes the applier and the checks take turns.
pub(super) struct Desired {
    /// Added and not released since: on a Master.
    holding: bool,
    /// The applier's announcer as of the last takeover.
    announcer: Option<Arc<Announcer>>,
    /// Per address, on a node that is not Master.
    stale: Vec<Stale>,
}

/// One address seen on a node that is not Master.
#[derive(Clone, Copy, Debug, Default)]
struct Stale {
    /// Since when it has been seen (by consecutive checks).
    since: Option<Instant>,
    /// Removals so far (since the last takeover or release).
    removals: u32,
    /// Still there after a removal (the backend keeps it on purpose): not tried again.
    kept: bool,
}

impl Stale {
    /// How long it must stay before the next removal.
    fn grace(&self) -> Duration {
        STALE_GRACE
            .saturating_mul(1 << self.removals.min(6))
            .min(STALE_GRACE_MAX)
    }
}

/// The running reconciliation of one applier; dropping it stops it.
pub(super) struct Reconciler {
    desired: Arc<Mutex<Desired>>,
    wake: Arc<Notify>,
    counters: Arc<ReconcileCounters>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("stats", &self.counters.stats())
            .finish_non_exhaustive()
    }
}

/// What the checking task needs.
struct Context {
    manager: Arc<dyn IpManager>,
    vips: Vec<Vip>,
    exclusive: bool,
    desired: Arc<Mutex<Desired>>,
    counters: Arc<ReconcileCounters>,
    reports: Option<mpsc::Sender<FailoverEvent>>,
    missed: Arc<AtomicU64>,
}

impl Reconciler {
    /// Starts reconciling `vips` on `manager` as its [`reconcile`](IpManager::reconcile)
    /// says: subscribes to its notifications (if any) first, then checks at once (a leftover
    /// on a node not yet Master goes), then on every notification, period and wake-up.
    /// `Ok(None)` for a backend that observes nothing.
    pub(super) fn start(
        manager: Arc<dyn IpManager>,
        vips: Vec<Vip>,
        reports: Option<mpsc::Sender<FailoverEvent>>,
        missed: Arc<AtomicU64>,
    ) -> Result<Option<Reconciler>, Error> {
        let how = manager.reconcile();
        if !how.observes() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Netlink {
            operation: "starting the reconciliation of virtual addresses".into(),
            message: "no tokio runtime: start it from within one".into(),
        })?;
        let changes = if how.notified { manager.watch()? } else { None };
        let desired = Arc::new(Mutex::new(Desired {
            holding: false,
            announcer: None,
            stale: vec![Stale::default(); vips.len()],
        }));
        let wake = Arc::new(Notify::new());
        let counters = Arc::new(ReconcileCounters::default());
        let context = Context {
            manager,
            vips,
            exclusive: how.exclusive,
            desired: desired.clone(),
            counters: counters.clone(),
            reports,
            missed,
        };
        let task = runtime.spawn(run(context, changes, how.poll, wake.clone()));
        Ok(Some(Reconciler {
            desired,
            wake,
            counters,
            task,
        }))
    }

    /// The addresses are to be held (`true`, a takeover) or not from now on: returns the lock,
    /// which the applier keeps while it adds or removes them; a check follows once it is
    /// released (a cloud API re-read right after becoming Master).
    pub(super) async fn hold(
        &self,
        holding: bool,
        announcer: Option<Arc<Announcer>>,
    ) -> OwnedMutexGuard<Desired> {
        let mut desired = self.desired.clone().lock_owned().await;
        if desired.holding != holding {
            desired.stale.iter_mut().for_each(|s| *s = Stale::default());
        }
        desired.holding = holding;
        desired.announcer = announcer;
        self.wake.notify_one();
        desired
    }

    /// Its counters.
    pub(super) fn counters(&self) -> Arc<ReconcileCounters> {
        self.counters.clone()
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks now, then after every notification that may concern an address, every period and
/// every wake-up.
async fn run(
    context: Context,
    mut changes: Option<Changes>,
    poll: Option<Duration>,
    wake: Arc<Notify>,
) {
    let addresses: Vec<IpAddr> = context.vips.iter().map(|v| v.address).collect();
    let mut tick = poll.map(|period| {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    loop {
        let again = check(&context).await;
        loop {
            tokio::select! {
                () = sleep_until(again) => break,
                change = next_change(&mut changes) => match change {
                    Some(c) if c.may_concern(&addresses) => break,
                    Some(_) => {}
                    // The watch ended (its socket failed): the period, if any, goes on.
                    None => changes = None,
                },
                () = next_tick(&mut tick) => break,
                () = wake.notified() => break,
            }
        }
    }
}

async fn next_change(changes: &mut Option<Changes>) -> Option<crate::Change> {
    match changes {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One check of every address, its fixes made, with the applier held off. Returns when to
/// check again (an address seen on a node that is not Master, to be removed if it stays).
async fn check(c: &Context) -> Option<Instant> {
    let mut desired = c.desired.lock().await;
    c.counters.checks.fetch_add(1, Ordering::Relaxed);
    let mut again: Option<Instant> = None;
    for (k, vip) in c.vips.iter().enumerate() {
        if desired.holding {
            match c.manager.in_place(vip).await {
                Ok(true) => {}
                // Gone with its link (IPv6 addresses go when a link goes down): the router
                // leaves Master for Fault on the same news; nothing to put back.
                Ok(false) if c.manager.link_up(vip).await == Some(false) => {}
                Ok(false) => restore(c, vip, desired.announcer.as_deref()).await,
                Err(error) => fail(c, vip, error),
            }
            continue;
        }
        let stale = &mut desired.stale[k];
        if !c.exclusive || stale.kept {
            continue;
        }
        match c.manager.owns(vip).await {
            // No interface (a virtual MAC's macvlan removed at exit): nothing held there.
            Ok(false) | Err(Error::UnknownInterface { .. }) => stale.since = None,
            Ok(true) => {
                let now = Instant::now();
                let since = *stale.since.get_or_insert(now);
                let due = since + stale.grace();
                if now < due {
                    again = Some(again.map_or(due, |a| a.min(due)));
                    continue;
                }
                stale.since = None;
                stale.removals += 1;
                stale.kept = remove_stale(c, vip).await;
            }
            Err(error) => fail(c, vip, error),
        }
    }
    again
}

/// Adds `vip` again and announces it once.
async fn restore(c: &Context, vip: &Vip, announcer: Option<&Announcer>) {
    let started = Instant::now();
    if let Err(error) = c.manager.add(vip).await {
        return fail(c, vip, error);
    }
    if let Some(announcer) = announcer
        && let Err(error) = announcer.announce_once(vip).await
    {
        fail(c, vip, error);
    }
    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
    c.counters.last_restore.store(took + 1, Ordering::Relaxed);
    c.counters.restored.fetch_add(1, Ordering::Relaxed);
    send(c, FailoverEvent::Restored(vip.clone()));
}

/// Removes `vip` from a node that is not Master; true when the backend still has it after
/// (kept on purpose: not tried again).
async fn remove_stale(c: &Context, vip: &Vip) -> bool {
    if let Err(error) = c.manager.remove(vip).await {
        fail(c, vip, error);
        return false;
    }
    match c.manager.owns(vip).await {
        Ok(true) => true,
        Ok(false) => {
            c.counters.stale_removed.fetch_add(1, Ordering::Relaxed);
            send(c, FailoverEvent::StaleRemoved(vip.clone()));
            false
        }
        Err(error) => {
            fail(c, vip, error);
            false
        }
    }
}

fn fail(c: &Context, vip: &Vip, error: Error) {
    c.counters.failures.fetch_add(1, Ordering::Relaxed);
    send(
        c,
        FailoverEvent::Failed {
            vip: vip.clone(),
            error,
        },
    );
}

fn send(c: &Context, event: FailoverEvent) {
    report(c.reports.as_ref(), &c.missed, event);
}
