//! Split brain between two vrrpd in a namespace lab, with VRRP (IP protocol 112) dropped by
//! nftables in the hosts' namespaces, as a firewall or a security group would:
//! - both ways: each host hears nothing of the other and both become Master; the probes of the
//!   virtual address (ARP probe / neighbour solicitation) find the other holder within 3
//!   advert intervals of the second takeover, on both sides; log, status counters, and the
//!   episode's end with its duration once the filter goes;
//! - one way (h1's adverts dropped): h2 takes over and h1, still Master, reports h2 at its
//!   first advert.
//!
//! The detection times are printed (BENCHMARKS.md, "Split brain"). Needs root, iproute2 and
//! nftables; under `CI` a missing prerequisite fails the test.

mod lab;

use std::time::{Duration, Instant};

use lab::vrrp::{Lab, Mode, V3_IPV4_100MS};

/// v3 over IPv6 at 100 ms.
const V3_IPV6_100MS: Mode = Mode {
    name: "v3 IPv6 100ms",
    ipv6: true,
    ..V3_IPV4_100MS
};

fn interval(m: Mode) -> Duration {
    Duration::from_millis(u64::from(m.centis) * 10)
}

/// Drops VRRP leaving `host` (`out`) or reaching it (`in`).
fn block(lab: &Lab, host: &str, hook: &str) {
    let table = ["nft", "add", "table", "inet", "splitbrain"];
    lab.ip_netns_exec(host, &table);
    let chain = format!("{{ type filter hook {hook} priority 0; }}");
    lab.ip_netns_exec(
        host,
        &["nft", "add", "chain", "inet", "splitbrain", hook, &chain],
    );
    lab.ip_netns_exec(
        host,
        &[
            "nft",
            "add",
            "rule",
            "inet",
            "splitbrain",
            hook,
            "meta",
            "l4proto",
            "112",
            "drop",
        ],
    );
}

fn unblock(lab: &Lab, host: &str) {
    lab.ip_netns_exec(host, &["nft", "delete", "table", "inet", "splitbrain"]);
}

