//! vrrpd as an operator watches and steers it, two daemons in a namespace lab (VRRPv3, 100 ms):
//! - `vrrpd --status` prints each instance's state, priorities, tracked checks, last
//!   transition and counters (that keep counting);
//! - `GET /metrics` over a real TCP connection serves the same in the Prometheus text format;
//! - SIGHUP with a second instance added: the first keeps its state (no transition, its
//!   virtual address never leaves), the second comes up; with the second changed: it is
//!   rebuilt (shut down, then up again) while the first, whose `garp` changed, is updated in
//!   place; with the second removed: it shuts down and its address goes; with a broken file:
//!   the reload is refused with `file:line` in the log and the running configuration stays;
//! - SIGTERM: the daemon exits 0 and removes its status socket.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lab::vrrp::{Lab, V3_IPV4_100MS};
use serde_json::Value;

const VIP1: &str = "10.99.0.200/24";
const VIP2: &str = "10.99.0.201/24";
const METRICS: &str = "127.0.0.1:9650";

/// The daemon-wide keys of `host`'s file; instances and checks follow.
fn head(lab: &Lab, host: &str) -> String {
    format!(
        "status_socket = \"{}\"\nmetrics = {{ bind = \"{METRICS}\" }}\n\n",
        lab.socket(host).display()
    )
}

/// `host`'s configuration file: what [`Lab::status`] reads and a SIGHUP reloads.
fn config(lab: &Lab, host: &str) -> PathBuf {
    lab.dir.join(format!("{host}.toml"))
}

fn write(lab: &Lab, host: &str, body: &str) {
    std::fs::write(config(lab, host), format!("{}{body}", head(lab, host))).expect("config");
}

/// Starts vrrpd on `host` with the daemon-wide keys and `body`; returns its index.
fn start(lab: &mut Lab, host: &str, body: &str) -> usize {
    let text = format!("{}{body}", head(lab, host));
    lab.vrrpd_config(host, host, &text)
}

fn vrrpd_log(lab: &Lab, host: &str) -> String {
    lab.log(&format!("{host}.vrrpd.log"))
}

/// `host`'s status once `ready` holds on it.
fn status_when(lab: &Lab, host: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        if lab.socket(host).exists() {
            let s = lab.status(host);
            if ready(&s) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{host}: never {what}: {s:#}\nlog:\n{}",
                vrrpd_log(lab, host)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{host}: no status socket; log:\n{}",
            vrrpd_log(lab, host)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_log(lab: &Lab, host: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let log = vrrpd_log(lab, host);
        if log.contains(needle) {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{host}: {needle:?} never logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has(ns: &str, vip: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).contains(vip)
}

/// An HTTP/1.1 GET over TCP from inside namespace `ns`: the whole response.
fn http_get(ns: &str, path: &str) -> String {
    let netns = Path::new("/run/netns").join(ns);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n");
    std::thread::spawn(move || {
        // Sockets belong to the namespace of the thread that opens them.
        let f = std::fs::File::open(&netns).expect("namespace file");
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut s = std::net::TcpStream::connect(METRICS).expect("metrics endpoint");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(request.as_bytes()).expect("request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("response");
        out
    })
    .join()
    .expect("client thread")
}

/// The value of the sample `line_start` (name and labels) in an exposition.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .parse()
        .expect("a number")
}

/// Watches `vip` on `ns` until stopped, two ways: the kernel's address events (`ip monitor`,
/// nothing missed) and polling every 5 ms.
struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u32, u32)>,
    monitor: Child,
    events: PathBuf,
}

impl Watch {
    fn start(ns: String, vip: &'static str, events: PathBuf) -> Watch {
        let monitor = Command::new("ip")
            .args(["-n", &ns, "monitor", "address"])
            .stdout(std::fs::File::create(&events).expect("events file"))
            .spawn()
            .expect("ip monitor runs");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut samples, mut missing) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                samples += 1;
                if !has(&ns, vip) {
                    missing += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (samples, missing)
        });
        Watch {
            stop,
            thread,
            monitor,
            events,
        }
    }

    /// (samples, samples without the address, the kernel's address events).
    fn finish(mut self) -> (u32, u32, String) {
        self.stop.store(true, Ordering::Relaxed);
        let (samples, missing) = self.thread.join().expect("watch thread");
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        let events = std::fs::read_to_string(&self.events).unwrap_or_default();
        (samples, missing, events)
    }
}

