//! vrrpd against real keepalived 2.2 in a namespace lab, both ways, in several modes (VRRPv3
//! over IPv4 and IPv6, VRRPv2 with and without `auth_pass`, VRRPv3 unicast):
//! - vrrpd (priority 101) Master, keepalived (100) Backup: the VIP is on h1 only for 20 adverts
//!   (keepalived accepts ours); a graceful stop of vrrpd sends priority 0 and keepalived takes
//!   the VIP after Skew_Time rather than Master_Down_Interval;
//! - keepalived (101) Master, vrrpd (100) Backup: vrrpd stays Backup on keepalived's adverts;
//!   keepalived stopped (priority 0), vrrpd takes the VIP.
//!
//! Still to come (vrrpd issue): SIGKILL, preemption on/off, the v3 RFC 9568 checksum camp.
//! Needs root, iproute2 and keepalived; under `CI` a missing prerequisite fails the test.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One interop mode.
#[derive(Clone, Copy, Debug)]
struct Mode {
    name: &'static str,
    version: u8,
    /// Advert interval in centiseconds (v2: whole seconds).
    centis: u32,
    ipv6: bool,
    auth: bool,
    unicast: bool,
}

impl Mode {
    fn vip(&self) -> &'static str {
        if self.ipv6 {
            "fd99::200/64"
        } else {
            "10.99.0.200/24"
        }
    }

    fn addr(&self, host: &str) -> &'static str {
        match (self.ipv6, host) {
            (false, "h1") => "10.99.0.11",
            (false, _) => "10.99.0.12",
            (true, "h1") => "fd99::11",
            (true, _) => "fd99::12",
        }
    }

    fn other(host: &str) -> &'static str {
        if host == "h1" { "h2" } else { "h1" }
    }

    /// A generous bound for an election (Master_Down_Interval is about 3.6 intervals).
    fn election(&self) -> Duration {
        Duration::from_millis(u64::from(self.centis) * 10 * 4 + 2000)
    }
}

const MODES: [Mode; 5] = [
    Mode {
        name: "v3 IPv4 100ms",
        version: 3,
        centis: 10,
        ipv6: false,
        auth: false,
        unicast: false,
    },
    Mode {
        name: "v3 IPv6 100ms",
        version: 3,
        centis: 10,
        ipv6: true,
        auth: false,
        unicast: false,
    },
    Mode {
        name: "v2 1s",
        version: 2,
        centis: 100,
        ipv6: false,
        auth: false,
        unicast: false,
    },
    Mode {
        name: "v2 1s auth_pass",
        version: 2,
        centis: 100,
        ipv6: false,
        auth: true,
        unicast: false,
    },
    Mode {
        name: "v3 IPv4 unicast 100ms",
        version: 3,
        centis: 10,
        ipv6: false,
        auth: false,
        unicast: true,
    },
];

