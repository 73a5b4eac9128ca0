//! Desired versus actual on a real kernel (issue 20, point 3): a VIP deleted behind a Master's
//! back (`ip addr del`) is put back and announced again, reported (`FailoverEvent::Restored`)
//! and counted (`Failover::reconcile_stats`, vrrpd's status JSON); a VIP found on a Backup
//! (left by a crash, or added by hand) is removed at start and when noticed.
//!
//! `restore_time_is_measured` repeats the deletion and prints how long until the address is
//! back (a netlink notification of it) and until the first gratuitous ARP for it reaches the
//! other host (an `AF_PACKET` socket there): run it with `--nocapture` for BENCHMARKS.md.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ip_manager::failover::{Failover, FailoverEvent};
use ip_manager::{AnnounceConfig, Change, IpManager, NetlinkManager, Vip};
use lab::vrrp::{Lab, V3_IPV4_100MS};
use vrrp_core::State;

const VIP: &str = "10.99.0.200/24";
const VIP_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 200);

fn lab_or_skip(test: &str, tag: &str) -> Option<Lab> {
    Lab::or_skip(test, tag, V3_IPV4_100MS)
}

/// VRID 51 on eth0 with the VIP at 100 ms adverts, priority `priority`; one burst of
/// gratuitous ARPs per takeover (no second burst 5 s later to confuse the measurement).
async fn failover(priority: u8) -> Failover {
    Failover::builder("eth0", 51)
        .virtual_address(VIP)
        .priority(priority)
        .advert_interval(Duration::from_millis(100))
        .announce(Some(AnnounceConfig {
            refresh_delay: None,
            ..AnnounceConfig::default()
        }))
        .start()
        .await
        .expect("starts")
}

async fn reach(f: &Failover, state: State) {
    tokio::time::timeout(Duration::from_secs(5), f.wait_for(state))
        .await
        .unwrap_or_else(|_| panic!("{state} within 5 s"))
        .expect("the driver runs");
}

/// The next event that `want` accepts, within `within`.
async fn event(f: &mut Failover, within: Duration, want: impl Fn(&FailoverEvent) -> bool) {
    let found = tokio::time::timeout(within, async {
        while let Some(e) = f.next_event().await {
            if want(&e) {
                return;
            }
        }
        panic!("the events ended");
    })
    .await;
    assert!(found.is_ok(), "no such event within {within:?}");
}

fn vip() -> Vip {
    Vip::parse(VIP, "eth0").expect("valid")
}

#[test]
fn a_vip_deleted_on_a_failover_master_comes_back_and_is_reported() {
    let test = "a_vip_deleted_on_a_failover_master_comes_back_and_is_reported";
    let Some(lab) = lab_or_skip(test, "rf") else {
        return;
    };
    let ns = lab.ns("h1");
    let back = lab::in_namespace(&ns.clone(), move || async move {
        let mut f = failover(150).await;
        reach(&f, State::Master).await;
        let netlink = NetlinkManager::new().expect("netlink");
        assert!(netlink.owns(&vip()).await.expect("netlink"));
        // What an operator types: `ip addr del` (its own process, as in real life).
        let deleted = Instant::now();
        let status = tokio::process::Command::new("ip")
            .args(["addr", "del", VIP, "dev", "eth0"])
            .status()
            .await
            .expect("ip runs");
        assert!(status.success());
        event(
            &mut f,
            Duration::from_secs(2),
            |e| matches!(e, FailoverEvent::Restored(v) if v.address == vip().address),
        )
        .await;
        let back = deleted.elapsed();
        assert!(netlink.owns(&vip()).await.expect("netlink"), "not back");
        let stats = f.reconcile_stats().expect("netlink reconciles");
        assert_eq!((stats.restored, stats.stale_removed), (1, 0), "{stats:?}");
        assert_eq!(f.state(), State::Master);
        drop(f.stop().await);
        back
    });
    eprintln!("`ip addr del` on the Master: back and reported after {back:?} (with ip's start)");
    assert!(back < Duration::from_secs(2));
}

