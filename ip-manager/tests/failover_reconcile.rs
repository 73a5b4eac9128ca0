//! `VipApplier::reconcile`: desired versus actual on a backend that notifies its changes (the
//! in-memory double; the netlink one is tested in namespaces by `examples/tests/reconcile_netns.rs`)
//! or is re-read on a period: an address removed behind a Master's back comes back and is
//! reported, one found on a node that is not Master goes (after the grace second; the second
//! time after two), a demotion's removal is never undone, and a backend active on every node by
//! design is never "removed from a Backup".
#![cfg(feature = "vrrp")]

use std::sync::Arc;
use std::time::Duration;

use ip_manager::failover::{FailoverEvent, VipApplier};
use ip_manager::{IpManager, MemoryManager, Reconcile, Vip};
use tokio::sync::mpsc;
use vrrp_core::{Event, Reason, State};

fn changed(from: State, to: State) -> Event {
    Event::StateChanged {
        from,
        to,
        reason: Reason::MasterDown,
    }
}

fn vip() -> Vip {
    Vip::parse("10.99.0.200/24", "eth0").expect("valid")
}

/// An applier reconciling `vip()` on `ips`, with its reports.
fn applier(ips: &Arc<MemoryManager>) -> (VipApplier, mpsc::Receiver<FailoverEvent>) {
    let (reports, read) = mpsc::channel(64);
    let mut applier = VipApplier::new(ips.clone(), vec![vip()]).reports(reports);
    applier.reconcile().expect("a runtime");
    (applier, read)
}

/// The next report that `want` accepts, within 5 s (a second stale removal waits 2 s).
async fn expect(read: &mut mpsc::Receiver<FailoverEvent>, want: impl Fn(&FailoverEvent) -> bool) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = read.recv().await {
            if want(&e) {
                return;
            }
        }
        panic!("the reports ended");
    })
    .await;
    assert!(found.is_ok(), "no such report within 5 s");
}

#[tokio::test]
async fn a_vip_removed_behind_a_masters_back_comes_back_and_is_reported() {
    let ips = Arc::new(MemoryManager::new());
    let (mut applier, mut read) = applier(&ips);
    let counters = applier.reconcile_counters().expect("a notifying backend");
    applier.apply(changed(State::Backup, State::Master)).await;
    assert!(ips.owns(&vip()).await.expect("memory"));

    ips.remove(&vip()).await.expect("memory"); // `ip addr del`
    expect(
        &mut read,
        |e| matches!(e, FailoverEvent::Restored(v) if *v == vip()),
    )
    .await;
    assert!(ips.owns(&vip()).await.expect("memory"));
    let stats = counters.stats();
    assert_eq!((stats.restored, stats.stale_removed), (1, 0));
    assert!(stats.last_restore.is_some());
    assert_eq!(
        FailoverEvent::Restored(vip()).to_string(),
        "restored 10.99.0.200/24 dev eth0: it was removed behind the Master's back"
    );

    // Leaving Master removes it, and the removal stays.
    applier.apply(changed(State::Master, State::Backup)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!ips.owns(&vip()).await.expect("memory"));
    assert_eq!(counters.stats().restored, 1);
}

#[tokio::test]
async fn a_vip_left_on_a_node_that_is_not_master_goes_at_start_and_when_noticed() {
    let ips = Arc::new(MemoryManager::new());
    ips.add(&vip()).await.expect("memory"); // a crashed run's leftover
    let (mut applier, mut read) = applier(&ips);
    expect(&mut read, |e| matches!(e, FailoverEvent::StaleRemoved(_))).await;
    assert!(!ips.owns(&vip()).await.expect("memory"));

    applier
        .apply(changed(State::Initialize, State::Backup))
        .await;
    ips.add(&vip()).await.expect("memory"); // added by hand on the Backup
    expect(&mut read, |e| matches!(e, FailoverEvent::StaleRemoved(_))).await;
    assert!(!ips.owns(&vip()).await.expect("memory"));
    let counters = applier.reconcile_counters().expect("reconciling");
    assert_eq!(counters.stats().stale_removed, 2);
}

#[tokio::test]
async fn a_backend_active_on_every_node_is_never_removed_from_a_backup() {
    let ips = Arc::new(MemoryManager::new().reconciled_as(Reconcile::notified().shared()));
    ips.add(&vip()).await.expect("memory");
    let (mut applier, _read) = applier(&ips);
    applier
        .apply(changed(State::Initialize, State::Backup))
        .await;
    ips.add(&vip()).await.expect("memory");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ips.owns(&vip()).await.expect("memory"));
    let stats = applier.reconcile_counters().expect("reconciling").stats();
    assert_eq!(stats.stale_removed, 0);
    assert!(stats.checks >= 1);
}

#[tokio::test]
async fn a_polled_backend_is_re_read_on_its_period() {
    // Notifies nothing: only the period (and the takeover's own re-read) can notice.
    let ips =
        Arc::new(MemoryManager::new().reconciled_as(Reconcile::polled(Duration::from_millis(50))));
    let (mut applier, mut read) = applier(&ips);
    applier.apply(changed(State::Backup, State::Master)).await;
    ips.remove(&vip()).await.expect("memory");
    expect(&mut read, |e| matches!(e, FailoverEvent::Restored(_))).await;
    assert!(ips.owns(&vip()).await.expect("memory"));
}

#[tokio::test]
async fn a_backend_that_observes_nothing_is_not_reconciled() {
    let ips = Arc::new(MemoryManager::new().reconciled_as(Reconcile::unobservable()));
    let (applier, _read) = applier(&ips);
    assert!(applier.reconcile_counters().is_none());
}
