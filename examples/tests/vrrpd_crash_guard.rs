//! The crash guard (`crash_guard`, `ip_manager::guard`) in a namespace lab: vrrpd's Master
//! SIGKILLed (as the OOM killer or a segfault ends it) sends priority 0 all the same (seen on
//! the wire) and its VIP leaves the dead host at once; the Backup takes over after Skew_Time
//! instead of Master_Down_Interval, vrrpd or keepalived alike; a Backup's guard sends nothing;
//! a clean stop leaves the guard nothing to do; a restart after the crash stays Backup for
//! `crash_hold_down` (the VIP moves once, not back at once).
//!
//! Needs root, iproute2, tshark and keepalived; under `CI` a missing prerequisite fails.

mod lab;

use lab::vrrp::{
    Capture, Lab, MODES, Mode, V2_1S, V3_IPV4_100MS, gone, keepalived_lab, keepalived_lab_each,
    tshark,
};

use std::path::Path;
use std::time::{Duration, Instant};

fn interval(m: Mode) -> Duration {
    Duration::from_millis(u64::from(m.centis) * 10)
}

/// Skew_Time of the Backup (priority 100): (256 - 100) / 256 intervals.
fn skew(m: Mode) -> Duration {
    interval(m) * 156 / 256
}

/// The priority-0 adverts in `pcap` (only the host whose daemon died could send one: the
/// other is Master or Backup throughout).
fn shutdown_adverts(pcap: &Path) -> usize {
    tshark(pcap, "vrrp.prio == 0", &["frame.number"]).len()
}

