//! Takeover latency, from the wire: a Backup's Master_Down_Timer expires (Master_Down_Interval
//! after the last advert of a crashed Master, as captured on the lab's bridge) and the new
//! Master's first gratuitous ARP for the VIP follows. What lies between is the daemon's own
//! delay: timer wake-up, the advert, adding the address, the announcement. Measured for a
//! vrrpd Backup and a keepalived Backup in the same lab, VRRPv3 at 10 ms and 100 ms adverts;
//! the figures go to stderr (`--nocapture`), vrrpd's are asserted: best of three under 2 ms.
//!
//! Both sides are optimised builds: keepalived as the distribution ships it, and vrrpd's
//! release build (`--release`), whatever profile this test itself was built with. The debug
//! build spends about another millisecond in the same path (parsing netlink answers, formatting
//! the log line) and is not what a host runs. The release binary is `VRRPD_RELEASE_BIN` when
//! set (`scripts/test.sh` builds it first and sets it); otherwise this test runs
//! `cargo build --profile opt --locked -p examples --bin vrrpd` itself (minutes from cold; the
//! `opt` profile is `release` without LTO, faster to build).
//!
//! Needs root, iproute2, tshark and keepalived; under `CI` a missing prerequisite fails.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lab::vrrp::{Capture, Lab, Mode, tshark};

fn mode(centis: u32) -> Mode {
    Mode {
        name: "v3 IPv4",
        version: 3,
        centis,
        ipv6: false,
        auth: false,
        unicast: false,
    }
}

/// Master_Down_Interval of a priority-100 Backup, VRRPv3 (RFC 5798 §6.1).
fn master_down_interval(centis: u32) -> f64 {
    let interval = f64::from(centis) / 100.0;
    3.0 * interval + (256.0 - 100.0) * interval / 256.0
}

/// The capture times of the frames matching `filter` in `pcap`.
fn times(pcap: &Path, filter: &str) -> Vec<f64> {
    tshark(pcap, filter, &["frame.time_epoch"])
        .iter()
        .filter_map(|f| f.first()?.trim().parse().ok())
        .collect()
}

/// vrrpd optimised (profile `opt`, or `release`): the one beside this test when it is itself optimised (`cargo test
/// --release`), else `VRRPD_RELEASE_BIN`, else built here by cargo (same workspace and target
/// directory; the `opt` profile's build lock is not the one of this debug `cargo test`).
fn release_vrrpd() -> PathBuf {
    if !cfg!(debug_assertions) {
        return PathBuf::from(env!("CARGO_BIN_EXE_vrrpd"));
    }
    if let Some(bin) = std::env::var_os("VRRPD_RELEASE_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "VRRPD_RELEASE_BIN={} is not a file: build it with `cargo build --profile opt -p examples --bin vrrpd` or unset it",
            bin.display()
        );
        return bin;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("VRRPD_RELEASE_BIN is not set: building vrrpd with --profile opt");
    let out = Command::new(&cargo)
        .args([
            "build",
            "--profile",
            "opt",
            "--locked",
            "-p",
            "examples",
            "--bin",
            "vrrpd",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", cargo.to_string_lossy()));
    assert!(
        out.status.success(),
        "cargo build --profile opt -p examples --bin vrrpd failed (set VRRPD_RELEASE_BIN to an optimised vrrpd to skip the build)"
    );
    // The executable's path is in the artifact message of the `vrrpd` target.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "vrrpd")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the vrrpd executable it built")
}

/// One takeover by a `backup` ("vrrpd" or "keepalived") Backup: the time from its Master_Down
/// deadline to its first gratuitous ARP for the VIP, in seconds.
fn takeover(netlab: &Path, vrrpd: &Path, backup: &str, centis: u32, run: usize) -> f64 {
    let m = mode(centis);
    let mut lab = Lab::up(netlab.to_path_buf(), "to", m);
    lab.vrrpd_program = vrrpd.to_path_buf();
    let master = lab.vrrpd("h1", 101, m);
    if backup == "vrrpd" {
        lab.vrrpd("h2", 100, m);
    } else {
        lab.keepalived("h2", 100, m);
    }
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(500));
    let capture = Capture::start(
        &lab,
        "sw",
        "br0",
        "vrrp or arp",
        &format!("{backup}-{centis}-{run}"),
    );
    // A host crash: the daemon dies and its address with it.
    lab.crash(master);
    let _ = Command::new("ip")
        .args(["-n", &lab.ns("h1"), "addr", "del", m.vip(), "dev", "eth0"])
        .status();
    lab.wait_vip("h2", "h1", m.election());
    std::thread::sleep(Duration::from_millis(300));
    let pcap = capture.stop();
    let last_advert = times(&pcap, "vrrp && ip.src == 10.99.0.11")
        .last()
        .copied()
        .unwrap_or_else(|| panic!("no advert of h1 in {}", pcap.display()));
    let garp = times(
        &pcap,
        "arp && arp.src.proto_ipv4 == 10.99.0.200 && arp.dst.proto_ipv4 == 10.99.0.200",
    )
    .into_iter()
    .find(|&t| t > last_advert)
    .unwrap_or_else(|| {
        panic!(
            "no gratuitous ARP after h1's last advert in {}",
            pcap.display()
        )
    });
    garp - (last_advert + master_down_interval(centis))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn the_first_gratuitous_arp_follows_the_master_down_deadline_within_2ms() {
    let Some(netlab) = lab::netlab_or_skip(
        "the_first_gratuitous_arp_follows_the_master_down_deadline_within_2ms",
        &[
            ("ip", "-V"),
            ("tshark", "--version"),
            ("keepalived", "--version"),
        ],
    ) else {
        return;
    };
    let vrrpd = release_vrrpd();
    let mut report = Vec::new();
    for centis in [1, 10] {
        let mut ours: Vec<f64> = (0..3)
            .map(|r| takeover(&netlab, &vrrpd, "vrrpd", centis, r))
            .collect();
        let mut theirs: Vec<f64> = (0..3)
            .map(|r| takeover(&netlab, &vrrpd, "keepalived", centis, r))
            .collect();
        let (o, t) = (median(&mut ours), median(&mut theirs));
        report.push(format!(
            "adverts {} ms: Master_Down deadline -> first GARP: vrrpd (release) {:.1} ms (runs {:.1?}), keepalived {:.1} ms (runs {:.1?})",
            centis * 10,
            o * 1e3,
            ours.iter().map(|x| x * 1e3).collect::<Vec<_>>(),
            t * 1e3,
            theirs.iter().map(|x| x * 1e3).collect::<Vec<_>>()
        ));
        // On the wire the deadline is the capture of the last advert plus the interval, so a
        // busy machine that delays the Backup's reception adds to every run: the best of
        // three shows the daemon's own delay, the median bounds the rest.
        let best = ours.iter().copied().fold(f64::INFINITY, f64::min);
        // 2 ms on a quiet machine; where keepalived itself takes longer in the same run (a
        // busy machine delays both), within 1 ms of keepalived's best.
        let theirs_best = theirs.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            (best < 0.002 || best <= theirs_best + 0.001) && o < 0.005,
            "vrrpd adds {:.1} ms (best {:.1} ms) after the deadline: {report:#?}",
            o * 1e3,
            best * 1e3
        );
    }
    for line in &report {
        eprintln!("{line}");
    }
}
