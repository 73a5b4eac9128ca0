//! `failover::VipApplier`: a router's events applied to addresses, and the rule that whatever
//! ends the driver (its socket failing, its task panicking, a stop) releases the addresses
//! and says why, so that no silent Master keeps them (issue 17: the driver used to exit on a
//! socket error without a last state change, and both hosts ended up holding the VIP).
#![cfg(feature = "vrrp")]

use std::sync::Arc;

use ip_manager::failover::{EventSource, FailoverEvent, VipApplier};
use ip_manager::{IpManager, MemoryManager, Vip};
use std::time::Instant;
use tokio::sync::mpsc;
use vrrp_core::driver::{DriverEvent, DriverExit};
use vrrp_core::packet::Vrid;
use vrrp_core::{Event, Reason, State};

/// Router events from a list, then the end the test chooses.
struct Script {
    events: Vec<Event>,
    exit: DriverExit,
}

#[async_trait::async_trait]
impl EventSource for Script {
    async fn recv(&mut self) -> Option<DriverEvent> {
        if self.events.is_empty() {
            return None;
        }
        Some(DriverEvent {
            vrid: Vrid::new(51).expect("non-zero"),
            at: Instant::now(),
            event: self.events.remove(0),
        })
    }

    async fn exit(&mut self) -> DriverExit {
        self.exit.clone()
    }
}

fn changed(from: State, to: State, reason: Reason) -> Event {
    Event::StateChanged { from, to, reason }
}

async fn master_then(exit: DriverExit) -> (Arc<MemoryManager>, Vip, Vec<FailoverEvent>) {
    let ips = Arc::new(MemoryManager::new());
    let vip = Vip::parse("10.99.0.200/24", "eth0").expect("valid");
    let (reports, mut read) = mpsc::channel(16);
    let applier = VipApplier::new(ips.clone(), vec![vip.clone()]).reports(reports);
    let mut state = applier.state();
    let script = Script {
        events: vec![
            changed(State::Initialize, State::Backup, Reason::Startup),
            changed(State::Backup, State::Master, Reason::MasterDown),
        ],
        exit: exit.clone(),
    };
    assert_eq!(applier.run(script).await, exit);
    assert_eq!(*state.borrow_and_update(), State::Initialize);
    let mut seen = Vec::new();
    while let Some(e) = read.recv().await {
        seen.push(e);
    }
    (ips, vip, seen)
}

#[tokio::test]
async fn a_driver_that_fails_as_master_releases_the_vip_and_says_why() {
    let exit = DriverExit::Failed("receiving an advert on eth0: Network is down".into());
    let (ips, vip, seen) = master_then(exit.clone()).await;
    assert!(
        !ips.owns(&vip).await.expect("memory"),
        "a silent Master kept {vip}"
    );
    let text: Vec<String> = seen.iter().map(ToString::to_string).collect();
    assert!(
        matches!(&seen[..], [
        FailoverEvent::StateChanged { to: State::Backup, .. },
        FailoverEvent::StateChanged { to: State::Master, .. },
        FailoverEvent::Added(_),
        FailoverEvent::Removed(_),
        FailoverEvent::Released(e),
    ] if *e == exit),
        "{text:#?}"
    );
    assert_eq!(
        text.last().map(String::as_str),
        Some(
            "the VRRP driver ended (failed: receiving an advert on eth0: Network is down): virtual addresses released"
        )
    );
}

#[tokio::test]
async fn a_driver_that_panics_as_master_releases_the_vip_and_says_why() {
    let (ips, vip, seen) = master_then(DriverExit::Panicked("index out of bounds".into())).await;
    assert!(!ips.owns(&vip).await.expect("memory"));
    assert!(
        seen.last()
            .is_some_and(|e| e.to_string().contains("panicked: index out of bounds")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn leaving_master_removes_the_vip_and_a_full_report_channel_never_holds_it_up() {
    let ips = Arc::new(MemoryManager::new());
    let vip = Vip::parse("fd99::200/64", "eth0").expect("valid");
    // Room for one report, and nobody reading: the addresses move regardless.
    let (reports, _unread) = mpsc::channel(1);
    let mut applier = VipApplier::new(ips.clone(), vec![vip.clone()]).reports(reports);
    let missed = applier.missed_reports();
    applier
        .apply(changed(State::Backup, State::Master, Reason::MasterDown))
        .await;
    assert!(ips.owns(&vip).await.expect("memory"));
    applier
        .apply(changed(
            State::Master,
            State::Fault,
            Reason::Fault {
                cause: "healthz".into(),
            },
        ))
        .await;
    assert!(!ips.owns(&vip).await.expect("memory"));
    assert!(missed.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}
