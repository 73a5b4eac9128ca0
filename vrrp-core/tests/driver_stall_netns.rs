//! A Backup whose process stops running for longer than Master_Down_Interval (a busy machine,
//! SIGSTOP) while its Master keeps advertising: when it runs again, the adverts waiting in its
//! socket arrived before the deadline that also fired meanwhile, and the driver hears them
//! first. Before, the deadline won (biased `select!`): the Backup became Master for nothing
//! and stepped back at the next advert it read, both hosts holding the VIP in between (seen
//! in the 30-minute soak of `bench/soak.py` on a loaded machine).
//!
//! Two network namespaces joined by a veth pair, one driver in each on its own thread
//! (VRRPv3, 100 ms adverts); the Backup's runtime thread is blocked for 1 s by a task of its
//! own. Needs root and iproute2; without them the test says so and passes, except under `CI`.

#![cfg(feature = "tokio")]

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::Command as Cmd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;
use vrrp_core::driver::{Command, Driver, DriverEvent, VrrpSocket};
use vrrp_core::packet::{AddressFamily, AdvertInterval, Priority, Vrid};
use vrrp_core::{Config, Event, Router, State};

fn ip(args: &[&str]) -> bool {
    Cmd::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Deletes the namespaces when dropped, also when an assertion fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            ip(&["netns", "del", ns]);
        }
    }
}

fn config(primary: IpAddr, priority: u8) -> Config {
    let mut c = Config::new(
        Vrid::new(77).expect("non-zero"),
        primary,
        vec![IpAddr::from([10, 97, 0, 200])],
    );
    c.priority = Priority::new(priority);
    c.advert_interval = AdvertInterval::from_centis(10).expect("100 ms");
    c
}

type Seen = (&'static str, Instant, Event);

/// A driver for `config` in namespace `ns` on its own thread; `stall` blocks that thread.
fn spawn(
    ns: &str,
    source: IpAddr,
    config: Config,
    name: &'static str,
    events: mpsc::Sender<Seen>,
) -> (
    tokio_mpsc::UnboundedSender<Command>,
    tokio_mpsc::UnboundedSender<Duration>,
    std::thread::JoinHandle<()>,
) {
    let (commands, rx) = tokio_mpsc::unbounded_channel();
    let (stall, mut stalls) = tokio_mpsc::unbounded_channel::<Duration>();
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace file");
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let socket = VrrpSocket::open("eth0", AddressFamily::Ipv4, source).expect("socket");
            let (tx, mut driver_events) = tokio_mpsc::unbounded_channel::<DriverEvent>();
            tokio::spawn(async move {
                while let Some(d) = stalls.recv().await {
                    std::thread::sleep(d); // the whole runtime (this thread) stops
                }
            });
            let forward = tokio::spawn(async move {
                while let Some(e) = driver_events.recv().await {
                    let _ = events.send((name, Instant::now(), e.event));
                }
            });
            let router = Router::new(config).expect("valid config");
            let _ = Driver::new(socket, vec![router]).run(rx, tx).await;
            let _ = forward.await;
        });
    });
    (commands, stall, thread)
}

fn became(seen: &[Seen], who: &str, state: State) -> Vec<Instant> {
    seen.iter()
        .filter(|(n, _, e)| {
            *n == who && matches!(e, Event::StateChanged { to, .. } if *to == state)
        })
        .map(|(_, at, _)| *at)
        .collect()
}

#[test]
fn a_stalled_backup_hears_the_queued_adverts_before_its_deadline() {
    let tag = std::process::id() % 100_000;
    let (a, b) = (format!("vst{tag}a"), format!("vst{tag}b"));
    if !ip(&["netns", "add", &a]) {
        assert!(std::env::var_os("CI").is_none(), "needs root and iproute2");
        eprintln!("skipped: needs root and iproute2 (ip netns add)");
        return;
    }
    let _cleanup = Namespaces(vec![a.clone(), b.clone()]);
    assert!(ip(&["netns", "add", &b]));
    assert!(ip(&[
        "link", "add", "eth0", "netns", &a, "type", "veth", "peer", "name", "eth0", "netns", &b
    ]));
    for (ns, addr) in [(&a, "10.97.0.1/24"), (&b, "10.97.0.2/24")] {
        assert!(ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"]));
        assert!(ip(&["-n", ns, "link", "set", "eth0", "up"]));
        assert!(ip(&["-n", ns, "link", "set", "lo", "up"]));
    }
    let (tx, events) = mpsc::channel();
    let master_ip = IpAddr::from([10, 97, 0, 1]);
    let backup_ip = IpAddr::from([10, 97, 0, 2]);
    let (stop_a, _, thread_a) = spawn(&a, master_ip, config(master_ip, 200), "master", tx.clone());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while became(&seen, "master", State::Master).is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            events
                .recv_timeout(left)
                .expect("the first router becomes Master"),
        );
    }
    let (stop_b, stall_b, thread_b) = spawn(&b, backup_ip, config(backup_ip, 100), "backup", tx);
    // Backup, hearing the Master for a while.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(50)) {
            seen.push(e);
        }
    }
    assert!(
        !became(&seen, "backup", State::Backup).is_empty(),
        "{seen:?}"
    );
    assert!(
        became(&seen, "backup", State::Master).is_empty(),
        "{seen:?}"
    );
    // Stop the Backup's thread for 1 s (Master_Down_Interval: 0.361 s), then watch 1 s more.
    let stalled_at = Instant::now();
    stall_b
        .send(Duration::from_secs(1))
        .expect("backup running");
    let watch = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(50)) {
            seen.push(e);
        }
    }
    let _ = stop_b.send(Command::Stop);
    let _ = stop_a.send(Command::Stop);
    thread_b.join().expect("backup thread");
    thread_a.join().expect("master thread");
    let spurious: Vec<_> = became(&seen, "backup", State::Master)
        .into_iter()
        .filter(|at| *at > stalled_at)
        .collect();
    assert!(
        spurious.is_empty(),
        "the Backup took over after its stall although the Master's adverts waited in its \
         socket: {seen:?}"
    );
}
