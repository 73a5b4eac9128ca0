//! `ha-demo` as a new user runs it: on the simulator (always) and in network namespaces (as
//! root): the takeover is printed, the figures are within Master_Down_Interval's bounds, and no
//! namespace is left behind, also when the demo is interrupted.

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
    let out = demo(&["--simulate"]);
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
    let again = demo(&["--simulate"]);
    assert_eq!(again.stdout, out.stdout);
}

fn prerequisites(test: &str) -> bool {
    lab::netlab_or_skip(test, &[("ip", "-V")]).is_some()
}

#[test]
fn namespace_story_measures_the_outage_and_leaves_no_namespace() {
    if !prerequisites("namespace_story_measures_the_outage_and_leaves_no_namespace") {
        return;
    }
    let out = demo(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
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
    let prefix = prefix(&text);
    assert!(
        text.contains(&format!(
            "cleaned up: deleted namespaces {prefix}cl, {prefix}r2, {prefix}r1, {prefix}sw"
        )),
        "{text}"
    );
    assert_eq!(namespaces_named(&prefix), Vec::<String>::new());
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
    // Interrupt it once its routers run.
    let started = Instant::now();
    while namespaces_named(&prefix).len() < 4 {
        assert!(started.elapsed() < Duration::from_secs(10), "no namespaces");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
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