struct Lab {
    mode: Mode,
    prefix: String,
    netlab: PathBuf,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn up(netlab: PathBuf, tag: &str, mode: Mode) -> Lab {
        let prefix = format!("{tag}{}", std::process::id() % 10_000);
        let dir = std::env::temp_dir().join(format!("vrrpd-ka-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let lab = Lab {
            mode,
            prefix,
            netlab,
            dir,
            children: Vec::new(),
        };
        let _ = lab::netlab(&lab.netlab, &lab.prefix, "down");
        let out = lab::netlab(&lab.netlab, &lab.prefix, "up");
        assert!(
            out.status.success(),
            "netlab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.settle();
        lab
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn vrrpd(&mut self, host: &str, priority: u8, m: Mode) -> usize {
        self.vrrpd_with(host, priority, m, "")
    }

    /// vrrpd with `extra` config lines for its instance (e.g. `preempt = false`).
    fn vrrpd_with(&mut self, host: &str, priority: u8, m: Mode, extra: &str) -> usize {
        let config = self.dir.join(format!("{host}.toml"));
        // The status socket in the test's directory, not in /run.
        let mut text = format!(
            "status_socket = \"{}\"\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nversion = {}\nadvert_interval = \"{}ms\"\nvirtual_addresses = [\"{}\"]\n",
            self.dir.join(format!("{host}.sock")).display(),
            m.version,
            m.centis * 10,
            m.vip()
        );
        if m.auth {
            text.push_str("auth_pass = \"secret12\"\n");
        }
        if m.unicast {
            text.push_str(&format!(
                "unicast_source = \"{}\"\nunicast_peers = [\"{}\"]\n",
                m.addr(host),
                m.addr(Mode::other(host))
            ));
        }
        text.push_str(extra);
        std::fs::write(&config, text).expect("config");
        let log = std::fs::File::create(self.dir.join(format!("{host}.vrrpd.log"))).expect("log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                env!("CARGO_BIN_EXE_vrrpd"),
                "--config",
            ])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("vrrpd starts");
        self.children.push(child);
        self.children.len() - 1
    }

    fn keepalived(&mut self, host: &str, priority: u8, m: Mode) -> usize {
        let config = self.dir.join(format!("{host}.conf"));
        let advert = if m.centis.is_multiple_of(100) {
            format!("{}", m.centis / 100)
        } else {
            format!("{}", f64::from(m.centis) / 100.0)
        };
        let mut extra = String::new();
        if m.auth {
            extra.push_str("  authentication {\n    auth_type PASS\n    auth_pass secret12\n  }\n");
        }
        if m.unicast {
            extra.push_str(&format!(
                "  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n",
                m.addr(host),
                m.addr(Mode::other(host))
            ));
        }
        std::fs::write(
            &config,
            format!(
                "global_defs {{ router_id {0} }}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  version {1}\n  advert_int {advert}\n  virtual_ipaddress {{ {2} }}\n{extra}}}\n",
                self.ns(host),
                m.version,
                m.vip()
            ),
        )
        .expect("config");
        let log =
            std::fs::File::create(self.dir.join(format!("{host}.keepalived.log"))).expect("log");
        let pid = |n: &str| self.dir.join(format!("{host}.{n}.pid"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
            ])
            .arg(&config)
            .arg("-p")
            .arg(pid("main"))
            .arg("-r")
            .arg(pid("vrrp"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("keepalived starts");
        self.children.push(child);
        self.children.len() - 1
    }

    /// SIGKILL to child `i` (a crash: nothing is cleaned up), waits for it to be gone.
    fn crash(&mut self, i: usize) {
        let child = &mut self.children[i];
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    /// SIGTERM to child `i` (the process `ip netns exec` became), waits for it to exit.
    fn stop(&mut self, i: usize) -> Duration {
        let child = &mut self.children[i];
        let pid = child.id().to_string();
        let started = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "process {pid} did not stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn has_vip(&self, host: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns(host), "-o", "addr", "show", "dev", "eth0"])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).contains(self.mode.vip())
    }

    /// Waits for both hosts' IPv6 addresses to leave duplicate address detection.
    fn settle(&self) {
        for _ in 0..300 {
            let tentative = ["h1", "h2"].iter().any(|h| {
                let out = Command::new("ip")
                    .args(["-n", &self.ns(h), "-6", "-o", "addr", "show", "dev", "eth0"])
                    .output()
                    .expect("ip runs");
                String::from_utf8_lossy(&out.stdout).contains("tentative")
            });
            if !tentative {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the VIP is on `host` and not on `other`; returns how long it took.
    fn wait_vip(&self, host: &str, other: &str, within: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.has_vip(host) && !self.has_vip(other) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "VIP not on {host} alone within {within:?} (on {host}: {}, on {other}: {}); logs in {}",
            self.has_vip(host),
            self.has_vip(other),
            self.dir.display()
        );
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-KILL", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = c.wait();
        }
        let _ = lab::netlab(&self.netlab, &self.prefix, "down");
    }
}

fn prerequisites(test: &str) -> Option<PathBuf> {
    match lab::prerequisites(&[("ip", "-V"), ("keepalived", "--version")]) {
        Ok(path) => Some(path),
        Err(why) => {
            lab::skip(test, &why);
            None
        }
    }
}

fn vrrpd_master_keepalived_backup(netlab: &Path, m: Mode) {
    let mut lab = Lab::up(netlab.to_path_buf(), "vk", m);
    let vrrpd = lab.vrrpd("h1", 101, m);
    lab.keepalived("h2", 100, m);
    // vrrpd wins after its Master_Down_Interval and keeps it: the VIP on h1 only for 20
    // adverts, so keepalived accepts ours (checksum, TTL, version, auth).
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(u64::from(m.centis) * 10 * 20));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "{}: two masters or none",
        m.name
    );
    // Graceful stop: priority 0, keepalived takes over after Skew_Time, not Master_Down.
    let stop = Instant::now();
    lab.stop(vrrpd);
    lab.wait_vip("h2", "h1", m.election());
    let handover = stop.elapsed();
    let k = lab.log("h2.keepalived.log");
    assert!(
        k.contains("priority 0"),
        "{}: keepalived saw the priority-0 advert: {k}",
        m.name
    );
    // Skew_Time is (256 - 100) / 256 of an interval; allow scheduling slack.
    let bound = Duration::from_millis(u64::from(m.centis) * 10 + 500);
    assert!(handover < bound, "{}: handover took {handover:?}", m.name);
    eprintln!(
        "{}: vrrpd Master -> keepalived: VIP on h2 alone {handover:?} after the stop",
        m.name
    );
}

fn keepalived_master_vrrpd_backup(netlab: &Path, m: Mode) {
    let mut lab = Lab::up(netlab.to_path_buf(), "kv", m);
    let keepalived = lab.keepalived("h1", 101, m);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election() + Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(u64::from(m.centis) * 10 * 20));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "{}: vrrpd must stay Backup on keepalived's adverts; logs in {}",
        m.name,
        lab.dir.display()
    );
    let stop = Instant::now();
    lab.stop(keepalived);
    lab.wait_vip("h2", "h1", m.election());
    let took = stop.elapsed();
    let v = lab.log("h2.vrrpd.log");
    assert!(v.contains("to=Master"), "{}: {v}", m.name);
    eprintln!(
        "{}: keepalived Master -> vrrpd: VIP on h2 alone {took:?} after the stop",
        m.name
    );
}

#[test]
fn vrrpd_and_keepalived_interoperate_both_ways_in_every_mode() {
    let Some(netlab) = prerequisites("vrrpd_and_keepalived_interoperate_both_ways_in_every_mode")
    else {
        return;
    };
    for m in MODES {
        vrrpd_master_keepalived_backup(&netlab, m);
        keepalived_master_vrrpd_backup(&netlab, m);
    }
}

#[test]
fn a_tracked_process_that_dies_hands_the_vip_to_keepalived() {
    let Some(netlab) = prerequisites("a_tracked_process_that_dies_hands_the_vip_to_keepalived")
    else {
        return;
    };
    let m = MODES[0];
    let mut lab = Lab::up(netlab, "tp", m);
    // The "haproxy": a copy of sleep under a name of its own (the kernel keeps 15 bytes).
    let name = format!("hatrack{}", std::process::id() % 100_000);
    let binary = lab.dir.join(&name);
    std::fs::copy("/bin/sleep", &binary).expect("copy sleep");
    let mut dummy = Command::new(&binary)
        .arg("600")
        .spawn()
        .expect("dummy runs");
    lab.vrrpd_with(
        "h1",
        101,
        m,
        &format!(
            "track = [{{ check = \"chk_lb\", weight = -10 }}]\n\n[[check]]\nname = \"chk_lb\"\nkind = \"process\"\nprocess = \"{name}\"\ninterval = \"50ms\"\nrise = 1\nfall = 1\n"
        ),
    );
    lab.keepalived("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.has_vip("h1") && !lab.has_vip("h2"));
    // haproxy dies: priority 101 - 10 = 91 < 100, keepalived preempts.
    let killed = Instant::now();
    dummy.kill().expect("kill");
    let _ = dummy.wait();
    lab.wait_vip("h2", "h1", Duration::from_secs(3));
    let took = killed.elapsed();
    let v = lab.log("h1.vrrpd.log");
    assert!(
        v.contains("tracked check changed") && v.contains("up=false"),
        "{v}"
    );
    // keepalived's `killall -0` every 2 s would take seconds; the check at 50 ms plus one
    // advert and keepalived's preemption take a fraction of that.
    assert!(took < Duration::from_millis(600), "took {took:?}");
    eprintln!("tracked process killed: VIP on keepalived's host after {took:?}");
}

#[test]
fn after_a_crash_vrrpd_cleans_up_its_leftover_vip_and_preempts_or_not() {
    let Some(netlab) =
        prerequisites("after_a_crash_vrrpd_cleans_up_its_leftover_vip_and_preempts_or_not")
    else {
        return;
    };
    let m = MODES[0];
    let mut lab = Lab::up(netlab, "cr", m);
    let first = lab.vrrpd("h1", 101, m);
    lab.keepalived("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    // SIGKILL: no priority 0, the VIP stays on h1; keepalived takes over after its
    // Master_Down_Interval (3 x 100 ms + skew).
    let crashed = Instant::now();
    lab.crash(first);
    while !lab.has_vip("h2") {
        assert!(
            crashed.elapsed() < Duration::from_secs(3),
            "keepalived never took over"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let takeover = crashed.elapsed();
    assert!(lab.has_vip("h1"), "a crash leaves the address behind");
    assert!(takeover >= Duration::from_millis(300), "{takeover:?}");
    // Restarted with preempt = false: the leftover address goes at start-up, and vrrpd stays
    // Backup although it has the higher priority.
    let second = lab.vrrpd_with("h1", 101, m, "preempt = false\n");
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lab.has_vip("h2") && !lab.has_vip("h1"),
        "no preemption with preempt = false"
    );
    lab.stop(second);
    // Restarted with preemption (the default): it takes the VIP back.
    lab.vrrpd("h1", 101, m);
    let back = lab.wait_vip("h1", "h2", m.election());
    eprintln!(
        "SIGKILL: keepalived took over after {takeover:?}; vrrpd preempted back after {back:?}"
    );
}
