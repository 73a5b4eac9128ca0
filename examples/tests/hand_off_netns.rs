//! `VipApplier::hand_off` through the public API, IPv4 and IPv6, with a new Master that says
//! nothing (as FRR, taking back an address its macvlan held all along): h1's applier holds the
//! VIP and announces it, the client's neighbour entry is h1's MAC; h2 adds the VIP without a
//! word; h1's applier is told that h2 preempted it (h2's address as an advert would carry it:
//! IPv4 its primary, IPv6 its link-local), which h1's neighbour table does not know (flushed),
//! and hands the address over. The client's entry must name h2's MAC before the client sends
//! anything, and the client reach the VIP; on the wire, the frames naming h2's MAC come from h1
//! (gratuitous ARPs; unsolicited NAs with Override, hop limit 255), none from h2.
//!
//! Needs root, iproute2, ping and tshark; under `CI` a missing prerequisite fails the test.

mod lab;

use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ip_manager::failover::VipApplier;
use ip_manager::{AnnounceConfig, Announcer, NetlinkManager, Vip};
use lab::client::{neighbour, pings};
use lab::vrrp::{Capture, Lab, MODES, V3_IPV4_100MS, tshark};
use tokio::sync::oneshot;
use vrrp_core::packet::Priority;
use vrrp_core::{Event, Reason, State};

fn ip_out(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// h2's address as its adverts carry it: IPv4 its primary, IPv6 its link-local.
fn h2_address(lab: &Lab, ipv6: bool) -> IpAddr {
    if !ipv6 {
        return lab.mode.addr("h2").parse().expect("an address");
    }
    let out = ip_out(
        &lab.ns("h2"),
        &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
    );
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("h2 has no link-local address: {out}"))
}