/// Seconds since midnight UTC of a log line's timestamp (`2026-12-05T05:46:03.123456Z ...`).
fn stamp(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split('T').nth(1)?;
    let mut parts = time.trim_end_matches('Z').split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The time of the first line of `log` containing all of `words`, waiting up to `within`.
fn wait_line(lab: &Lab, log: &str, words: &[&str], within: Duration) -> f64 {
    let started = Instant::now();
    loop {
        let text = lab.log(log);
        if let Some(t) = text
            .lines()
            .find(|l| words.iter().all(|w| l.contains(w)))
            .and_then(stamp)
        {
            return t;
        }
        assert!(
            started.elapsed() < within,
            "no line with {words:?} in {log} within {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// When `host` last became Master, from its log.
fn became_master(lab: &Lab, host: &str) -> f64 {
    lab.log(&format!("{host}.vrrpd.log"))
        .lines()
        .filter(|l| l.contains("state changed") && l.contains("to=Master"))
        .filter_map(stamp)
        .next_back()
        .unwrap_or_else(|| panic!("{host} never became Master"))
}

/// How many episodes each both-ways test injects: 2, or `SPLIT_BRAIN_EPISODES` (the
/// benchmark's run).
fn episodes() -> usize {
    std::env::var("SPLIT_BRAIN_EPISODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

/// The lab (`tag` names it) in mode `m`, up, when `test` can run here (root, iproute2 and
/// nft, which blocks the adverts).
fn nft_lab(test: &str, tag: &str, m: Mode) -> Option<Lab> {
    let netlab = lab::netlab_or_skip(test, &[("ip", "-V"), ("nft", "--version")])?;
    Some(Lab::up(netlab, tag, m))
}

fn both_ways(m: Mode, tag: &str) {
    let test = "vrrp_blocked_both_ways_is_a_split_brain_seen_by_probing_the_virtual_address";
    let Some(mut lab) = nft_lab(test, tag, m) else {
        return;
    };
    lab.vrrpd_pair(m, 150, 100);
    let i = interval(m);
    let (mac1, mac2) = (lab.mac("h1"), lab.mac("h2"));
    let found = "is also held by";
    let mut detected = Vec::new();
    for episode in 1..=episodes() {
        let lines_before =
            |host: &str, what: &str| lab.log(&format!("{host}.vrrpd.log")).matches(what).count();
        let (seen1, over1) = (
            lines_before("h1", found),
            lines_before("h1", "split brain over"),
        );
        for host in ["h1", "h2"] {
            block(&lab, host, "output");
            block(&lab, host, "input");
        }
        // h2 hears nothing: Master after Master_Down_Interval; h1 stays Master.
        let started = Instant::now();
        while !(lab.has_vip("h1") && lab.has_vip("h2")) {
            assert!(
                started.elapsed() < m.election() + Duration::from_secs(2),
                "{}: both hosts never held the VIP (h1 {}, h2 {})",
                m.name,
                lab.has_vip("h1"),
                lab.has_vip("h2")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let both = became_master(&lab, "h2");
        let generous = 3 * i + Duration::from_secs(3);
        let nth = |host: &str, n: usize| {
            let log = format!("{host}.vrrpd.log");
            let started = Instant::now();
            loop {
                let text = lab.log(&log);
                let times: Vec<f64> = text
                    .lines()
                    .filter(|l| l.contains(found))
                    .filter_map(stamp)
                    .collect();
                if let Some(t) = times.get(n) {
                    return *t;
                }
                assert!(
                    started.elapsed() < generous,
                    "{host}: episode {episode} not found:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let h1_saw = nth("h1", seen1) - both;
        let h2_saw = nth("h2", episode - 1) - both;
        eprintln!(
            "{} episode {episode}: split brain (VRRP blocked both ways) detected {:.0} ms (h1) / {:.0} ms (h2) after the second Master, {:.1} / {:.1} advert intervals",
            m.name,
            h1_saw * 1000.0,
            h2_saw * 1000.0,
            h1_saw / i.as_secs_f64(),
            h2_saw / i.as_secs_f64()
        );
        detected.extend([h1_saw, h2_saw]);
        let bound = (3 * i + Duration::from_millis(700)).as_secs_f64();
        assert!(
            h1_saw < bound && h2_saw < bound,
            "{}: detected after {h1_saw:.3} s / {h2_saw:.3} s",
            m.name
        );
        // Both sides in the one line: the other's MAC, this Master's.
        let h1 = lab.log("h1.vrrpd.log");
        let line = h1
            .lines()
            .filter(|l| l.contains(found))
            .nth(seen1)
            .unwrap_or_default();
        assert!(
            line.contains(&mac2) && line.contains(&mac1) && line.contains(m.vip()),
            "{line}"
        );
        // Logged once per episode, counted, shown now.
        std::thread::sleep(4 * i);
        assert_eq!(lines_before("h1", found), seen1 + 1, "{h1}");
        for host in ["h1", "h2"] {
            let s = lab.status(host);
            let owner = &s["instances"][0]["second_owner"];
            assert_eq!(
                owner["episodes"].as_u64(),
                Some(episode as u64),
                "{host}: {s:#}"
            );
            assert_eq!(owner["now"].as_u64(), Some(1), "{host}: {s:#}");
        }

        // The filter goes: h2 hears h1 and steps down; h1's probes go unanswered, and
        // after 3 quiet rounds the episode ends with its duration.
        for host in ["h1", "h2"] {
            unblock(&lab, host);
        }
        lab.wait_vip("h1", "h2", m.election());
        let started = Instant::now();
        while lines_before("h1", "split brain over") == over1 {
            assert!(
                started.elapsed() < 5 * i + Duration::from_secs(3),
                "{}",
                lab.log("h1.vrrpd.log")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let h1 = lab.log("h1.vrrpd.log");
        let line = h1
            .lines()
            .filter(|l| l.contains("split brain over"))
            .nth(over1)
            .unwrap_or_default();
        assert!(
            line.contains(&mac2) && line.contains("the other host falling silent"),
            "{line}"
        );
        eprintln!("{} episode {episode}: end: {line}", m.name);
        let s = lab.status("h1");
        assert_eq!(s["instances"][0]["second_owner"]["now"].as_u64(), Some(0));
        // h2 ended its own when it left Master.
        let h2 = lab.log("h2.vrrpd.log");
        assert!(
            h2.matches("this router leaving Master").count() >= episode,
            "{h2}"
        );
        // The next episode from a settled pair.
        std::thread::sleep(2 * i);
    }
    detected.sort_by(f64::total_cmp);
    let ms = |x: f64| x * 1000.0;
    eprintln!(
        "{}: {} of {} episodes detected on both sides; detection min {:.0} ms, median {:.0} ms, max {:.0} ms ({:.1} advert intervals at most)",
        m.name,
        detected.len() / 2,
        episodes(),
        ms(detected[0]),
        ms(detected[detected.len() / 2]),
        ms(detected[detected.len() - 1]),
        detected[detected.len() - 1] / i.as_secs_f64()
    );
}

#[test]
fn vrrp_blocked_both_ways_is_a_split_brain_seen_by_probing_the_virtual_address() {
    both_ways(V3_IPV4_100MS, "sb4");
}

#[test]
fn vrrp_blocked_both_ways_over_ipv6_is_seen_by_neighbour_solicitation() {
    both_ways(V3_IPV6_100MS, "sb6");
}

/// The benchmark's 1 s adverts (about 10 s an episode): `--ignored`.
#[test]
#[ignore = "slow: the benchmark's run (BENCHMARKS.md, Split brain)"]
fn vrrp_blocked_both_ways_at_1s_adverts() {
    let m = Mode {
        name: "v3 IPv4 1s",
        centis: 100,
        ..V3_IPV4_100MS
    };
    both_ways(m, "sbs");
}

#[test]
fn a_master_hearing_a_lower_master_that_does_not_hear_it_reports_it_at_the_first_advert() {
    let test =
        "a_master_hearing_a_lower_master_that_does_not_hear_it_reports_it_at_the_first_advert";
    let m = V3_IPV4_100MS;
    let Some(mut lab) = nft_lab(test, "sb1", m) else {
        return;
    };
    // Probing off: what h1 reports here, it hears in VRRP.
    lab.vrrpd_with("h1", 150, m, "second_owner_probe = false\n");
    lab.vrrpd_with("h2", 100, m, "second_owner_probe = false\n");
    lab.wait_vip("h1", "h2", m.election());

    block(&lab, "h1", "output");
    let heard = wait_line(
        &lab,
        "h1.vrrpd.log",
        &["split brain", "10.99.0.12 advertises as master"],
        m.election() + Duration::from_secs(2),
    );
    let took_over = became_master(&lab, "h2");
    let after = heard - took_over;
    eprintln!(
        "{}: one-way loss: h1 reported h2 as a second Master {:.1} ms after h2 took over (its first advert)",
        m.name,
        after * 1000.0
    );
    // The first advert leaves with the takeover: reported well within one interval.
    assert!(after < interval(m).as_secs_f64(), "{after:.3} s");
    let s = lab.status("h1");
    let c = &s["instances"][0]["counters"];
    assert_eq!(
        (c["split_brains"].as_u64(), c["split_brains_now"].as_u64()),
        (Some(1), Some(1)),
        "{s:#}"
    );
    assert_eq!(s["instances"][0]["state"], "MASTER");

    unblock(&lab, "h1");
    lab.wait_vip("h1", "h2", m.election());
    wait_line(
        &lab,
        "h1.vrrpd.log",
        &["split brain with 10.99.0.12 over after", "fell silent"],
        Duration::from_secs(3),
    );
    let h1 = lab.log("h1.vrrpd.log");
    assert_eq!(h1.matches("advertises as master").count(), 1, "{h1}");
    let s = lab.status("h1");
    assert_eq!(
        s["instances"][0]["counters"]["split_brains_now"].as_u64(),
        Some(0)
    );
}

/// The library's side: a `Failover` reports another holder of its address as events its
/// embedder can act on. Here the other holder is a host that kept the address (its daemon
/// died without removing it), which VRRP cannot see at all.
#[test]
fn a_failover_reports_a_second_holder_of_its_address_and_the_end() {
    use ip_manager::failover::{Failover, FailoverEvent};
    let test = "a_failover_reports_a_second_holder_of_its_address_and_the_end";
    let Some(lab) = Lab::or_skip(test, "sbf", V3_IPV4_100MS) else {
        return;
    };
    lab.ip("h2", "addr add 10.99.0.200/24 dev eth0");
    let theirs = lab.mac("h2");
    let (ns, h2) = (lab.ns("h1"), lab.ns("h2"));
    let (found, gone) = lab::in_namespace(&ns, move || async move {
        let mut failover = Failover::builder("eth0", 51)
            .virtual_address("10.99.0.200/24")
            .advert_interval(Duration::from_millis(100))
            .start()
            .await
            .expect("starts");
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(5), failover.next_event())
                .await
                .expect("an event within 5 s")
                .expect("the failover runs")
        };
        let found = loop {
            if let e @ FailoverEvent::SecondOwner { .. } = next().await {
                break e;
            }
        };
        let removed = std::process::Command::new("ip")
            .args(["-n", &h2, "addr", "del", "10.99.0.200/24", "dev", "eth0"])
            .status()
            .expect("ip runs");
        assert!(removed.success());
        let gone = loop {
            if let e @ FailoverEvent::SecondOwnerGone { .. } = next().await {
                break e;
            }
        };
        let stats = failover.second_owner_stats().expect("probing is on");
        assert_eq!((stats.episodes, stats.open), (1, 0), "{stats:?}");
        (found, gone)
    });
    let FailoverEvent::SecondOwner {
        vip, theirs: mac, ..
    } = &found
    else {
        unreachable!()
    };
    assert_eq!(vip.address.to_string(), "10.99.0.200");
    assert_eq!(mac.map(|b| format!("{b:02x}")).join(":"), theirs, "{found}");
    let FailoverEvent::SecondOwnerGone {
        duration,
        left_master,
        ..
    } = &gone
    else {
        unreachable!()
    };
    assert!(!left_master, "{gone}");
    eprintln!("{found}\n{gone}");
    assert!(*duration < Duration::from_secs(5), "{gone}");
}

/// With a virtual MAC both holders share one MAC, but a host never answers its own probe
/// (it leaves from the interface itself, not the macvlan holding the address): any answer
/// is the other holder's, reported with the MAC it gave.
#[test]
fn with_a_virtual_mac_the_second_holder_is_found_all_the_same() {
    let test = "with_a_virtual_mac_the_second_holder_is_found_all_the_same";
    let m = V3_IPV4_100MS;
    let Some(mut lab) = nft_lab(test, "sbv", m) else {
        return;
    };
    lab.vrrpd_with("h1", 150, m, "virtual_mac = true\n");
    lab.vrrpd_with("h2", 100, m, "virtual_mac = true\n");
    wait_line(
        &lab,
        "h1.vrrpd.log",
        &["state changed", "to=Master"],
        m.election(),
    );
    std::thread::sleep(Duration::from_millis(500));
    for host in ["h1", "h2"] {
        block(&lab, host, "output");
        block(&lab, host, "input");
    }
    let both = wait_line(
        &lab,
        "h2.vrrpd.log",
        &["state changed", "to=Master"],
        m.election() + Duration::from_secs(2),
    );
    let generous = 3 * interval(m) + Duration::from_secs(3);
    for host in ["h1", "h2"] {
        let log = format!("{host}.vrrpd.log");
        let saw = wait_line(&lab, &log, &["is also held by"], generous) - both;
        let text = lab.log(&log);
        let line = text
            .lines()
            .find(|l| l.contains("is also held by"))
            .unwrap_or_default();
        eprintln!(
            "virtual MAC: {host} found the other holder {:.0} ms after the second Master: {line}",
            saw * 1000.0
        );
        assert!(
            saw < (3 * interval(m) + Duration::from_millis(700)).as_secs_f64(),
            "{saw:.3} s"
        );
    }
}

/// seed 003's gateway check: a `kind = "icmp"` check of the default gateway (here the
/// client's namespace), tracked with weight 0, puts the Master in FAULT while the gateway does
/// not answer, and the Backup takes over; when it answers again the Master comes back.
#[test]
fn a_master_whose_gateway_stops_answering_pings_goes_to_fault() {
    let test = "a_master_whose_gateway_stops_answering_pings_goes_to_fault";
    let m = V3_IPV4_100MS;
    let Some(mut lab) = Lab::or_skip(test, "sbg", m) else {
        return;
    };
    let gateway = "track = [{ check = \"gw\", weight = 0 }]\n[[check]]\nname = \"gw\"\nkind = \"icmp\"\naddress = \"10.99.0.100\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfall = 2\n";
    lab.vrrpd_with("h1", 150, m, gateway);
    lab.vrrpd_with("h2", 100, m, "");
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(1));
    let client = lab.ns("cl");
    let ignore = |on: u8| {
        let set = format!("net.ipv4.icmp_echo_ignore_all={on}");
        lab.ip_netns_exec("cl", &["sysctl", "-qw", &set]);
    };
    ignore(1);
    let took = lab.wait_vip("h2", "h1", Duration::from_secs(3));
    let s = lab.status("h1");
    assert_eq!(s["instances"][0]["state"], "FAULT", "{s:#}");
    let check = &s["checks"][0];
    assert_eq!(
        (check["kind"].as_str(), check["up"].as_bool()),
        (Some("icmp"), Some(false))
    );
    eprintln!("the gateway ({client}) ignores pings: h1 in FAULT, VIP on h2 after {took:?}");
    ignore(0);
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
}