/// Waits until `cond` holds; how long that took, or `None` after `within`.
fn wait(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if cond() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// vrrpd Master (h1, 101) killed with SIGKILL against `backup` ("vrrpd" or "keepalived") on
/// h2 (100), in mode `m`: its guard sends priority 0 (captured on h2), its VIP leaves h1
/// within 100 ms, and h2 holds the VIP after Skew_Time plus a margin, well under
/// Master_Down_Interval. Returns the takeover time.
fn killed_master(netlab: &Path, m: Mode, backup: &str, tag: &str) -> Duration {
    let mut lab = Lab::up(netlab.to_path_buf(), tag, m);
    let master = lab.vrrpd("h1", 101, m);
    if backup == "vrrpd" {
        lab.vrrpd("h2", 100, m);
    } else {
        lab.keepalived("h2", 100, m);
    }
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(2));
    std::thread::sleep(interval(m) * 3);
    assert_eq!(
        lab.guards(master).len(),
        1,
        "one crash guard runs beside vrrpd"
    );
    let filter = if m.ipv6 {
        "ip6 proto 112"
    } else {
        "ip proto 112"
    };
    let capture = Capture::start(&lab, "h2", "eth0", filter, &format!("{tag}-{}", m.centis));
    let killed = Instant::now();
    let guards = lab.kill_daemon(master);
    // Both watched together: the Backup takes the address before the guard lets it go here.
    let (mut released, mut takeover) = (None, None);
    while killed.elapsed() < m.election() + Duration::from_secs(2)
        && (released.is_none() || takeover.is_none())
    {
        if takeover.is_none() && lab.has_vip("h2") {
            takeover = Some(killed.elapsed());
        }
        if released.is_none() && !lab.has_vip("h1") {
            released = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // tshark writes what it has read when it stops: give it the last packets first.
    std::thread::sleep(Duration::from_secs(1));
    let pcap = capture.stop();
    let log = lab.log("h1.vrrpd.log");
    let released = released.unwrap_or_else(|| {
        panic!(
            "{}: the VIP stayed on the dead Master's host; log:\n{log}",
            m.name
        )
    });
    let takeover = takeover.unwrap_or_else(|| panic!("{}: {backup} never took over", m.name));
    // The guard keeps the address one interval after its priority 0 (the hand-over: new
    // connections refused, not black-holed, until the Backup announces itself).
    assert!(
        released >= interval(m)
            && released < interval(m) + Duration::from_millis(500)
            && released > takeover,
        "{}: the VIP left the dead host after {released:?} (on the Backup after {takeover:?})",
        m.name
    );
    assert!(
        shutdown_adverts(&pcap) >= 1,
        "{}: no priority-0 advert on the wire ({}); log:\n{log}",
        m.name,
        pcap.display()
    );
    assert!(
        log.contains("priority 0 sent to 1 of 1 destinations"),
        "{log}"
    );
    assert!(log.contains("1 of 1 virtual addresses removed"), "{log}");
    // Skew_Time, not Master_Down_Interval (3 intervals + skew): generous for a noisy machine.
    let bound = skew(m) + interval(m) / 2 + Duration::from_millis(400);
    assert!(
        takeover < bound,
        "{}: {backup} took over after {takeover:?} (Skew_Time {:?}, bound {bound:?}): the guard's priority 0 was not heeded",
        m.name,
        skew(m)
    );
    assert!(
        wait(Duration::from_secs(2), || guards.iter().all(|g| gone(*g))).is_some(),
        "the guard ends after acting"
    );
    lab.client_reaches("h2");
    eprintln!(
        "{}: vrrpd Master SIGKILLed, {backup} Backup: VIP off the dead host after {released:?}, on the Backup after {takeover:?} (Skew_Time {:?})",
        m.name,
        skew(m)
    );
    takeover
}

#[test]
fn a_killed_vrrpd_master_s_guard_hands_over_to_vrrpd_in_every_mode() {
    keepalived_lab_each(
        "a_killed_vrrpd_master_s_guard_hands_over_to_vrrpd_in_every_mode",
        &MODES,
        |netlab, m| {
            killed_master(netlab, m, "vrrpd", "gv");
        },
    );
}

#[test]
fn keepalived_backups_accept_the_guard_s_priority_0() {
    keepalived_lab_each(
        "keepalived_backups_accept_the_guard_s_priority_0",
        &[V2_1S, V3_IPV4_100MS, MODES[1], MODES[4]],
        |netlab, m| {
            killed_master(netlab, m, "keepalived", "gk");
        },
    );
}

/// A Backup's guard sends nothing when its daemon dies, and a cleanly stopped Master's guard
/// has nothing left to do (the daemon sent its own priority 0).
#[test]
fn a_backup_s_guard_sends_nothing_and_a_clean_stop_leaves_it_idle() {
    let m = V3_IPV4_100MS;
    let Some(mut lab) = keepalived_lab(
        "a_backup_s_guard_sends_nothing_and_a_clean_stop_leaves_it_idle",
        "gb",
        m,
    ) else {
        return;
    };
    let (master, backup) = lab.vrrpd_pair(m, 101, 100);
    std::thread::sleep(interval(m) * 5);
    let capture = Capture::start(&lab, "h1", "eth0", "ip proto 112", "gb");
    let guards = lab.kill_daemon(backup);
    assert_eq!(guards.len(), 1);
    assert!(
        wait(Duration::from_secs(2), || gone(guards[0])).is_some(),
        "the Backup's guard ends"
    );
    std::thread::sleep(interval(m) * 10 + Duration::from_secs(1));
    let pcap = capture.stop();
    assert_eq!(
        shutdown_adverts(&pcap),
        0,
        "a Backup's guard sent priority 0 ({})",
        pcap.display()
    );
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "the Master holds on"
    );
    let log = lab.log("h2.vrrpd.log");
    assert!(
        !log.contains("died; instance"),
        "the Backup's guard acted:\n{log}"
    );

    // A clean stop: the daemon's own priority 0, and the guard ends without acting.
    let guards = lab.guards(master);
    lab.stop(master);
    assert!(wait(Duration::from_secs(2), || guards.iter().all(|g| gone(*g))).is_some());
    let log = lab.log("h1.vrrpd.log");
    assert!(
        !log.contains("died; instance"),
        "the guard acted on a clean stop:\n{log}"
    );
}

/// A crash while Master, then a supervisor's restart: the VIP moves to the Backup once and
/// stays there for `crash_hold_down` (the restarted vrrpd is Backup at priority 1), then comes
/// back; a clean restart afterwards preempts at once (no hold-down).
#[test]
fn a_restart_after_a_crash_holds_down_instead_of_bouncing_the_vip() {
    let m = V3_IPV4_100MS;
    let hold = Duration::from_secs(3);
    let Some(mut lab) = keepalived_lab(
        "a_restart_after_a_crash_holds_down_instead_of_bouncing_the_vip",
        "gr",
        m,
    ) else {
        return;
    };
    let config = |lab: &Lab, hold: &str| {
        format!(
            "status_socket = \"{}\"\ncrash_hold_down = \"{hold}\"\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 101\nversion = 3\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"{}\"]\n",
            lab.socket("h1").display(),
            m.vip()
        )
    };
    let text = config(&lab, "3s");
    let first = lab.vrrpd_config("h1", "h1", &text);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(interval(m) * 5);
    lab.kill_daemon(first);
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    // The supervisor restarts it at once.
    let restarted = Instant::now();
    let second = lab.vrrpd_config("h1", "h1-restarted", &text);
    let back = wait(hold + m.election() + Duration::from_secs(2), || {
        lab.has_vip("h1")
    });
    let back = back.unwrap_or_else(|| {
        panic!(
            "never took the VIP back after the hold-down; logs in {}",
            lab.dir.display()
        )
    });
    assert!(
        back >= hold - Duration::from_millis(200),
        "took the VIP back after {back:?}, before crash_hold_down {hold:?}: a bounce"
    );
    assert!(
        back < hold + Duration::from_secs(2),
        "took the VIP back after {back:?} (crash_hold_down {hold:?})"
    );
    lab.wait_vip("h1", "h2", Duration::from_secs(1));
    let log = lab.log("h1-restarted.vrrpd.log");
    assert!(
        log.contains("the last run died while this instance was Master"),
        "{log}"
    );
    eprintln!(
        "restart after a crash: VIP stayed on the Backup, back on the restarted Master after {back:?} (crash_hold_down {hold:?}, started {:?} ago)",
        restarted.elapsed()
    );

    // A clean stop and restart: no hold-down, it preempts at once.
    lab.stop(second);
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    lab.vrrpd_config("h1", "h1-clean", &text);
    let again = lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(1));
    assert!(again < hold, "a clean restart was held down: {again:?}");
    let log = lab.log("h1-clean.vrrpd.log");
    assert!(
        !log.contains("died while this instance was Master"),
        "{log}"
    );
}