fn hand_off(ipv6: bool) {
    let test = format!("hand_off_netns {}", if ipv6 { "IPv6" } else { "IPv4" });
    let Some(netlab) = lab::netlab_or_skip(
        &test,
        &[("ip", "-V"), ("ping", "-V"), ("tshark", "--version")],
    ) else {
        return;
    };
    let m = if ipv6 { MODES[1] } else { V3_IPV4_100MS };
    let lab = Lab::up(netlab, if ipv6 { "ho6" } else { "ho4" }, m);
    let vip = m.vip().split('/').next().unwrap_or_default();
    let (h1_mac, h2_mac) = (lab.mac("h1"), lab.mac("h2"));
    let peer = h2_address(&lab, ipv6);
    let capture = Capture::start(&lab, "sw", "br0", "arp or icmp6", &test.replace(' ', "-"));

    // h1's applier, stepped by the test: Master, then preempted by h2.
    let (mastered, wait_mastered) = std::sync::mpsc::channel();
    let (preempt, preempted) = oneshot::channel::<()>();
    let (handed, wait_handed) = std::sync::mpsc::channel();
    let vip_text = m.vip().to_owned();
    let h1 = lab::spawn_in_namespace(&lab.ns("h1"), move || async move {
        let netlink = NetlinkManager::new().expect("netlink");
        let config = AnnounceConfig {
            refresh_delay: None,
            ..AnnounceConfig::default()
        };
        let announcer = Announcer::new(&netlink, "eth0", config)
            .await
            .expect("announcer");
        let vip = Vip::parse(&vip_text, "eth0").expect("a VIP");
        let mut applier = VipApplier::new(Arc::new(netlink.clone()), vec![vip])
            .announcer(Arc::new(announcer))
            .hand_off(netlink);
        let to = |from, to, reason| Event::StateChanged { from, to, reason };
        applier
            .apply(to(State::Backup, State::Master, Reason::MasterDown))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = mastered.send(());
        let _ = preempted.await;
        let by = Reason::Preempted {
            by: peer,
            priority: Priority::new(200),
        };
        let started = Instant::now();
        applier.apply(to(State::Master, State::Backup, by)).await;
        // The hand-off runs on a task of the applier's: give it the resolution (up to
        // 300 ms) and the burst before the applier goes.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let _ = handed.send(started.elapsed());
    });

    wait_mastered
        .recv_timeout(Duration::from_secs(10))
        .expect("h1 Master");
    assert!(pings(&lab, vip), "{test}: the client reaches the VIP on h1");
    let entry = neighbour(&lab, vip);
    assert!(
        entry.contains(&h1_mac),
        "{test}: the client's entry is h1's: {entry}"
    );

    // h2 takes the address without a word (nodad: no DAD probe, no NA), and h1 forgets h2.
    let nodad = if ipv6 { " nodad" } else { "" };
    lab.ip("h2", &format!("addr add {} dev eth0{nodad}", m.vip()));
    for family in ["-4", "-6"] {
        lab.ip("h1", &format!("{family} neigh flush dev eth0"));
    }
    assert!(
        ip_out(
            &lab.ns("h1"),
            &["neigh", "show", &peer.to_string(), "dev", "eth0"]
        )
        .trim()
        .is_empty(),
        "{test}: h1's neighbour table still knows {peer}"
    );
    let _ = preempt.send(());
    wait_handed
        .recv_timeout(Duration::from_secs(10))
        .expect("the hand-off ran");
    h1.join().expect("h1's applier");

    // Before the client sends anything: its entry names h2's MAC.
    let entry = neighbour(&lab, vip);
    assert!(
        entry.contains(&h2_mac),
        "{test}: the client's entry is not h2's {h2_mac} after the hand-off: {entry}"
    );
    assert!(pings(&lab, vip), "{test}: the client reaches the VIP on h2");
    let resolved = ip_out(
        &lab.ns("h1"),
        &["neigh", "show", &peer.to_string(), "dev", "eth0"],
    );
    assert!(
        resolved.contains(&h2_mac),
        "{test}: h1 resolved {peer}: {resolved}"
    );
    let pcap = capture.stop();

    let (from_h1, from_h2) = if ipv6 {
        let na = |mac: &str| {
            format!(
                "icmpv6.type == 136 && eth.src == {mac} && icmpv6.nd.na.target_address == {vip}"
            )
        };
        let fields = [
            "icmpv6.opt.linkaddr",
            "icmpv6.nd.na.flag.o",
            "ipv6.hlim",
            "icmpv6.checksum.status",
        ];
        (
            tshark(
                &pcap,
                &format!("{} && icmpv6.opt.linkaddr == {h2_mac}", na(&h1_mac)),
                &fields,
            ),
            tshark(&pcap, &na(&h2_mac), &fields),
        )
    } else {
        let garp = |mac: &str| format!("arp && eth.src == {mac} && arp.src.proto_ipv4 == {vip}");
        (
            tshark(
                &pcap,
                &format!("{} && arp.src.hw_mac == {h2_mac}", garp(&h1_mac)),
                &["arp.src.hw_mac"],
            ),
            tshark(&pcap, &garp(&h2_mac), &["arp.src.hw_mac"]),
        )
    };
    assert_eq!(
        from_h1.len(),
        5,
        "{test}: h1's burst naming h2's MAC: {from_h1:?}"
    );
    if ipv6 {
        for frame in &from_h1 {
            let override_set = frame[1] == "1" || frame[1] == "True";
            assert!(
                override_set && frame[2] == "255" && frame[3] == "1",
                "{test}: an NA without Override, hop limit 255 or a good checksum: {frame:?}"
            );
        }
    }
    assert!(
        from_h2.is_empty(),
        "{test}: h2 announced the VIP itself: {from_h2:?}"
    );
}

#[test]
fn a_preempted_master_hands_an_ipv4_address_over_to_a_silent_peer() {
    hand_off(false);
}

#[test]
fn a_preempted_master_hands_an_ipv6_address_over_to_a_silent_peer() {
    hand_off(true);
}
