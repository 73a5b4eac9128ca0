//! vrrpd's `virtual_mac = true` (the virtual router MAC on a macvlan, keepalived's
//! `use_vmac`), against vrrpd and against keepalived with `use_vmac`, both ways: the Master
//! holds the VIP on `vrrp.51`, the client's neighbour entry for the VIP is
//! `00:00:5e:00:01:33`; the Master stops (priority 0), the other takes over, and the client
//! reaches the VIP again with the same entry, nothing to re-learn; a steady ping sees no gap
//! longer than Master_Down_Interval + 0.5 s. keepalived's hosts get the
//! parent's `arp_ignore` / `arp_announce` its documentation asks of an operator; vrrpd sets
//! them itself.
//!
//! Needs root, iproute2 and keepalived; under `CI` a missing prerequisite fails the test.

mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::client::{Pinger, longest_gap, neighbour, now, pings, settled};
use lab::vrrp::{Lab, V3_IPV4_100MS};

const VMAC: &str = "00:00:5e:00:01:33";
const VIP: &str = "10.99.0.200";

fn holds(lab: &Lab, host: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &lab.ns(host), "-o", "addr", "show", "dev", "vrrp.51"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).contains("10.99.0.200/24")
}

/// The VIP on `host`'s macvlan alone, and the client reaching it: how long that took.
fn wait_on(lab: &Lab, host: &str, other: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if holds(lab, host) && !holds(lab, other) && pings(lab, VIP) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "VIP not on {host}'s vrrp.51 alone within {within:?}; logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `master` and `backup` are "vrrpd" or "keepalived".
fn handover(master: &str, backup: &str) {
    let test = format!("vrrpd_virtual_mac {master} -> {backup}");
    let Some(netlab) = lab::netlab_or_skip(
        &test,
        &[("ip", "-V"), ("keepalived", "--version"), ("ping", "-V")],
    ) else {
        return;
    };
    let m = V3_IPV4_100MS;
    let tag = format!("v{}{}", &master[..1], &backup[..1]);
    let mut lab = Lab::up(netlab, &tag, m);
    let start = |lab: &mut Lab, who: &str, host: &str, priority: u8| match who {
        "vrrpd" => lab.vrrpd_with(host, priority, m, "virtual_mac = true\n"),
        _ => {
            // What keepalived's documentation has an operator set for `use_vmac` (vrrpd sets
            // it itself): the parent neither answers ARP for the VIP nor names it as the
            // sender of its own requests, or clients learn the VIP at the parent's MAC.
            for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                lab.ip_netns_exec(
                    host,
                    &[
                        "sysctl",
                        "-qw",
                        &format!("net.ipv4.conf.eth0.{key}={value}"),
                    ],
                );
            }
            lab.keepalived_with(host, priority, m, "  use_vmac\n")
        }
    };
    let first = start(&mut lab, master, "h1", 101);
    wait_on(&lab, "h1", "h2", m.election());
    start(&mut lab, backup, "h2", 100);
    std::thread::sleep(Duration::from_millis(500));
    wait_on(&lab, "h1", "h2", Duration::from_secs(2));
    let entry = neighbour(&lab, VIP);
    assert!(
        entry.contains(VMAC),
        "{test}: the client's entry is the virtual MAC: {entry}"
    );

    let pinger = Pinger::start(&lab, &tag, VIP);
    settled(&pinger, now(), Duration::from_secs(5));
    let stopping = Instant::now();
    let stopped_at = now();
    if master == "vrrpd" {
        lab.stop(first);
    } else {
        lab.terminate(first);
    }
    wait_on(&lab, "h2", "h1", Duration::from_secs(3));
    let took = stopping.elapsed();
    settled(&pinger, now(), Duration::from_secs(5));
    let gap = longest_gap(&pinger.replies(), stopped_at, now());
    let entry = neighbour(&lab, VIP);
    assert!(
        entry.contains(VMAC),
        "{test}: still the virtual MAC: {entry}"
    );
    // Master_Down_Interval of the priority-100 Backup at 100 ms, plus the 0.5 s.
    assert!(
        gap <= 0.361 + 0.5,
        "{test}: the client went {gap:.3} s without a reply"
    );
    eprintln!(
        "{test}: stop -> VIP on h2 after {took:?}; the client's longest gap {gap:.3} s, same entry"
    );
}

#[test]
fn vrrpd_hands_the_virtual_mac_over_to_vrrpd() {
    handover("vrrpd", "vrrpd");
}

#[test]
fn vrrpd_hands_the_virtual_mac_over_to_keepalived_use_vmac() {
    handover("vrrpd", "keepalived");
}

#[test]
fn keepalived_use_vmac_hands_the_virtual_mac_over_to_vrrpd() {
    handover("keepalived", "vrrpd");
}
