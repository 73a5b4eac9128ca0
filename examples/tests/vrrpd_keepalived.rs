//! vrrpd against real keepalived 2.2 in a namespace lab, both ways (vrrpd Master + keepalived
//! Backup, keepalived Master + vrrpd Backup), in every mode: VRRPv3 over IPv4 (keepalived's
//! pseudo-header checksum; the RFC 9568 camp is in `vrrpd_checksum.rs`) and IPv6, VRRPv2 with
//! and without `auth_pass`, VRRPv2 and VRRPv3 unicast. Each direction runs the whole story
//! (see [`story`]): crash and takeover, restart and preemption, graceful stop and the
//! priority-0 handover, the client following each move, and never two Masters for longer
//! than one advert interval (from a capture). Also: a tracked process dying, and a crash
//! followed by a restart with `preempt = false`.
//!
//! Needs root, iproute2, tshark and keepalived; under `CI` a missing prerequisite fails.

mod lab;

use lab::vrrp::{Capture, Lab, MODES, Mode, keepalived_lab, keepalived_lab_each, two_masters};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One direction of the interop story for mode `m`: `master` ("vrrpd" or "keepalived",
/// priority 101 on h1) against the other daemon (100 on h2). The Master holds for 20 adverts
/// (the Backup accepts its adverts); it crashes (SIGKILL, address gone) and the Backup takes
/// over; it restarts and preempts back; it stops gracefully and the Backup takes over after
/// Skew_Time (priority 0), not Master_Down_Interval. After each move the client pings the VIP
/// and its neighbour entry names the new Master's MAC. A capture on h2 shows that two Masters
/// never overlapped for longer than one advert interval.
fn story(netlab: &Path, m: Mode, master: &str) {
    let tag = if master == "vrrpd" { "vk" } else { "kv" };
    let mut lab = Lab::up(netlab.to_path_buf(), tag, m);
    let interval = Duration::from_millis(u64::from(m.centis) * 10);
    let capture = Capture::start(
        &lab,
        "h2",
        "eth0",
        "ip proto 112",
        &format!("{tag}-{}", m.centis),
    );
    let start = |lab: &mut Lab, host: &str, priority: u8, daemon: &str| {
        if daemon == "vrrpd" {
            lab.vrrpd(host, priority, m)
        } else {
            lab.keepalived(host, priority, m)
        }
    };
    let backup = if master == "vrrpd" {
        "keepalived"
    } else {
        "vrrpd"
    };
    let mut first = start(&mut lab, "h1", 101, master);
    start(&mut lab, "h2", 100, backup);
    // keepalived needs a moment to start: a generous first election.
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(2));
    std::thread::sleep(interval * 20);
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "{}: {backup} must stay Backup on {master}'s adverts; logs in {}",
        m.name,
        lab.dir.display()
    );
    lab.client_reaches("h1");

    // 1. The Master's host crashes.
    let crashed = Instant::now();
    if master == "vrrpd" {
        lab.crash(first);
    } else {
        lab.crash_keepalived(first, "h1");
    }
    lab.drop_vip("h1");
    lab.wait_vip("h2", "h1", m.election());
    let takeover = crashed.elapsed();
    lab.client_reaches("h2");

    // 2. It comes back and preempts.
    let restarted = Instant::now();
    first = start(&mut lab, "h1", 101, master);
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(2));
    let preempted = restarted.elapsed();
    lab.client_reaches("h1");
    std::thread::sleep(interval * 5);

    // 3. Graceful stop: priority 0, the Backup takes over after Skew_Time.
    let stop = Instant::now();
    lab.terminate(first);
    lab.wait_vip("h2", "h1", m.election());
    let handover = stop.elapsed();
    lab.stop(first);
    lab.client_reaches("h2");
    let skew = interval * (256 - 100) / 256;
    assert!(
        handover < skew + Duration::from_millis(250),
        "{}: graceful handover took {handover:?} (Skew_Time {skew:?}): no priority 0?",
        m.name
    );
    let pcap = capture.stop();
    let overlap = two_masters(&pcap, interval);
    assert!(
        overlap <= interval + Duration::from_millis(20),
        "{}: two Masters for {overlap:?} (interval {interval:?}); capture {}",
        m.name,
        pcap.display()
    );
    eprintln!(
        "{} {master} Master, {backup} Backup: crash -> takeover {takeover:?}, restart -> preempted back {preempted:?}, stop -> handover {handover:?}, two Masters at most {overlap:?}",
        m.name
    );
}

/// The lab `tag` for `test` in the first of [`MODES`] (VRRPv3 over IPv4), where the tests
/// beyond the every-mode story run, and that mode.
fn first_mode_lab(test: &str, tag: &str) -> Option<(Lab, Mode)> {
    let m = MODES[0];
    Some((keepalived_lab(test, tag, m)?, m))
}

#[test]
fn vrrpd_and_keepalived_interoperate_both_ways_in_every_mode() {
    keepalived_lab_each(
        "vrrpd_and_keepalived_interoperate_both_ways_in_every_mode",
        &MODES,
        |netlab, m| {
            story(netlab, m, "vrrpd");
            story(netlab, m, "keepalived");
        },
    );
}

#[test]
fn a_tracked_process_that_dies_hands_the_vip_to_keepalived() {
    let Some((mut lab, m)) = first_mode_lab(
        "a_tracked_process_that_dies_hands_the_vip_to_keepalived",
        "tp",
    ) else {
        return;
    };
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
    let Some((mut lab, m)) = first_mode_lab(
        "after_a_crash_vrrpd_cleans_up_its_leftover_vip_and_preempts_or_not",
        "cr",
    ) else {
        return;
    };
    let first = lab.vrrpd("h1", 101, m);
    lab.keepalived("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    // SIGKILL: no priority 0, the VIP stays on h1; keepalived takes over after its
    // Master_Down_Interval (3 x 100 ms + skew).
    let takeover = lab.crash_until_vip(first, "h2", Duration::from_secs(3), "keepalived");
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
