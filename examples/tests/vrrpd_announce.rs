//! The announcements after a takeover reach the wire whatever happened to the link before.
//!
//! A link that went down and up leaves a pending "Network is down" error on the announcing
//! `AF_PACKET` socket (the kernel sets it when the device goes down); the next send returns
//! it. vrrpd used to stop its whole announce sequence at that first error: a Master back
//! from a link flap sent no gratuitous ARP at all, and clients kept the other host's MAC for
//! seconds (issue 19, point 1). Here the Master's link flaps, it takes the VIP back, and the
//! capture on the bridge must hold both bursts (the first at once, the repeat after
//! `garp.delay`) of gratuitous ARPs (IPv4) / unsolicited NAs (IPv6) from its MAC; the status
//! shows every frame counted and none failed.
//!
//! Needs root, iproute2 and tshark; under `CI` a missing prerequisite fails the test.

mod lab;

use std::time::{Duration, Instant};

use lab::vrrp::{Capture, Lab, MODES, Mode, V3_IPV4_100MS, tshark};

const REPEAT: usize = 3;

fn mode(ipv6: bool) -> Mode {
    if ipv6 { MODES[1] } else { V3_IPV4_100MS }
}

fn flap_then_takeover_announces(ipv6: bool) {
    let test = if ipv6 {
        "unsolicited_nas_go_out_after_the_masters_link_flapped"
    } else {
        "gratuitous_arps_go_out_after_the_masters_link_flapped"
    };
    let Some(netlab) = lab::netlab_or_skip(test, &[("ip", "-V"), ("tshark", "-v")]) else {
        return;
    };
    let m = mode(ipv6);
    let mut lab = Lab::up(netlab, if ipv6 { "an6" } else { "an4" }, m);
    let garp = format!("garp = {{ repeat = {REPEAT}, delay = \"1s\" }}\n");
    lab.vrrpd_with("h1", 101, m, &garp);
    lab.vrrpd_with("h2", 100, m, &garp);
    lab.wait_vip("h1", "h2", m.election());
    // Past h1's own repeat burst, so that the flap is what the socket saw last.
    std::thread::sleep(Duration::from_millis(1500));

    lab.ip("h1", "link set eth0 down");
    lab.wait_vip("h2", "h1", m.election());
    std::thread::sleep(Duration::from_millis(300));
    let filter = if ipv6 { "icmp6" } else { "arp" };
    let capture = Capture::start(&lab, "sw", "br0", filter, test);
    lab.ip("h1", "link set eth0 up");
    if ipv6 {
        // The link-local address h1 advertises from comes back with the link.
        lab.settle();
    }
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
    let back = Instant::now();
    // The repeat burst comes `garp.delay` (1 s) after the first.
    std::thread::sleep(Duration::from_millis(1800));
    let pcap = capture.stop();

    let mac = lab.mac("h1");
    let vip = m.vip().split('/').next().unwrap_or_default();
    let frames = if ipv6 {
        tshark(
            &pcap,
            &format!(
                "icmpv6.type == 136 && icmpv6.nd.na.target_address == {vip} && icmpv6.opt.linkaddr == {mac}"
            ),
            &["frame.time_epoch"],
        )
    } else {
        tshark(
            &pcap,
            &format!(
                "arp.src.proto_ipv4 == {vip} && arp.dst.proto_ipv4 == {vip} && arp.src.hw_mac == {mac}"
            ),
            &["frame.time_epoch"],
        )
    };
    let times: Vec<f64> = frames
        .iter()
        .filter_map(|f| f.first()?.trim().parse().ok())
        .collect();
    let h1 = lab.log("h1.vrrpd.log");
    assert!(
        times.len() >= 2 * REPEAT,
        "{}: {} announcements from h1 ({mac}) for {vip} after its link came back, want both bursts ({} frames); capture {}\nh1 log:\n{h1}",
        m.name,
        times.len(),
        2 * REPEAT,
        pcap.display()
    );
    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
    let last = times.iter().copied().fold(0.0, f64::max);
    assert!(
        last - first >= 0.9,
        "{}: the repeat burst is missing (all {} frames within {:.3} s)",
        m.name,
        times.len(),
        last - first
    );
    assert!(!h1.contains("could not be sent"), "{h1}");

    // Every frame counted, none failed: the status says so.
    let status = lab.status("h1");
    let announced = &status["instances"][0]["announcements"];
    let sent = announced["frames_sent"].as_u64().unwrap_or(0);
    assert!(
        sent >= 4 * REPEAT as u64,
        "{}: status counts {sent} frames sent (two takeovers of two bursts): {status:#}",
        m.name
    );
    assert_eq!(
        announced["frames_failed"].as_u64(),
        Some(0),
        "{}: {status:#}",
        m.name
    );
    eprintln!(
        "{}: link flap then takeover: {} announcements on the wire in {:.2} s ({:?} after the VIP came back), status {announced}",
        m.name,
        times.len(),
        last - first,
        back.elapsed()
    );
}

#[test]
fn gratuitous_arps_go_out_after_the_masters_link_flapped() {
    flap_then_takeover_announces(false);
}

#[test]
fn unsolicited_nas_go_out_after_the_masters_link_flapped() {
    flap_then_takeover_announces(true);
}
