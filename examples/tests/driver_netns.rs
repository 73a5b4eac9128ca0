//! The tokio driver on real raw sockets: two virtual routers in two namespaces of a lab, each
//! driven by a `vrrp_core::driver::Driver` on its own thread inside its namespace. The higher
//! priority becomes Master after Master_Down_Interval, the other stays Backup on its adverts
//! (which proves the multicast join, TTL 255 on send and the TTL read on receive); a graceful
//! stop sends priority 0 and the Backup takes over after Skew_Time, well before Master_Down.
//! A second router added to each running driver (`Command::Add`) elects its own Master; removed
//! again (`Command::Remove`), it hands over with priority 0 while the first runs on untouched,
//! as a snapshot (`Command::Snapshot`) shows. Run over IPv4 (VRRPv3, 100 ms adverts) and IPv6 (link-local sources, hop limit from the
//! ancillary data).
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;
use vrrp_core::driver::{Command, Driver, DriverEvent, DriverSnapshot, VrrpSocket};
use vrrp_core::packet::{AddressFamily, AdvertInterval, Priority, Vrid};
use vrrp_core::{Config, Event, Router, State};

/// One router running in namespace `netns` on its own thread.
struct Running {
    commands: tokio_mpsc::UnboundedSender<Command>,
    thread: std::thread::JoinHandle<std::io::Result<vrrp_core::driver::DriverStats>>,
}

/// What the routers tell the test: who, which VRID, when it arrived, what.
type Seen = (&'static str, u8, Instant, Event);

/// Runs a driver for `config` on `eth0` of `netns`, sending its events (with the wall-clock
/// instant they arrived) to `events` tagged with `name`.
fn spawn_router(
    netns: &str,
    family: AddressFamily,
    source: IpAddr,
    config: Config,
    name: &'static str,
    events: mpsc::Sender<Seen>,
) -> Running {
    let (commands, rx) = tokio_mpsc::unbounded_channel();
    let path = PathBuf::from("/run/netns").join(netns);
    let thread = std::thread::spawn(move || {
        // Sockets belong to the namespace of the thread that opens them.
        let ns = std::fs::File::open(&path).expect("namespace file");
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let socket = VrrpSocket::open("eth0", family, source).expect("raw socket");
            let router = Router::new(config).expect("valid config");
            let (tx, mut driver_events) = tokio_mpsc::unbounded_channel::<DriverEvent>();
            let forward = tokio::spawn(async move {
                while let Some(e) = driver_events.recv().await {
                    let _ = events.send((name, e.vrid.get(), Instant::now(), e.event));
                }
            });
            let stats = Driver::new(socket, vec![router]).run(rx, tx).await;
            let _ = forward.await;
            stats
        })
    });
    Running { commands, thread }
}

/// The drivers' events: those still to come, and those seen.
struct Heard {
    events: mpsc::Receiver<Seen>,
    seen: Vec<Seen>,
}

impl Heard {
    /// Waits up to `within` for `who`'s router `vrid` to become Master; returns when it did.
    fn master(&mut self, (who, vrid): (&str, u8), within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            if let Some((_, _, at, _)) = self.seen.iter().find(|(n, v, _, e)| {
                *n == who
                    && *v == vrid
                    && matches!(
                        e,
                        Event::StateChanged {
                            to: State::Master,
                            ..
                        }
                    )
            }) {
                return *at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => self.seen.push(e),
                Err(_) => panic!(
                    "{who} VRID {vrid} did not become Master within {within:?}; events: {:?}",
                    self.seen
                ),
            }
        }
    }
}

/// The driver's answer to `Command::Snapshot`.
fn snapshot(r: &Running) -> DriverSnapshot {
    let (reply, answer) = tokio::sync::oneshot::channel();
    r.commands
        .send(Command::Snapshot(reply))
        .expect("driver running");
    answer.blocking_recv().expect("the driver answers")
}

