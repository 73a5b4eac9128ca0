//! The `discover` adapter feeding a real tower balancer (`tower::balance::p2c::Balance`) with
//! real TCP backends on loopback: a backend that dies leaves the balancer, one that comes back
//! rejoins it.
#![cfg(feature = "discover")]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::at_once;

use health_check::{Health, HealthDiscover, Monitor, MonitorConfig, Start, TcpCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tower::balance::p2c::Balance;
use tower::discover::Change;
use tower::load::Constant;
use tower::{BoxError, Service, ServiceExt};

/// A backend that writes its name to every connection.
async fn backend(addr: SocketAddr, name: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(name.as_bytes()).await;
        }
    });
    (addr, task)
}

/// A client service for one backend: connect, read the name.
fn client(
    addr: SocketAddr,
) -> impl Service<(), Response = String, Error = BoxError, Future: Send> + Clone + Send {
    tower::service_fn(move |()| async move {
        let mut sock = TcpStream::connect(addr).await?;
        let mut name = String::new();
        sock.read_to_string(&mut name).await?;
        Ok::<_, BoxError>(name)
    })
}

fn monitor(addr: SocketAddr) -> (Monitor, watch::Receiver<health_check::Status>) {
    let config = at_once(Duration::from_millis(20)).rise(2).fall(2);
    let m = Monitor::spawn(Arc::new(TcpCheck::new(addr)), config).expect("valid config");
    let rx = m.subscribe();
    (m, rx)
}

async fn wait_for(rx: &mut watch::Receiver<health_check::Status>, health: Health) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while rx.borrow().health != health || rx.borrow().checks == 0 {
            rx.changed().await.expect("monitor running");
        }
    })
    .await
    .expect("state reached in time");
}

/// One request through `service`, once it is ready.
async fn call<S: Service<()>>(service: &mut S) -> Result<S::Response, S::Error>
where
    S::Error: std::fmt::Debug,
{
    service.ready().await.expect("ready").call(()).await
}

async fn names<S>(balance: &mut S, n: usize) -> Vec<String>
where
    S: Service<(), Response = String>,
    S::Error: std::fmt::Debug,
{
    let mut out = Vec::new();
    for _ in 0..n {
        let name = call(balance).await.expect("request served");
        out.push(name);
    }
    out
}

#[tokio::test]
async fn tower_p2c_balance_follows_backend_health() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (addr1, _web1) = backend(any, "web1").await;
    let (addr2, web2) = backend(any, "web2").await;
    let (m1, mut rx1) = monitor(addr1);
    let (m2, mut rx2) = monitor(addr2);
    wait_for(&mut rx1, Health::Up).await;
    wait_for(&mut rx2, Health::Up).await;

    let mut discover = HealthDiscover::new();
    // tower's load wrappers are not Clone: build one per (re)join.
    discover.insert_with("web1", move || Constant::new(client(addr1), 0), m1);
    discover.insert_with("web2", move || Constant::new(client(addr2), 0), m2);
    let mut balance = Balance::new(discover);

    let got = names(&mut balance, 100).await;
    assert!(got.iter().any(|n| n == "web1") && got.iter().any(|n| n == "web2"));

    // web2 dies: once its monitor says down, no request goes there (and none fails).
    web2.abort();
    let _ = web2.await;
    wait_for(&mut rx2, Health::Down).await;
    let got = names(&mut balance, 100).await;
    assert!(got.iter().all(|n| n == "web1"), "{got:?}");

    // web2 comes back on the same address: after `rise` checks it gets requests again.
    let (_, _web2) = backend(addr2, "web2").await;
    wait_for(&mut rx2, Health::Up).await;
    let got = names(&mut balance, 100).await;
    assert!(got.iter().any(|n| n == "web2"), "{got:?}");
}

#[tokio::test]
async fn changes_in_order_and_removal_by_key() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (addr1, _web1) = backend(any, "web1").await;
    // A backend that never listened: its monitor (starting down, like keepalived) never rises.
    let gone: SocketAddr = {
        let l = std::net::TcpListener::bind(any).expect("bind");
        l.local_addr().expect("addr")
    };
    let (m1, _) = monitor(addr1);
    let config = at_once(Duration::from_millis(20)).initial(Health::Down);
    let m_gone = Monitor::spawn(Arc::new(TcpCheck::new(gone)), config).expect("valid config");
    let mut rx_gone = m_gone.subscribe();

    let mut discover: HealthDiscover<&str, SocketAddr> = HealthDiscover::new();
    discover.insert("web1", addr1, m1);
    discover.insert("gone", gone, m_gone);
    assert_eq!(discover.len(), 2);
    match discover.next().await {
        Some(Ok(Change::Insert("web1", a))) => assert_eq!(a, addr1),
        other => panic!("{other:?}"),
    }
    // The down one stays out through several failed checks.
    rx_gone.changed().await.expect("running");
    rx_gone.changed().await.expect("running");
    assert_eq!(rx_gone.borrow().failures, 2);
    let nothing = tokio::time::timeout(Duration::from_millis(100), discover.next()).await;
    assert!(nothing.is_err(), "no change for a backend that stays down");
    assert_eq!(discover.up().copied().collect::<Vec<_>>(), ["web1"]);

    discover.remove(&"web1");
    match discover.next().await {
        Some(Ok(Change::Remove("web1"))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(discover.len(), 1);
    assert_eq!(discover.up().count(), 0);
}

/// A monitor that never runs a check (its first is an hour away): its state stays the initial
/// one, so only delivery on attach can report it.
fn idle_monitor(initial: Health) -> Monitor {
    let config = MonitorConfig::default()
        .initial(initial)
        .start(Start::After(Duration::from_secs(3600)));
    let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    Monitor::spawn(Arc::new(TcpCheck::new(nowhere)), config).expect("valid config")
}

/// Records what `HealthDiscover::in_place` sets.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(&'static str, &'static str, Health)>>);

impl health_check::HealthTarget<&'static str> for Recorded {
    fn join(&self, key: &&'static str, health: Health) {
        self.0.lock().expect("lock").push(("join", key, health));
    }
    fn set_health(&self, key: &&'static str, health: Health) {
        self.0.lock().expect("lock").push(("set", key, health));
    }
}

