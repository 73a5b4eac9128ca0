//! The two checksum camps of VRRPv3 over IPv4, on the wire (VRRPv3 at 100 ms):
//! - RFC 9568's message-only checksum (`checksum = "rfc9568"`) between two vrrpd: a normal
//!   election and a graceful handover;
//! - `accept-either` bridges the camps: a vrrpd Backup that accepts either stays Backup under a
//!   keepalived Master (pseudo-header) and under a vrrpd Master in the RFC 9568 camp;
//! - the camps mixed without it: both sides become Master, and the log names the fix.
//!
//! keepalived 2.2.7 only speaks the pseudo-header form; the pseudo-header camp against it is
//! in `vrrpd_keepalived.rs`. Needs root, iproute2 and keepalived; under `CI` a missing
//! prerequisite fails the test.

mod lab;

use std::time::Duration;

use lab::vrrp::{Lab, Mode, V3_IPV4_100MS};

const M: Mode = V3_IPV4_100MS;

fn netlab(test: &str) -> Option<std::path::PathBuf> {
    lab::netlab_or_skip(test, &[("ip", "-V"), ("keepalived", "--version")])
}

/// The Backup on h2 stays Backup for `adverts` advert intervals: it accepts the Master's form.
fn backup_holds(lab: &Lab, adverts: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(100 * adverts);
    while std::time::Instant::now() < until {
        assert!(
            lab.has_vip("h1") && !lab.has_vip("h2"),
            "the VIP left h1 alone: h2 does not accept h1's adverts; logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_rfc9568_camp_elects_and_hands_over() {
    let Some(netlab) = netlab("the_rfc9568_camp_elects_and_hands_over") else {
        return;
    };
    let mut lab = Lab::up(netlab, "cr", M);
    let master = lab.vrrpd_with("h1", 101, M, "checksum = \"rfc9568\"\n");
    lab.vrrpd_with("h2", 100, M, "checksum = \"rfc9568\"\n");
    lab.wait_vip("h1", "h2", M.election());
    backup_holds(&lab, 20);
    lab.stop(master);
    lab.wait_vip("h2", "h1", Duration::from_millis(300));
    assert!(lab.log("h2.vrrpd.log").contains("MasterDown"));
}

#[test]
fn accept_either_bridges_the_camps() {
    let Some(netlab) = netlab("accept_either_bridges_the_camps") else {
        return;
    };
    // keepalived (pseudo-header) Master, vrrpd accept-either Backup.
    let mut lab = Lab::up(netlab.clone(), "ce", M);
    let ka = lab.keepalived("h1", 101, M);
    lab.vrrpd_with("h2", 100, M, "checksum = \"accept-either\"\n");
    lab.wait_vip("h1", "h2", M.election());
    backup_holds(&lab, 20);
    lab.stop(ka);
    lab.wait_vip("h2", "h1", Duration::from_millis(300));
    drop(lab);
    // vrrpd RFC 9568 Master, vrrpd accept-either Backup.
    let mut lab = Lab::up(netlab, "cf", M);
    lab.vrrpd_with("h1", 101, M, "checksum = \"rfc9568\"\n");
    lab.vrrpd_with("h2", 100, M, "checksum = \"accept-either\"\n");
    lab.wait_vip("h1", "h2", M.election());
    backup_holds(&lab, 20);
    let h2 = lab.log("h2.vrrpd.log");
    assert!(!h2.contains("dropped an advert"), "{h2}");
}

#[test]
fn mixed_camps_without_accept_either_are_reported_with_the_fix() {
    let Some(netlab) = netlab("mixed_camps_without_accept_either_are_reported_with_the_fix") else {
        return;
    };
    let mut lab = Lab::up(netlab, "cm", M);
    lab.keepalived("h1", 101, M);
    lab.vrrpd_with("h2", 100, M, "checksum = \"rfc9568\"\n");
    // Neither accepts the other: both end up Master (what a real mixed segment does).
    let started = std::time::Instant::now();
    while !(lab.has_vip("h1") && lab.has_vip("h2")) {
        assert!(
            started.elapsed() < M.election(),
            "expected two Masters; logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let h2 = lab.log("h2.vrrpd.log");
    assert!(
        h2.contains("dropped an advert") && h2.contains("set `checksum = \"pseudo-header\"`"),
        "the log names the setting that accepts keepalived:\n{h2}"
    );
}