#[test]
fn a_vip_on_a_failover_backup_is_removed_at_start_and_when_noticed() {
    let test = "a_vip_on_a_failover_backup_is_removed_at_start_and_when_noticed";
    let Some(lab) = lab_or_skip(test, "rs") else {
        return;
    };
    // h2 is the Master (priority 200) all along.
    let (stop_master, stopped) = tokio::sync::oneshot::channel::<()>();
    let (master_up, is_up) = std::sync::mpsc::channel();
    let master = lab::spawn_in_namespace(&lab.ns("h2"), move || async move {
        let f = failover(200).await;
        reach(&f, State::Master).await;
        master_up.send(()).expect("the test waits");
        let _ = stopped.await;
        f.stop().await
    });
    is_up
        .recv_timeout(Duration::from_secs(10))
        .expect("h2 Master within 10 s");
    // A crashed run's leftover on h1.
    lab.ip("h1", &format!("addr add {VIP} dev eth0"));
    let ns = lab.ns("h1");
    lab::in_namespace(&ns, || async {
        let netlink = NetlinkManager::new().expect("netlink");
        let mut f = failover(100).await;
        assert!(
            !netlink.owns(&vip()).await.expect("netlink"),
            "the leftover is gone once started"
        );
        reach(&f, State::Backup).await;
        // Added by hand on the Backup: noticed, and removed after the grace period.
        let added = Instant::now();
        netlink.add(&vip()).await.expect("netlink");
        event(&mut f, Duration::from_secs(5), |e| {
            matches!(e, FailoverEvent::StaleRemoved(_))
        })
        .await;
        eprintln!(
            "a VIP added by hand on a Backup: removed after {:?}",
            added.elapsed()
        );
        assert!(!netlink.owns(&vip()).await.expect("netlink"));
        assert_eq!(f.reconcile_stats().expect("netlink").stale_removed, 1);
        assert_eq!(f.state(), State::Backup);
        drop(f.stop().await);
    });
    assert!(lab.has_vip("h2"), "the Master keeps it");
    let _ = stop_master.send(());
    drop(master.join());
}

#[test]
fn a_vip_deleted_on_a_vrrpd_master_comes_back_counted_in_its_status() {
    let test = "a_vip_deleted_on_a_vrrpd_master_comes_back_counted_in_its_status";
    let Some(mut lab) = lab_or_skip(test, "rv") else {
        return;
    };
    lab.vrrpd("h1", 150, V3_IPV4_100MS);
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
    let deleted = Instant::now();
    lab.ip("h1", &format!("addr del {VIP} dev eth0"));
    while !lab.has_vip("h1") {
        assert!(
            deleted.elapsed() < Duration::from_secs(2),
            "the VIP is not back within 2 s; log in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("vrrpd: `ip addr del` -> back after {:?}", deleted.elapsed());
    let status = lab.status("h1");
    let r = &status["instances"][0]["reconciliation"];
    assert_eq!(r["restored"], 1, "{status}");
    assert_eq!(r["stale_removed"], 0, "{status}");
    assert_eq!(status["instances"][0]["state"], "MASTER");
    let log = lab.log("h1.vrrpd.log");
    assert!(
        log.contains("restored 10.99.0.200/24"),
        "the restore is logged: {log}"
    );
}

/// Gratuitous ARPs for the VIP as they reach another host: the times they arrived.
struct ArpWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Instant>>,
}

impl ArpWatch {
    /// Listens in namespace `ns` (every interface) from now on.
    fn start(ns: &str) -> ArpWatch {
        use std::io::Read;
        use std::os::fd::AsFd;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, is_ready) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{ns}");
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("namespace file");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let protocol = socket2::Protocol::from(i32::from(0x0806u16.to_be()));
            let mut socket =
                socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, Some(protocol))
                    .expect("AF_PACKET socket");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
            ready.send(()).expect("the test waits");
            let mut seen = Vec::new();
            let mut frame = [0u8; 128];
            while !stopping.load(Ordering::Relaxed) {
                let Ok(n) = socket.read(&mut frame) else {
                    continue;
                };
                // Ethernet 14 + ARP: the sender's protocol address at 28..32.
                if n >= 42 && frame[28..32] == VIP_ADDRESS.octets() {
                    seen.push(Instant::now());
                }
            }
            seen
        });
        is_ready
            .recv_timeout(Duration::from_secs(5))
            .expect("the ARP watch starts");
        ArpWatch { stop, thread }
    }

    fn finish(self) -> Vec<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the ARP watch")
    }
}

fn summary(label: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = v[v.len() / 2];
    eprintln!(
        "{label}: n={} min {:.3} ms, median {:.3} ms, max {:.3} ms",
        v.len(),
        ms(v[0]),
        ms(median),
        ms(v[v.len() - 1])
    );
    median
}