#[tokio::test]
async fn every_monitor_state_is_delivered_on_attach_not_only_its_next_change() {
    // Removing mode: an up monitor that will not check for an hour is inserted at once.
    let mut discover: HealthDiscover<&str, u8> = HealthDiscover::new();
    discover.insert("up", 1, idle_monitor(Health::Up));
    discover.insert("down", 2, idle_monitor(Health::Down));
    let first = tokio::time::timeout(Duration::from_secs(1), discover.next()).await;
    assert!(
        matches!(first, Ok(Some(Ok(Change::Insert("up", 1))))),
        "{first:?}"
    );
    assert_eq!(discover.up().copied().collect::<Vec<_>>(), ["up"]);

    // In place: both are inserted at once, and the target has each one's health first.
    let target = Arc::new(Recorded::default());
    let mut discover: HealthDiscover<&str, u8> = HealthDiscover::in_place(target.clone());
    discover.insert("up", 1, idle_monitor(Health::Up));
    discover.insert("down", 2, idle_monitor(Health::Down));
    let mut inserted = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(1), discover.next()).await {
            Ok(Some(Ok(Change::Insert(key, _)))) => inserted.push(key),
            other => panic!("{other:?}"),
        }
    }
    inserted.sort_unstable();
    assert_eq!(inserted, ["down", "up"]);
    let mut seen = target.0.lock().expect("lock").clone();
    seen.sort_unstable_by_key(|(_, k, _)| *k);
    assert_eq!(
        seen,
        [("join", "down", Health::Down), ("join", "up", Health::Up)]
    );
}

#[cfg(feature = "discover")]
mod in_place {
    use super::*;
    use lb_core::balance::NoKey;
    use lb_core::{AdminState, BackendSet, Balance, LeastConnections};

    #[tokio::test]
    async fn three_upstreams_attached_down_say_3_configured_3_down() {
        let set = Arc::new(BackendSet::new(LeastConnections::new()));
        let mut discover = HealthDiscover::in_place(set.clone());
        for name in ["web1", "web2", "web3"] {
            let upstream = tower::service_fn(move |()| async move { Ok::<_, BoxError>(name) });
            discover.insert(name, upstream, idle_monitor(Health::Down));
        }
        let mut balance = Balance::with_set(discover, set, NoKey);
        let err = call(&mut balance).await.expect_err("all down");
        assert_eq!(
            err.to_string(),
            "no backend available: 3 configured, 3 down"
        );
    }

    #[tokio::test]
    async fn a_health_flap_changes_health_in_place_keeping_weight_maxconn_admin_and_counters() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (addr, web1) = backend(any, "web1").await;
        let (m, mut rx) = monitor(addr);
        wait_for(&mut rx, Health::Up).await;

        // The operator's settings for web1, made before it is attached.
        let set = Arc::new(BackendSet::new(LeastConnections::new()));
        set.insert("web1", 5).expect("new");
        set.set_maxconn(&"web1", Some(10)).expect("member");
        let mut discover = HealthDiscover::in_place(set.clone());
        discover.insert_with("web1", move || client(addr), m);
        let mut balance = Balance::with_set(discover, set.clone(), NoKey);
        assert_eq!(names(&mut balance, 2).await, ["web1", "web1"]);
        // A request counted in flight across the flap (held by hand).
        let held = set
            .pick(&lb_core::PickContext::default())
            .expect("web1 is up")
            .1;
        set.set_admin(&"web1", AdminState::Drain).expect("member");
        // What a flap changes (health) and what it keeps.
        let assert_kept = |health: lb_core::Health| {
            let snapshot = set.snapshot();
            let b = snapshot.get(&"web1").expect("still a member, down or up");
            assert_eq!(b.health(), health);
            assert_eq!(
                (b.weight(), b.maxconn(), b.admin(), b.load().in_flight()),
                (5, Some(10), AdminState::Drain, 1),
                "weight, maxconn, admin state and counters kept"
            );
        };

        web1.abort();
        let _ = web1.await;
        wait_for(&mut rx, Health::Down).await;
        balance.ready().await.expect("ready: applies the flap");
        assert_kept(lb_core::Health::Down);
        let err = balance.call(()).await.expect_err("down");
        assert_eq!(
            err.to_string(),
            "no backend available: 1 configured, 1 drained"
        );

        let (_, _web1) = backend(addr, "web1").await;
        wait_for(&mut rx, Health::Up).await;
        balance.ready().await.expect("ready: applies the flap");
        assert_kept(lb_core::Health::Up);
        drop(held);
        set.set_admin(&"web1", AdminState::Ready).expect("member");
        assert_eq!(names(&mut balance, 1).await, ["web1"]);
    }
}
