//! The failover API on a real kernel: `ip_manager::failover::Failover` started in a lab
//! namespace becomes Master and adds its VIP; trackers are addressed by name (an unknown
//! name is an error naming the known ones, never silently ignored); dropping the `Failover`
//! stops the driver and the VIP leaves the interface. A health-check monitor that is already
//! down when `health_check::vrrp::track` attaches it faults the router at once (its current
//! state is delivered, not only its next change). A driver whose socket fails while it is
//! Master ends with that error: the VIP is released and the last event says why.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use health_check::{Health, Monitor, MonitorConfig, Start, TcpCheck, WatchdogConfig};

use ip_manager::failover::{Failover, FailoverEvent, StartError};
use ip_manager::{IpManager, NetlinkManager, Vip};
use lab::vrrp::{Lab, V3_IPV4_100MS};
use vrrp_core::State;
use vrrp_core::driver::{CommandError, DriverExit, VrrpSocket};
use vrrp_core::packet::{AddressFamily, Vrid};

/// Runs `body` in namespace h1 of a lab (`tag` names it) when `test` can run here: its
/// result, or `None` when the test cannot run here.
fn in_h1<T: Send + 'static, F: Future<Output = T> + 'static>(
    test: &str,
    tag: &str,
    body: impl FnOnce() -> F + Send + 'static,
) -> Option<T> {
    let lab = Lab::or_skip(test, tag, V3_IPV4_100MS)?;
    Some(lab::in_namespace(&lab.ns("h1"), body))
}

/// VRID 51 on eth0 with 10.99.0.200/24 at 100 ms adverts, tracking `tracker` (weight 0).
async fn start_tracking(tracker: &str) -> Failover {
    Failover::builder("eth0", 51)
        .virtual_address("10.99.0.200/24")
        .advert_interval(Duration::from_millis(100))
        .track(tracker, 0)
        .start()
        .await
        .expect("starts")
}

/// Waits up to `secs` seconds for `failover` to be in `state` (`what` says why it must be).
async fn reach(failover: &Failover, state: State, secs: u64, what: &str) {
    tokio::time::timeout(Duration::from_secs(secs), failover.wait_for(state))
        .await
        .expect(what)
        .expect("the driver runs");
}

/// Waits up to 3 s for `failover` to be Master.
async fn master_within_3s(failover: &Failover) {
    reach(failover, State::Master, 3, "Master within 3 s").await;
}

/// Netlink and the failovers' VIP (10.99.0.200/24 on eth0), which it asserts is on eth0.
async fn the_vip_held() -> (NetlinkManager, Vip) {
    let netlink = NetlinkManager::new().expect("netlink");
    let vip = Vip::parse("10.99.0.200/24", "eth0").expect("valid");
    assert!(
        netlink.owns(&vip).await.expect("netlink"),
        "the VIP is held"
    );
    (netlink, vip)
}

