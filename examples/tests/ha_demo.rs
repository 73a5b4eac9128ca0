//! `ha-demo` as a new user runs it. As root, the whole story in network namespaces: no request
//! fails when a backend is killed, on the planned handover and when the backend is back; a
//! killed balancer and a cut link cost about Master_Down_Interval; no namespace is left
//! behind, also when the demo is interrupted. Without namespaces (`--simulate`): the balancer
//! half on loopback (no failed request) and the VRRP half on the simulator. And the VRRP-only
//! story (`--vrrp-only`), on the simulator and in namespaces.

mod lab;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// r2's Master_Down_Interval: 3 x 100 ms + (256 - 100) / 256 x 100 ms.
const MDI: f64 = 0.360_937_5;
const INTERVAL: f64 = 0.1;

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ha-demo"))
        .args(args)
        .output()
        .expect("ha-demo runs")
}

/// The demo's output after a run that succeeded (printed, for `--nocapture`).
fn demo_ok(args: &[&str]) -> String {
    let out = demo(args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    text
}

/// `key=VALUEs` from the `result:` line.
fn figure(out: &str, key: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("result: "))
        .unwrap_or_else(|| panic!("no result line in\n{out}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// The namespace prefix the demo announced (`... network namespaces hd1234*, ...`).
fn prefix(out: &str) -> String {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("hd").and_then(|r| r.strip_suffix("*,")))
        .map(|pid| format!("hd{pid}"))
        .unwrap_or_else(|| panic!("no namespace prefix in\n{out}"))
}

fn namespaces_named(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn simulated_story_prints_the_takeover_within_master_down_interval() {
    let out = demo(&["--vrrp-only", "--simulate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("r2: Backup -> Master (MasterDown)"), "{text}");
    assert!(text.contains("r1 (the Master) crashes"), "{text}");
    let takeover = figure(&text, "takeover");
    assert!(
        takeover > MDI - INTERVAL && takeover <= MDI,
        "RFC 5798 §6.4.2: {takeover}\n{text}"
    );
    assert_eq!(figure(&text, "master_down_interval"), 0.3609);
    // Deterministic: the same story twice.
    let again = demo(&["--vrrp-only", "--simulate"]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn without_namespaces_the_balancer_half_runs_on_loopback_and_vrrp_on_the_simulator() {
    let text = demo_ok(&["--simulate"]);
    assert!(text.contains("The balancer half, on loopback"), "{text}");
    assert!(text.contains("lbd: s2 marked down"), "{text}");
    assert!(text.contains("The VRRP half, on the simulator"), "{text}");
    assert!(text.contains("result: mode=loopback+simulator "), "{text}");
    // Redispatch: the killed backend costs no request; the one back answers within seconds.
    assert_eq!(figure(&text, "backend_killed.failed"), 0.0, "{text}");
    assert_eq!(figure(&text, "backend_back.failed"), 0.0, "{text}");
    assert!(figure(&text, "backend_back.recovered") < 3.0, "{text}");
    let takeover = figure(&text, "takeover");
    assert!(takeover > MDI - INTERVAL && takeover <= MDI, "{text}");
}

fn prerequisites(test: &str) -> bool {
    lab::netlab_or_skip(test, &[("ip", "-V")]).is_some()
}

/// `text` says it deleted the namespaces of `hosts` (`cl`, ... `sw`), in that order, and none
/// named after it is left.
fn all_deleted(text: &str, hosts: &[&str]) {
    let prefix = prefix(text);
    let deleted = text
        .lines()
        .find_map(|l| l.strip_prefix("cleaned up: deleted namespaces "))
        .unwrap_or_else(|| panic!("no cleanup line in\n{text}"));
    let expected: Vec<String> = hosts.iter().map(|h| format!("{prefix}{h}")).collect();
    assert_eq!(deleted, expected.join(", "), "{text}");
    assert_eq!(namespaces_named(&prefix), Vec::<String>::new());
}

#[test]
fn the_whole_story_fails_no_request_on_a_killed_backend_or_a_planned_handover() {
    if !prerequisites("the_whole_story_fails_no_request_on_a_killed_backend_or_a_planned_handover")
    {
        return;
    }
    let started = Instant::now();
    let text = demo_ok(&[]);
    assert!(started.elapsed() < Duration::from_secs(60), "{text}");
    assert!(text.contains("result: mode=namespaces "), "{text}");
    for (key, what) in [
        ("backend_killed", "backend s2 killed"),
        ("balancer_killed", "Master's balancer killed"),
        ("link_cut", "Master host's link cut"),
        ("handover", "planned handover"),
        ("backend_back", "backend s2 back"),
    ] {
        assert!(text.contains(what), "{what}\n{text}");
        // Every scenario recovers, and within seconds.
        assert!(
            figure(&text, &format!("{key}.recovered")) < 5.0,
            "{key}\n{text}"
        );
    }
    // Redispatch, the drain, and the checks' rise: no request fails.
    for key in ["backend_killed", "handover", "backend_back"] {
        assert_eq!(
            figure(&text, &format!("{key}.failed")),
            0.0,
            "{key}\n{text}"
        );
    }
    // The other host takes over after its Master_Down_Interval (h1's is shorter than h2's),
    // with room for a loaded machine's scheduling.
    for key in ["balancer_killed", "link_cut"] {
        let recovered = figure(&text, &format!("{key}.recovered"));
        assert!(recovered < MDI + 1.0, "{key}: {recovered}\n{text}");
    }
    // The drained clients come back within a SYN retransmission (1 s).
    assert!(figure(&text, "handover.gap") < 3.0, "{text}");
    assert!(text.contains("h2: Backup -> Master (MasterDown)"), "{text}");
    assert!(text.contains("h1: connections drained"), "{text}");
    all_deleted(&text, &["cl", "be", "h2", "h1", "sw"]);
}

#[test]
fn namespace_story_measures_the_outage_and_leaves_no_namespace() {
    if !prerequisites("namespace_story_measures_the_outage_and_leaves_no_namespace") {
        return;
    }
    let text = demo_ok(&["--vrrp-only"]);
    assert!(text.contains("r1: Backup -> Master (MasterDown)"), "{text}");
    assert!(text.contains("r2: Backup -> Master (MasterDown)"), "{text}");
    let takeover = figure(&text, "takeover");
    let outage = figure(&text, "outage");
    // The theory's window, with room for a loaded machine's scheduling.
    assert!(
        takeover > MDI - INTERVAL - 0.02 && takeover < MDI + 0.3,
        "takeover {takeover}\n{text}"
    );
    // The client waits for the takeover, then for the new Master's gratuitous ARP.
    assert!(
        outage > MDI - INTERVAL - 0.05 && outage < MDI + 0.5,
        "outage {outage}\n{text}"
    );
    assert!(
        outage + 0.02 > takeover,
        "nobody answers for the address before the takeover: outage {outage}, takeover {takeover}"
    );
    // 100 requests/s on a fixed schedule: about one lost per 10 ms of outage.
    let lost = figure(&text, "lost");
    assert!(
        lost >= (outage * 100.0 - 3.0).floor(),
        "lost {lost}\n{text}"
    );
    all_deleted(&text, &["cl", "r2", "r1", "sw"]);
}

#[test]
fn an_interrupted_namespace_story_still_cleans_up() {
    if !prerequisites("an_interrupted_namespace_story_still_cleans_up") {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_ha-demo"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ha-demo starts");
    let prefix = format!("hd{}", child.id());
    // Interrupt the whole story once its namespaces are up.
    let started = Instant::now();
    while namespaces_named(&prefix).len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(10), "no namespaces");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("ha-demo exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(err.contains("cleaned up: deleted namespaces"), "{err}");
    assert_eq!(namespaces_named(&prefix), Vec::<String>::new());
}
