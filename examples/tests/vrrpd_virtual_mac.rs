//! vrrpd's `virtual_mac = true` (the virtual router MAC on a macvlan, keepalived's
//! `use_vmac`), against vrrpd and against keepalived with `use_vmac`, both ways: the Master
//! holds the VIP on `vrrp.51`, the client's neighbour entry for the VIP is
//! `00:00:5e:00:01:33`; the Master stops (priority 0), the other takes over, and the client
//! reaches the VIP again with the same entry, nothing to re-learn; a steady ping sees no gap
//! longer than Master_Down_Interval + 0.5 s. keepalived's hosts get the
//! parent's `arp_ignore` / `arp_announce` its documentation asks of an operator; vrrpd sets
//! them itself.
//!
//! And the mixed pair: vrrpd without `virtual_mac` (the VIP on `eth0`, at its own MAC) against
//! keepalived with `use_vmac`, both ways: the client's entry moves between the two MACs with
//! the new Master's gratuitous ARPs, within the same bound.
//!
//! Needs root, iproute2 and keepalived; under `CI` a missing prerequisite fails the test.

mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::client::{Pinger, longest_gap, neighbour, now, pings, settled};
use lab::vrrp::{Lab, V3_IPV4_100MS};

const VMAC: &str = "00:00:5e:00:01:33";
const VIP: &str = "10.99.0.200";

/// Whether `host` holds the VIP on `device`.
fn holds(lab: &Lab, host: &str, device: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &lab.ns(host), "-o", "addr", "show", "dev", device])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).contains("10.99.0.200/24")
}

/// One side of the pair: who runs on which host, and where its VIP and MAC are.
struct Side {
    host: &'static str,
    /// "vrrpd" or "keepalived".
    who: &'static str,
    /// On the virtual MAC (keepalived always is here: `use_vmac`).
    vmac: bool,
}

impl Side {
    /// The device that holds the VIP when this side is Master.
    fn device(&self) -> &'static str {
        if self.vmac { "vrrp.51" } else { "eth0" }
    }

    /// The MAC the client should have for the VIP when this side is Master.
    fn mac(&self, lab: &Lab) -> String {
        if self.vmac {
            VMAC.to_owned()
        } else {
            lab.mac(self.host)
        }
    }
}

/// The VIP on `holder`'s device alone, and the client reaching it: how long that took.
fn wait_on(lab: &Lab, holder: &Side, other: &Side, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if holds(lab, holder.host, holder.device())
            && !holds(lab, other.host, other.device())
            && pings(lab, VIP)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "VIP not on {}'s {} alone within {within:?}; logs in {}",
            holder.host,
            holder.device(),
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `master` and `backup` are "vrrpd" or "keepalived"; `vrrpd_vmac` is vrrpd's `virtual_mac`.
fn handover(master: &'static str, backup: &'static str, vrrpd_vmac: bool) {
    let test = format!(
        "vrrpd_virtual_mac {master} -> {backup}{}",
        if vrrpd_vmac {
            ""
        } else {
            " (vrrpd without virtual_mac)"
        }
    );
    let Some(netlab) = lab::netlab_or_skip(
        &test,
        &[("ip", "-V"), ("keepalived", "--version"), ("ping", "-V")],
    ) else {
        return;
    };
    let m = V3_IPV4_100MS;
    let tag = format!(
        "v{}{}{}",
        &master[..1],
        &backup[..1],
        if vrrpd_vmac { "" } else { "n" }
    );
    let mut lab = Lab::up(netlab, &tag, m);
    let side = |host, who| Side {
        host,
        who,
        vmac: who == "keepalived" || vrrpd_vmac,
    };
    let (first, second) = (side("h1", master), side("h2", backup));
    let start = |lab: &mut Lab, s: &Side, priority: u8| match s.who {
        "vrrpd" => lab.vrrpd_with(
            s.host,
            priority,
            m,
            if s.vmac { "virtual_mac = true\n" } else { "" },
        ),
        _ => {
            // What keepalived's documentation has an operator set for `use_vmac` (vrrpd sets
            // it itself): the parent neither answers ARP for the VIP nor names it as the
            // sender of its own requests, or clients learn the VIP at the parent's MAC.
            for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                lab.ip_netns_exec(
                    s.host,
                    &[
                        "sysctl",
                        "-qw",
                        &format!("net.ipv4.conf.eth0.{key}={value}"),
                    ],
                );
            }
            lab.keepalived_with(s.host, priority, m, "  use_vmac\n")
        }
    };
    let master_child = start(&mut lab, &first, 101);
    wait_on(&lab, &first, &second, m.election());
    start(&mut lab, &second, 100);
    std::thread::sleep(Duration::from_millis(500));
    wait_on(&lab, &first, &second, Duration::from_secs(2));
    let entry = neighbour(&lab, VIP);
    let before = first.mac(&lab);
    assert!(
        entry.contains(&before),
        "{test}: the client's entry is the Master's {before}: {entry}"
    );

    let pinger = Pinger::start(&lab, &tag, VIP);
    settled(&pinger, now(), Duration::from_secs(5));
    let stopping = Instant::now();
    let stopped_at = now();
    if master == "vrrpd" {
        lab.stop(master_child);
    } else {
        lab.terminate(master_child);
    }
    wait_on(&lab, &second, &first, Duration::from_secs(3));
    let took = stopping.elapsed();
    settled(&pinger, now(), Duration::from_secs(5));
    let gap = longest_gap(&pinger.replies(), stopped_at, now());
    let entry = neighbour(&lab, VIP);
    let after = second.mac(&lab);
    assert!(
        entry.contains(&after),
        "{test}: the client's entry is the new Master's {after}: {entry}"
    );
    // Master_Down_Interval of the priority-100 Backup at 100 ms, plus the 0.5 s.
    assert!(
        gap <= 0.361 + 0.5,
        "{test}: the client went {gap:.3} s without a reply"
    );
    eprintln!(
        "{test}: stop -> VIP on h2 after {took:?}; the client's longest gap {gap:.3} s, entry {before} -> {after}"
    );
}

#[test]
fn vrrpd_hands_the_virtual_mac_over_to_vrrpd() {
    handover("vrrpd", "vrrpd", true);
}

#[test]
fn vrrpd_hands_the_virtual_mac_over_to_keepalived_use_vmac() {
    handover("vrrpd", "keepalived", true);
}

#[test]
fn keepalived_use_vmac_hands_the_virtual_mac_over_to_vrrpd() {
    handover("keepalived", "vrrpd", true);
}

#[test]
fn vrrpd_without_virtual_mac_hands_over_to_keepalived_use_vmac() {
    handover("vrrpd", "keepalived", false);
}

#[test]
fn keepalived_use_vmac_hands_over_to_vrrpd_without_virtual_mac() {
    handover("keepalived", "vrrpd", false);
}
