//! vrrpd against real keepalived 2.2 in a namespace lab, both ways, in several modes (VRRPv3
//! over IPv4 and IPv6, VRRPv2 with and without `auth_pass`, VRRPv3 unicast):
//! - vrrpd (priority 101) Master, keepalived (100) Backup: the VIP is on h1 only for 20 adverts
//!   (keepalived accepts ours); a graceful stop of vrrpd sends priority 0 and keepalived takes
//!   the VIP after Skew_Time rather than Master_Down_Interval;
//! - keepalived (101) Master, vrrpd (100) Backup: vrrpd stays Backup on keepalived's adverts;
//!   keepalived stopped (priority 0), vrrpd takes the VIP.
//!
//! Still to come (vrrpd issue): SIGKILL, preemption on/off, the v3 RFC 9568 checksum camp.
//! Needs root, iproute2 and keepalived; under `CI` a missing prerequisite fails the test.

mod lab;

use lab::vrrp::{Lab, MODES, Mode};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn prerequisites(test: &str) -> Option<PathBuf> {
    match lab::prerequisites(&[("ip", "-V"), ("keepalived", "--version")]) {
        Ok(path) => Some(path),
        Err(why) => {
            lab::skip(test, &why);
            None
        }
    }
}

fn vrrpd_master_keepalived_backup(netlab: &Path, m: Mode) {
    let mut lab = Lab::up(netlab.to_path_buf(), "vk", m);
    let vrrpd = lab.vrrpd("h1", 101, m);
    lab.keepalived("h2", 100, m);
    // vrrpd wins after its Master_Down_Interval and keeps it: the VIP on h1 only for 20
    // adverts, so keepalived accepts ours (checksum, TTL, version, auth).
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(u64::from(m.centis) * 10 * 20));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "{}: two masters or none",
        m.name
    );
    // Graceful stop: priority 0, keepalived takes over after Skew_Time, not Master_Down.
    let stop = Instant::now();
    lab.stop(vrrpd);
    lab.wait_vip("h2", "h1", m.election());
    let handover = stop.elapsed();
    let k = lab.log("h2.keepalived.log");
    assert!(
        k.contains("priority 0"),
        "{}: keepalived saw the priority-0 advert: {k}",
        m.name
    );
    // Skew_Time is (256 - 100) / 256 of an interval; allow scheduling slack.
    let bound = Duration::from_millis(u64::from(m.centis) * 10 + 500);
    assert!(handover < bound, "{}: handover took {handover:?}", m.name);
    eprintln!(
        "{}: vrrpd Master -> keepalived: VIP on h2 alone {handover:?} after the stop",
        m.name
    );
}

fn keepalived_master_vrrpd_backup(netlab: &Path, m: Mode) {
    let mut lab = Lab::up(netlab.to_path_buf(), "kv", m);
    let keepalived = lab.keepalived("h1", 101, m);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(u64::from(m.centis) * 10 * 20));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "{}: vrrpd must stay Backup on keepalived's adverts; logs in {}",
        m.name,
        lab.dir.display()
    );
    let stop = Instant::now();
    lab.stop(keepalived);
    lab.wait_vip("h2", "h1", m.election());
    let took = stop.elapsed();
    let v = lab.log("h2.vrrpd.log");
    assert!(v.contains("to=Master"), "{}: {v}", m.name);
    eprintln!(
        "{}: keepalived Master -> vrrpd: VIP on h2 alone {took:?} after the stop",
        m.name
    );
}

#[test]
fn vrrpd_and_keepalived_interoperate_both_ways_in_every_mode() {
    let Some(netlab) = prerequisites("vrrpd_and_keepalived_interoperate_both_ways_in_every_mode")
    else {
        return;
    };
    for m in MODES {
        vrrpd_master_keepalived_backup(&netlab, m);
        keepalived_master_vrrpd_backup(&netlab, m);
    }
}

#[test]
fn a_tracked_process_that_dies_hands_the_vip_to_keepalived() {
    let Some(netlab) = prerequisites("a_tracked_process_that_dies_hands_the_vip_to_keepalived")
    else {
        return;
    };
    let m = MODES[0];
    let mut lab = Lab::up(netlab, "tp", m);
    // The "haproxy": a copy of sleep under a name of its own (the kernel keeps 15 bytes).
    let name = format!("hatrack{}", std::process::id() % 100_000);
    let binary = lab.dir.join(&name);
    std::fs::copy("/bin/sleep", &binary).expect("copy sleep");
    let mut dummy = Command::new(&binary)
        .arg("600")
        .spawn()
        .expect("dummy runs");
    lab.vrrpd_with(
        "h1",
        101,
        m,
        &format!(
            "track = [{{ check = \"chk_lb\", weight = -10 }}]\n\n[[check]]\nname = \"chk_lb\"\nkind = \"process\"\nprocess = \"{name}\"\ninterval = \"50ms\"\nrise = 1\nfall = 1\n"
        ),
    );
    lab.keepalived("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.has_vip("h1") && !lab.has_vip("h2"));
    // haproxy dies: priority 101 - 10 = 91 < 100, keepalived preempts.
    let killed = Instant::now();
    dummy.kill().expect("kill");
    let _ = dummy.wait();
    lab.wait_vip("h2", "h1", Duration::from_secs(3));
    let took = killed.elapsed();
    let v = lab.log("h1.vrrpd.log");
    assert!(
        v.contains("tracked check changed") && v.contains("up=false"),
        "{v}"
    );
    // keepalived's `killall -0` every 2 s would take seconds; the check at 50 ms plus one
    // advert and keepalived's preemption take a fraction of that.
    assert!(took < Duration::from_millis(600), "took {took:?}");
    eprintln!("tracked process killed: VIP on keepalived's host after {took:?}");
}

#[test]
fn after_a_crash_vrrpd_cleans_up_its_leftover_vip_and_preempts_or_not() {
    let Some(netlab) =
        prerequisites("after_a_crash_vrrpd_cleans_up_its_leftover_vip_and_preempts_or_not")
    else {
        return;
    };
    let m = MODES[0];
    let mut lab = Lab::up(netlab, "cr", m);
    let first = lab.vrrpd("h1", 101, m);
    lab.keepalived("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    // SIGKILL: no priority 0, the VIP stays on h1; keepalived takes over after its
    // Master_Down_Interval (3 x 100 ms + skew).
    let crashed = Instant::now();
    lab.crash(first);
    while !lab.has_vip("h2") {
        assert!(
            crashed.elapsed() < Duration::from_secs(3),
            "keepalived never took over"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let takeover = crashed.elapsed();
    assert!(lab.has_vip("h1"), "a crash leaves the address behind");
    assert!(takeover >= Duration::from_millis(300), "{takeover:?}");
    // Restarted with preempt = false: the leftover address goes at start-up, and vrrpd stays
    // Backup although it has the higher priority.
    let second = lab.vrrpd_with("h1", 101, m, "preempt = false\n");
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lab.has_vip("h2") && !lab.has_vip("h1"),
        "no preemption with preempt = false"
    );
    lab.stop(second);
    // Restarted with preemption (the default): it takes the VIP back.
    lab.vrrpd("h1", 101, m);
    let back = lab.wait_vip("h1", "h2", m.election());
    eprintln!(
        "SIGKILL: keepalived took over after {takeover:?}; vrrpd preempted back after {back:?}"
    );
}