#[test]
fn restore_time_is_measured() {
    let test = "restore_time_is_measured";
    let Some(lab) = lab_or_skip(test, "rt") else {
        return;
    };
    const RUNS: usize = 20;
    let arps = ArpWatch::start(&lab.ns("h2"));
    let ns = lab.ns("h1");
    let (deletions, back) = lab::in_namespace(&ns, || async {
        let mut f = failover(150).await;
        reach(&f, State::Master).await;
        // The takeover's own burst is over.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let netlink = NetlinkManager::new().expect("netlink");
        let mut watch = netlink.watch().expect("watch").expect("netlink notifies");
        let (mut deletions, mut back) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let deleted = Instant::now();
            netlink.remove(&vip()).await.expect("netlink");
            loop {
                let change = tokio::time::timeout(Duration::from_secs(2), watch.next())
                    .await
                    .expect("the VIP back within 2 s")
                    .expect("the watch runs");
                if let Change::Added { address, .. } = change
                    && address == vip().address
                {
                    break;
                }
            }
            back.push(deleted.elapsed());
            deletions.push(deleted);
            // Let the burst go out before the next deletion.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stats = f.reconcile_stats().expect("netlink reconciles");
        assert_eq!(stats.restored, RUNS as u64, "{stats:?}");
        event(&mut f, Duration::from_secs(1), |e| {
            matches!(e, FailoverEvent::Restored(_))
        })
        .await;
        drop(f.stop().await);
        (deletions, back)
    });
    let arps = arps.finish();
    let to_garp: Vec<Duration> = deletions
        .iter()
        .map(|d| {
            let first = arps
                .iter()
                .find(|a| *a > d)
                .expect("a gratuitous ARP after every deletion");
            first.duration_since(*d)
        })
        .collect();
    let back = summary("netlink delete -> VIP back (notification)", back);
    let garp = summary(
        "netlink delete -> first gratuitous ARP at the other host",
        to_garp,
    );
    assert!(back < Duration::from_millis(500), "median {back:?}");
    assert!(garp < Duration::from_millis(500), "median {garp:?}");
}

/// The comparison for BENCHMARKS.md (a measurement, not a check: run it with `--ignored
/// --nocapture`): keepalived as Master (alone, then with a keepalived Backup on h2), its VIP
/// deleted by hand, then where the VIP is and when, with keepalived's log lines about it.
#[test]
#[ignore = "a measurement for BENCHMARKS.md"]
fn keepalived_after_ip_addr_del_is_measured() {
    let test = "keepalived_after_ip_addr_del_is_measured";
    let tools = [("ip", "-V"), ("keepalived", "-v")];
    if lab::netlab_or_skip(test, &tools).is_none() {
        return;
    }
    eprintln!("{}", version("keepalived"));
    for (mode, peer) in [
        (V3_IPV4_100MS, false),
        (V3_IPV4_100MS, true),
        (lab::vrrp::V2_1S, false),
        (lab::vrrp::V2_1S, true),
    ] {
        let netlab = lab::prerequisites(&tools).expect("checked");
        let mut lab = Lab::up(netlab, "rk", mode);
        lab.keepalived("h1", 150, mode);
        lab.wait_vip("h1", "h2", mode.election() * 2);
        if peer {
            lab.keepalived("h2", 100, mode);
        }
        std::thread::sleep(mode.election());
        let deleted = Instant::now();
        lab.ip("h1", &format!("addr del {VIP} dev eth0"));
        let (mut on_h1, mut on_h2) = (None, None);
        while deleted.elapsed() < Duration::from_secs(10) && on_h1.is_none() && on_h2.is_none() {
            if lab.has_vip("h1") {
                on_h1 = Some(deleted.elapsed());
            }
            if lab.has_vip("h2") {
                on_h2 = Some(deleted.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_secs(1));
        let log = lab.log("h1.keepalived.log");
        let told: Vec<&str> = log
            .lines()
            .skip_while(|l| !l.contains("removed from eth0"))
            .take(4)
            .collect();
        eprintln!(
            "{}, {}: `ip addr del` on the Master -> VIP on h1 after {on_h1:?}, on h2 after {on_h2:?} (watched 10 s); h1 then: {:?}\n  {}",
            mode.name,
            if peer { "with a Backup" } else { "alone" },
            (lab.has_vip("h1"), lab.has_vip("h2")),
            told.join("\n  ")
        );
    }
}

fn version(program: &str) -> String {
    let out = std::process::Command::new(program)
        .arg("-v")
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text
        })
        .unwrap_or_default();
    out.lines().next().unwrap_or_default().to_owned()
}
