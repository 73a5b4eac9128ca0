//! vrrpd's `[alerts]` in the namespace lab, against a real SMTP server (Python's aiosmtpd,
//! installed by `.ci/run`) on the Master host's loopback:
//! - every state change of the instance arrives as a mail (subject, reason, priority, host),
//!   the last one (MASTER -> INIT on a stop) included;
//! - with the SMTP server unreachable, the Backup takes over after a Master crash as fast as
//!   without alerts: delivering never delays a transition.
//!
//! Needs root, iproute2 and aiosmtpd; under `CI` a missing prerequisite fails the test.

mod lab;

use std::time::Duration;

use lab::vrrp::{Lab, V3_IPV4_100MS};

fn prerequisites(test: &str) -> Option<std::path::PathBuf> {
    let netlab = lab::netlab_or_skip(test, &[("ip", "-V")])?;
    lab::mail::aiosmtpd_or_skip(test).then_some(netlab)
}

const ALERTS_TO: &str = "\n[alerts]\nmail = { server = \"127.0.0.1:2525\", from = \"vrrpd@h1.example\", to = [\"ops@example.com\"], timeout = \"5s\" }\n";

#[test]
fn every_state_change_is_mailed_the_last_one_at_the_stop_included() {
    let Some(netlab) = prerequisites("vrrpd alerts by mail") else {
        return;
    };
    let m = V3_IPV4_100MS;
    let mut lab = Lab::up(netlab, "val", m);
    lab.ip("h1", "link set lo up");
    let maildir = lab.dir.join("h1.maildir");
    lab.spawn("h1", "python3", "h1.smtp.log", |c| {
        c.args(lab::mail::aiosmtpd_args("127.0.0.1:2525", &maildir));
    });
    std::thread::sleep(Duration::from_millis(1500)); // aiosmtpd's start (Python)
    let h1 = lab.vrrpd_with("h1", 150, m, ALERTS_TO);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());

    let took_over = lab::mail::mail_with(&maildir, "VI_1: BACKUP -> MASTER");
    for part in [
        "Subject: [vrrpd@",
        "From: vrrpd@h1.example",
        "To: ops@example.com",
        "instance: VI_1",
        "from: BACKUP",
        "to: MASTER",
        "reason: ",
        "priority: 150",
        "host: ",
        "daemon: vrrpd",
    ] {
        assert!(
            took_over.contains(part),
            "missing {part:?} in:\n{took_over}"
        );
    }
    lab::mail::mail_with(&maildir, "VI_1: INIT -> BACKUP");
    // The stop's own change goes out before the daemon exits.
    lab.stop(h1);
    let stopped = lab::mail::mail_with(&maildir, "VI_1: MASTER -> INIT");
    assert!(stopped.contains("reason: shutdown"), "{stopped}");
}

/// Crashes h1 (150, Master) and returns how long h2 (100, with `h2_extra`) took to hold the
/// VIP.
fn takeover_after_a_crash(netlab: std::path::PathBuf, tag: &str, h2_extra: &str) -> Duration {
    let m = V3_IPV4_100MS;
    let mut lab = Lab::up(netlab, tag, m);
    let h1 = lab.vrrpd("h1", 150, m);
    lab.vrrpd_with("h2", 100, m, h2_extra);
    lab.wait_vip("h1", "h2", m.election());
    // h2's alerts of INIT -> BACKUP are being tried by now.
    std::thread::sleep(Duration::from_secs(1));
    lab.crash_until_vip(h1, "h2", Duration::from_secs(10), "h2")
}

#[test]
fn an_unreachable_smtp_server_delays_no_transition() {
    let Some(netlab) = prerequisites("vrrpd alerts with a dead SMTP server") else {
        return;
    };
    // 10.99.0.250 is on the lab's segment and nobody has it: each connection waits for ARP.
    let dead = ALERTS_TO
        .replace("127.0.0.1:2525", "10.99.0.250:25")
        .replace("5s", "30s");
    let plain = takeover_after_a_crash(netlab.clone(), "vad", "");
    let with_dead_smtp = takeover_after_a_crash(netlab, "vae", &dead);
    eprintln!(
        "takeover after a crash (Master_Down_Interval 0.361 s): without alerts {plain:?}, with the SMTP server unreachable {with_dead_smtp:?}"
    );
    // Generous bounds (a shared machine): a delivery in the way would add seconds.
    assert!(
        with_dead_smtp < Duration::from_secs(1),
        "{with_dead_smtp:?}"
    );
    assert!(
        with_dead_smtp < plain + Duration::from_millis(300),
        "{with_dead_smtp:?} against {plain:?}"
    );
}