fn instance(name: &str, vrid: u8, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"{vip}\"]\n{extra}\n"
    )
}

fn find<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance {name}: {status:#}"))
}

fn counter(i: &Value, name: &str) -> u64 {
    i["counters"][name].as_u64().expect("a counter")
}

#[test]
fn status_metrics_and_sighup_reload_on_a_running_pair() {
    let test = "status_metrics_and_sighup_reload_on_a_running_pair";
    let Some(mut lab) = Lab::or_skip(test, "vs", V3_IPV4_100MS) else {
        return;
    };
    // h1 tracks its own metrics port (up: +5); h2 a port nobody listens on (down: -10).
    let check = |port: u16| {
        format!(
            "[[check]]\nname = \"chk\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ninterval = \"200ms\"\n"
        )
    };
    let vi1 = instance(
        "VI_1",
        51,
        150,
        VIP1,
        "track = [{ check = \"chk\", weight = 5 }]",
    );
    let h1 = format!("{vi1}{}", check(9650));
    let d1 = start(&mut lab, "h1", &h1);
    start(
        &mut lab,
        "h2",
        &format!(
            "{}{}",
            instance(
                "VI_1",
                51,
                100,
                VIP1,
                "track = [{ check = \"chk\", weight = -10 }]"
            ),
            check(9)
        ),
    );

    // ---- vrrpd --status ------------------------------------------------------------------
    let s1 = status_when(&lab, "h1", "Master at 155", |s| {
        let i = find(s, "VI_1");
        i["state"] == "MASTER" && i["effective_priority"] == 155
    });
    let s2 = status_when(&lab, "h2", "Backup at 90", |s| {
        let i = find(s, "VI_1");
        i["state"] == "BACKUP" && i["effective_priority"] == 90
    });
    let (m, b) = (find(&s1, "VI_1"), find(&s2, "VI_1"));
    assert_eq!(m["base_priority"], 150);
    assert_eq!(
        m["tracked_checks"],
        serde_json::json!([{"name": "chk", "weight": 5, "up": true}])
    );
    assert_eq!(
        b["tracked_checks"],
        serde_json::json!([{"name": "chk", "weight": -10, "up": false}])
    );
    assert_eq!(m["holds_virtual_addresses"], true);
    assert_eq!(b["holds_virtual_addresses"], false);
    assert_eq!(m["last_transition"]["to"], "MASTER");
    assert_eq!(m["last_transition"]["from"], "BACKUP");
    assert_eq!(b["last_transition"]["to"], "BACKUP");
    assert_eq!(m["master_adver_interval_ms"], 100);
    assert_eq!(s1["drivers"][0]["interface"], "eth0");
    assert_eq!(s1["drivers"][0]["vrids"], serde_json::json!([51]));
    assert_eq!(s2["checks"][0]["up"], false);
    assert!(has(&lab.ns("h1"), VIP1) && !has(&lab.ns("h2"), VIP1));
    std::thread::sleep(Duration::from_millis(500));
    let (m2, b2) = (lab.status("h1"), lab.status("h2"));
    let (m2, b2) = (find(&m2, "VI_1"), find(&b2, "VI_1"));
    let sent = counter(m2, "adverts_sent") - counter(m, "adverts_sent");
    let received = counter(b2, "adverts_received") - counter(b, "adverts_received");
    // 100 ms adverts: about 5 in 500 ms.
    assert!((3..=8).contains(&sent), "sent {sent} in 500 ms");
    assert!((3..=8).contains(&received), "received {received} in 500 ms");
    assert_eq!(
        counter(b2, "adverts_accepted") - counter(b, "adverts_accepted"),
        received
    );
    let transitions = counter(m2, "transitions");
    assert_eq!(transitions, 2, "INIT -> BACKUP -> MASTER");
    let last_change = m2["last_transition"]["unix_time"].clone();

    let nobody = Command::new(env!("CARGO_BIN_EXE_vrrpd"))
        .args(["--status", "--status-socket"])
        .arg(lab.dir.join("nobody.sock"))
        .output()
        .expect("runs");
    assert_eq!(nobody.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("is it running"),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );

    // ---- GET /metrics --------------------------------------------------------------------
    let response = http_get(&lab.ns("h1"), "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{head}"
    );
    let l = r#"{instance="VI_1",interface="eth0",vrid="51""#;
    for (metric, labels, value) in [
        ("vrrpd_instance_state", r#",state="master""#, 1.0),
        ("vrrpd_instance_state", r#",state="backup""#, 0.0),
        ("vrrpd_instance_priority", "", 155.0),
        ("vrrpd_instance_base_priority", "", 150.0),
        ("vrrpd_instance_transitions_total", "", 2.0),
        ("vrrpd_instance_holds_virtual_addresses", "", 1.0),
        ("vrrpd_instance_tracked_check_up", r#",check="chk""#, 1.0),
    ] {
        let series = format!("{metric}{l}{labels}}}");
        assert_eq!(sample(body, &series), value, "{series}");
    }
    let sent_metric = sample(body, &format!("vrrpd_instance_adverts_sent_total{l}}}"));
    assert!(sent_metric >= counter(m2, "adverts_sent") as f64);
    assert_eq!(
        sample(
            body,
            "vrrpd_driver_malformed_total{interface=\"eth0\",family=\"IPv4\"}"
        ),
        0.0
    );
    assert!(body.contains("# TYPE vrrpd_instance_transitions_total counter\n"));
    let backup = http_get(&lab.ns("h2"), "/metrics");
    assert_eq!(
        sample(
            &backup,
            &format!("vrrpd_instance_state{l},state=\"backup\"}}")
        ),
        1.0
    );
    assert!(
        sample(
            &backup,
            &format!("vrrpd_instance_adverts_received_total{l}}}")
        ) >= 3.0
    );
    assert!(http_get(&lab.ns("h1"), "/nope").starts_with("HTTP/1.1 404 Not Found\r\n"));

    // ---- SIGHUP: a second instance, the first unchanged ----------------------------------
    let watch = Watch::start(lab.ns("h1"), VIP1, lab.dir.join("h1.addr-events"));
    let vi2 = instance("VI_2", 52, 150, VIP2, "");
    write(&lab, "h1", &format!("{vi1}{vi2}{}", check(9650)));
    let hup = Instant::now();
    lab.signal(d1, "-HUP");
    let s = status_when(&lab, "h1", "VI_2 Master", |s| {
        s["instances"].as_array().is_some_and(|a| a.len() == 2)
            && find(s, "VI_2")["state"] == "MASTER"
    });
    let up = hup.elapsed();
    assert!(has(&lab.ns("h1"), VIP2) && !has(&lab.ns("h2"), VIP2));
    let first = find(&s, "VI_1");
    assert_eq!(first["state"], "MASTER");
    assert_eq!(counter(first, "transitions"), transitions, "no transition");
    assert_eq!(first["last_transition"]["unix_time"], last_change);
    assert_eq!(first["effective_priority"], 155, "its check kept");
    assert_eq!(s["reloads"]["succeeded"], 1);
    assert_eq!(s["drivers"][0]["vrids"], serde_json::json!([51, 52]));
    let log = vrrpd_log(&lab, "h1");
    assert!(log.contains("configuration reloaded"), "{log}");

    // ---- SIGHUP: the second changed (rebuilt), the first's garp changed (updated in place) --
    let vi1_garp = vi1.replace("track =", "garp = { repeat = 2 }\ntrack =");
    let vi2_160 = instance("VI_2", 52, 160, VIP2, "");
    write(&lab, "h1", &format!("{vi1_garp}{vi2_160}{}", check(9650)));
    lab.signal(d1, "-HUP");
    wait_log(&lab, "h1", r#"updated=["VI_1"] rebuilt=["VI_2"]"#);
    let s = status_when(&lab, "h1", "VI_2 Master again at 160", |s| {
        let i = find(s, "VI_2");
        i["state"] == "MASTER" && i["effective_priority"] == 160
    });
    let second = find(&s, "VI_2");
    assert_eq!(
        counter(second, "transitions"),
        2,
        "a new router: INIT -> BACKUP -> MASTER"
    );
    assert_eq!(second["last_transition"]["from"], "BACKUP");
    let first = find(&s, "VI_1");
    assert_eq!(counter(first, "transitions"), transitions, "no transition");
    assert_eq!(first["last_transition"]["unix_time"], last_change);
    assert!(has(&lab.ns("h1"), VIP2));
    let log = vrrpd_log(&lab, "h1");
    assert!(
        log.contains("instance=VI_2 from=Master to=Initialize reason=Shutdown"),
        "the old VI_2 shut down gracefully:\n{log}"
    );

    // ---- SIGHUP: the second removed ------------------------------------------------------
    write(&lab, "h1", &h1);
    let hup = Instant::now();
    lab.signal(d1, "-HUP");
    let s = status_when(&lab, "h1", "VI_2 gone", |s| {
        s["instances"].as_array().is_some_and(|a| a.len() == 1)
    });
    while has(&lab.ns("h1"), VIP2) {
        assert!(
            hup.elapsed() < Duration::from_secs(2),
            "VI_2's address stays"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let gone = hup.elapsed();
    let first = find(&s, "VI_1");
    assert_eq!(counter(first, "transitions"), transitions, "no transition");
    assert_eq!(s["drivers"][0]["vrids"], serde_json::json!([51]));
    wait_log(&lab, "h1", "instance stopping");

    // ---- SIGHUP: a broken file -----------------------------------------------------------
    write(&lab, "h1", &h1.replace("priority = 150", "priority = 300"));
    lab.signal(d1, "-HUP");
    // The head is 3 lines, then the instance: `priority` is line 8.
    let mistake = format!(
        "{}:8:12: instance[0].priority: 300 is out of range",
        config(&lab, "h1").display()
    );
    let log = wait_log(&lab, "h1", "reload refused");
    assert!(log.contains(&mistake), "{mistake}\n{log}");
    let s = lab.status("h1");
    assert_eq!(s["reloads"]["failed"], 1);
    assert_eq!(s["reloads"]["succeeded"], 3);
    assert_eq!(s["reloads"]["last"]["ok"], false);
    assert!(
        s["reloads"]["last"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with(&mistake)),
        "{s:#}"
    );
    let first = find(&s, "VI_1");
    assert_eq!(first["state"], "MASTER");
    assert_eq!(counter(first, "transitions"), transitions);
    let (samples, missing, events) = watch.finish();
    assert_eq!(
        missing, 0,
        "VI_1's address left h1 in {missing} of {samples} samples during the reloads"
    );
    let vip1 = format!("inet {VIP1}");
    let vip2 = format!("inet {VIP2}");
    assert!(
        !events
            .lines()
            .any(|l| l.starts_with("Deleted") && l.contains(&vip1)),
        "VI_1's address was deleted during the reloads:\n{events}"
    );
    // The kernel saw VI_2's address come, go with the rebuild, come back and go for good.
    let vip2_events: Vec<bool> = events
        .lines()
        .filter(|l| l.contains(&vip2))
        .map(|l| !l.starts_with("Deleted"))
        .collect();
    assert_eq!(vip2_events, [true, false, true, false], "{events}");
    assert!(has(&lab.ns("h1"), VIP1) && !has(&lab.ns("h2"), VIP1));

    // ---- SIGTERM -------------------------------------------------------------------------
    lab.signal(d1, "-TERM");
    let child = &mut lab.children[d1];
    let stopped = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(stopped.elapsed() < Duration::from_secs(5), "h1 never exits");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(0));
    assert!(!lab.socket("h1").exists(), "status socket removed at exit");
    eprintln!(
        "reload: VI_2 Master {up:?} after SIGHUP; removed, its address gone {gone:?} after \
         SIGHUP; VI_1's address: no kernel event, present in all {samples} samples (5 ms \
         apart); its transitions stayed {transitions}"
    );
}