/// Waits up to 2 s for `monitor` to see its target down.
async fn until_down(monitor: &Monitor) {
    let started = Instant::now();
    while monitor.status().health != Health::Down {
        assert!(started.elapsed() < Duration::from_secs(2), "never down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A check every 50 ms, the first at once, rise and fall 1.
fn every_50ms_rise_fall_1() -> MonitorConfig {
    MonitorConfig::default()
        .interval(Duration::from_millis(50))
        .rise(1)
        .fall(1)
        .start(Start::Now)
}

#[test]
fn a_failover_takes_the_vip_names_its_trackers_and_releases_the_vip_when_dropped() {
    let test = "a_failover_takes_the_vip_names_its_trackers_and_releases_the_vip_when_dropped";
    let Some(released) = in_h1(test, "fa", || async {
        let failover = start_tracking("healthz").await;
        match failover.tracker("helthz") {
            Err(StartError::UnknownTracker { name, known }) => {
                assert_eq!(
                    (name.as_str(), known),
                    ("helthz", vec!["healthz".to_owned()])
                );
            }
            other => panic!("a misspelt tracker: {other:?}"),
        }
        let vrid = Vrid::new(51).expect("non-zero");
        let err = failover.driver().set_tracker(vrid, "helthz", false).await;
        assert!(
            matches!(&err, Err(CommandError::UnknownTracker { known, .. }) if known == &["healthz"]),
            "{err:?}"
        );
        let err = failover
            .driver()
            .set_tracker(Vrid::new(52).expect("non-zero"), "healthz", false)
            .await;
        assert!(
            matches!(err, Err(CommandError::UnknownRouter { .. })),
            "{err:?}"
        );

        master_within_3s(&failover).await;
        let (netlink, vip) = the_vip_held().await;

        let dropped = Instant::now();
        drop(failover);
        while netlink.owns(&vip).await.expect("netlink") {
            assert!(
                dropped.elapsed() < Duration::from_secs(2),
                "VIP kept after drop"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        dropped.elapsed()
    }) else {
        return;
    };
    eprintln!("Failover dropped as Master: VIP gone after {released:?}");
}

#[test]
fn a_monitor_already_down_when_attached_faults_the_router_at_once() {
    let test = "a_monitor_already_down_when_attached_faults_the_router_at_once";
    in_h1(test, "fm", || async {
        let failover = start_tracking("healthz").await;
        // Nothing listens on port 1 of this namespace's loopback: down after one check.
        let refused = TcpCheck::new("127.0.0.1:1".parse().expect("address"));
        let config = every_50ms_rise_fall_1();
        let monitor = Monitor::spawn(Arc::new(refused), config).expect("monitor");
        until_down(&monitor).await;
        // Down before it is attached, and no change after: only the initial state can
        // fault the router.
        let _feed =
            health_check::vrrp::track(&monitor, failover.tracker("healthz").expect("tracked"));
        reach(
            &failover,
            State::Fault,
            1,
            "Fault within 1 s of attaching a monitor that is down",
        )
        .await;
    });
}

#[test]
fn a_wedged_runtime_seen_by_the_watchdog_faults_the_router_and_it_recovers() {
    let test = "a_wedged_runtime_seen_by_the_watchdog_faults_the_router_and_it_recovers";
    let Some((faulted, recovered)) = in_h1(test, "fw", || async {
        // VRRP runs here (this thread's runtime); the "balancer" on a runtime of its own.
        let failover = start_tracking("event-loop").await;
        master_within_3s(&failover).await;
        let balancer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let config = WatchdogConfig::default()
            .every(Duration::from_millis(20), Duration::from_millis(100))
            .rise_fall(2, 1);
        let tracker = failover.tracker("event-loop").expect("tracked");
        let _watchdog = health_check::vrrp::watchdog(balancer.handle().clone(), config, tracker)
            .expect("watchdog thread");
        // A handler blocks the balancer's only worker for a second.
        let wedged = Instant::now();
        balancer.spawn(async { std::thread::sleep(Duration::from_secs(1)) });
        reach(&failover, State::Fault, 2, "Fault while wedged").await;
        let faulted = wedged.elapsed();
        reach(&failover, State::Master, 5, "Master once unwedged").await;
        let recovered = wedged.elapsed();
        balancer.shutdown_background();
        (faulted, recovered)
    }) else {
        return;
    };
    assert!(
        faulted < Duration::from_millis(500),
        "Fault after {faulted:?}"
    );
    assert!(
        recovered > Duration::from_secs(1),
        "Master again after {recovered:?}, while wedged?"
    );
    eprintln!(
        "watchdog: wedged balancer -> Fault after {faulted:?}, Master again after {recovered:?}"
    );
}

#[test]
fn a_listener_whose_backends_are_all_down_faults_the_router_one_down_does_not() {
    let test = "a_listener_whose_backends_are_all_down_faults_the_router_one_down_does_not";
    in_h1(test, "fy", || async {
        let failover = start_tracking("web").await;
        // Two backends on this namespace's loopback, each checked every 50 ms.
        let mut backends = Vec::new();
        let mut monitors = Vec::new();
        for _ in 0..2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            let config = every_50ms_rise_fall_1();
            monitors.push(Monitor::spawn(Arc::new(TcpCheck::new(addr)), config).expect("monitor"));
            backends.push(Some(listener));
        }
        let _feed =
            health_check::vrrp::track_any(&monitors, failover.tracker("web").expect("tracked"));
        master_within_3s(&failover).await;
        // One backend down: still Master.
        backends[0] = None;
        until_down(&monitors[0]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(failover.state(), State::Master, "one backend of two down");
        // Both down: Fault.
        backends[1] = None;
        reach(&failover, State::Fault, 2, "Fault with every backend down").await;
    });
}

#[test]
fn a_driver_whose_socket_fails_releases_the_vip_and_says_why() {
    let test = "a_driver_whose_socket_fails_releases_the_vip_and_says_why";
    let Some((exit, events)) = in_h1(test, "fx", || async {
        // The driver's "socket" is an eventfd: its sends fail at once (counted), it hears
        // nothing, so it becomes Master; the count written below makes it readable, and the
        // receive that follows fails (not a socket): the driver ends with that error while it
        // holds the VIP.
        let eventfd =
            nix::sys::eventfd::EventFd::from_flags(nix::sys::eventfd::EfdFlags::EFD_NONBLOCK)
                .expect("eventfd");
        let fd = std::os::fd::OwnedFd::from(eventfd);
        let mut poke = std::fs::File::from(fd.try_clone().expect("dup"));
        let socket = VrrpSocket::from_socket(
            socket2::Socket::from(fd),
            "eth0",
            AddressFamily::Ipv4,
            "10.99.0.11".parse().expect("address"),
        )
        .expect("adopted");
        let mut failover = Failover::builder("eth0", 51)
            .virtual_address("10.99.0.200/24")
            .advert_interval(Duration::from_millis(100))
            .socket(socket)
            .start()
            .await
            .expect("starts");
        master_within_3s(&failover).await;
        let (netlink, vip) = the_vip_held().await;

        std::io::Write::write_all(&mut poke, &1u64.to_ne_bytes()).expect("write");
        let mut events = Vec::new();
        let exit = loop {
            let event = tokio::time::timeout(Duration::from_secs(3), failover.next_event())
                .await
                .expect("the failure reported within 3 s")
                .expect("events until Released");
            events.push(event.to_string());
            if let FailoverEvent::Released(exit) = event {
                break exit;
            }
        };
        assert!(
            !netlink.owns(&vip).await.expect("netlink"),
            "a failed driver's VIP stayed"
        );
        (exit, events)
    }) else {
        return;
    };
    assert!(
        matches!(&exit, DriverExit::Failed(why) if why.contains("not a socket") || why.contains("non-socket")),
        "{exit:?}"
    );
    let text = events.join("\n");
    assert!(
        text.contains("MASTER -> INIT: shutdown")
            && text.matches("removed 10.99.0.200/24").count() == 1,
        "{text}"
    );
    eprintln!("driver failed: {exit}\n{text}");
}