fn link_local(prefix: &str, host: &str) -> IpAddr {
    // Wait out duplicate address detection: a tentative address cannot be bound.
    for _ in 0..100 {
        let out = std::process::Command::new("ip")
            .args([
                "-n",
                &format!("{prefix}{host}"),
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                "eth0",
                "scope",
                "link",
            ])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains("tentative")
            && let Some(addr) = text
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse().ok())
        {
            return addr;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no usable link-local address on {prefix}{host}");
}

fn config(vrid: u8, primary: IpAddr, vip: IpAddr, priority: u8) -> Config {
    let mut c = Config::new(Vrid::new(vrid).expect("vrid"), primary, vec![vip]);
    c.priority = Priority::new(priority);
    c.advert_interval = AdvertInterval::from_centis(10).expect("100 ms");
    c
}

fn run_pair(netlab: &lab::Netlab, family: AddressFamily) {
    netlab.up();
    let prefix = &netlab.prefix;
    let (s1, s2, vip): (IpAddr, IpAddr, IpAddr) = match family {
        AddressFamily::Ipv4 => (
            "10.99.0.11".parse().expect("ip"),
            "10.99.0.12".parse().expect("ip"),
            "10.99.0.200".parse().expect("ip"),
        ),
        AddressFamily::Ipv6 => (
            link_local(prefix, "h1"),
            link_local(prefix, "h2"),
            "fd99::200".parse().expect("ip"),
        ),
    };
    let (tx, events) = mpsc::channel();
    let mut heard = Heard {
        events,
        seen: Vec::new(),
    };
    let started = Instant::now();
    // VRID 51 on h1 (priority 200) and h2 (100).
    let [h1, h2] = [("h1", s1, 200), ("h2", s2, 100)].map(|(host, source, priority)| {
        let config = config(51, source, vip, priority);
        spawn_router(&netlab.ns(host), family, source, config, host, tx.clone())
    });
    // Both start as Backup; h1 (200) wins after its Master_Down_Interval:
    // 3 × 100 ms + (256 − 200) × 100 ms / 256 ≈ 322 ms.
    let h1_master = heard.master(("h1", 51), Duration::from_secs(3));
    let took = h1_master - started;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // h2 hears h1's adverts and stays Backup for a while (3 s = 30 adverts).
    std::thread::sleep(Duration::from_secs(3));
    while let Ok(e) = heard.events.try_recv() {
        heard.seen.push(e);
    }
    assert!(
        !heard.seen.iter().any(|(n, _, _, e)| *n == "h2"
            && matches!(
                e,
                Event::StateChanged {
                    to: State::Master,
                    ..
                }
            )),
        "h2 must stay Backup while it hears h1: {:?}",
        heard.seen
    );
    // A second router on each running driver, VRID 52: h1 (200) wins it, VRID 51 untouched.
    let vip2: IpAddr = match family {
        AddressFamily::Ipv4 => "10.99.0.201".parse().expect("ip"),
        AddressFamily::Ipv6 => "fd99::201".parse().expect("ip"),
    };
    for (h, source, priority) in [(&h1, s1, 200), (&h2, s2, 100)] {
        let router = Router::new(config(52, source, vip2, priority)).expect("valid config");
        h.commands
            .send(Command::Add(Box::new(router)))
            .expect("driver running");
    }
    heard.master(("h1", 52), Duration::from_secs(3));
    let before = snapshot(&h1);
    let states: Vec<(u8, State)> = before
        .routers
        .iter()
        .map(|r| (r.vrid.get(), r.state))
        .collect();
    assert_eq!(states, [(51, State::Master), (52, State::Master)]);
    assert_eq!(
        before.routers[0].stats.transitions, 2,
        "INIT, BACKUP, MASTER"
    );
    // VRID 52 removed from h1: its priority-0 advert hands it to h2 after Skew_Time.
    let removed = Instant::now();
    h1.commands
        .send(Command::Remove {
            vrid: Vrid::new(52).expect("vrid"),
        })
        .expect("driver running");
    let h2_52 = heard.master(("h2", 52), Duration::from_secs(2));
    let removal_handover = h2_52.saturating_duration_since(removed);
    assert!(
        removal_handover < Duration::from_millis(250),
        "priority-0 handover of a removed router took {removal_handover:?}"
    );
    let last_52 = heard
        .seen
        .iter()
        .rfind(|(n, v, _, _)| *n == "h1" && *v == 52)
        .map(|(_, _, _, e)| e.clone());
    assert!(
        matches!(
            last_52,
            Some(Event::StateChanged {
                to: State::Initialize,
                ..
            })
        ),
        "the removed router's last event: {last_52:?}"
    );
    // VRID 51 keeps advertising (its next advert may be up to one interval away).
    let mut after = snapshot(&h1);
    let waiting = Instant::now();
    while after.routers.first().map(|r| r.stats.sent) <= Some(before.routers[0].stats.sent)
        && waiting.elapsed() < Duration::from_millis(500)
    {
        std::thread::sleep(Duration::from_millis(20));
        after = snapshot(&h1);
    }
    assert_eq!(after.routers.len(), 1);
    assert_eq!(after.routers[0].state, State::Master);
    assert_eq!(after.routers[0].stats.transitions, 2, "VRID 51 untouched");
    assert!(after.routers[0].stats.sent > before.routers[0].stats.sent);
    // Graceful stop of h1: priority 0, h2 takes over after Skew_Time (≈ 61 ms), far sooner
    // than its Master_Down_Interval (≈ 361 ms).
    let stop = Instant::now();
    h1.commands.send(Command::Stop).expect("driver running");
    let stats = h1.thread.join().expect("thread").expect("driver ran");
    let h2_master = heard.master(("h2", 51), Duration::from_secs(2));
    let handover = h2_master.saturating_duration_since(stop);
    assert!(
        handover < Duration::from_millis(250),
        "priority-0 handover took {handover:?}"
    );
    assert_eq!(stats.malformed, 0);
    h2.commands.send(Command::Stop).expect("driver running");
    h2.thread.join().expect("thread").expect("driver ran");
    eprintln!(
        "{family:?}: h1 Master after {took:?}; a removed router handed over {removal_handover:?} \
         after Remove; handover to h2 {handover:?} after the stop"
    );
}

#[test]
fn two_drivers_elect_a_master_and_hand_over_on_stop_ipv4_and_ipv6() {
    let test = "two_drivers_elect_a_master_and_hand_over_on_stop";
    let Some(netlab) = lab::Netlab::or_skip(test, "dr") else {
        return;
    };
    run_pair(&netlab, AddressFamily::Ipv4);
    run_pair(&netlab, AddressFamily::Ipv6);
}
