//! The two-host VRRP lab shared by the vrrpd tests: vrrpd and keepalived started in the
//! namespaces of `netlab.sh`, crashed, stopped, and the VIP watched.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Asserts that `text` (a log, a command's output) contains every one of `needles`, showing
/// it when not.
#[track_caller]
pub(crate) fn assert_has(text: &str, needles: &[&str]) {
    let missing: Vec<&str> = needles
        .iter()
        .copied()
        .filter(|n| !text.contains(n))
        .collect();
    assert!(missing.is_empty(), "{missing:?} missing from:\n{text}");
}

/// One interop mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mode {
    pub(crate) name: &'static str,
    pub(crate) version: u8,
    /// Advert interval in centiseconds (v2: whole seconds).
    pub(crate) centis: u32,
    pub(crate) ipv6: bool,
    pub(crate) auth: bool,
    pub(crate) unicast: bool,
}

impl Mode {
    pub(crate) fn vip(&self) -> &'static str {
        if self.ipv6 {
            "fd99::200/64"
        } else {
            "10.99.0.200/24"
        }
    }

    pub(crate) fn addr(&self, host: &str) -> &'static str {
        match (self.ipv6, host) {
            (false, "h1") => "10.99.0.11",
            (false, _) => "10.99.0.12",
            (true, "h1") => "fd99::11",
            (true, _) => "fd99::12",
        }
    }

    pub(crate) fn other(host: &str) -> &'static str {
        if host == "h1" { "h2" } else { "h1" }
    }

    /// In a unicast mode, `host`'s address and its peer's.
    pub(crate) fn unicast(&self, host: &str) -> Option<(&'static str, &'static str)> {
        self.unicast
            .then(|| (self.addr(host), self.addr(Mode::other(host))))
    }

    /// A generous bound for an election (Master_Down_Interval is about 3.6 intervals).
    pub(crate) fn election(&self) -> Duration {
        Duration::from_millis(u64::from(self.centis) * 10 * 4 + 2000)
    }
}

pub(crate) const MODES: [Mode; 6] = [
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
        name: "v2 unicast 1s",
        version: 2,
        centis: 100,
        ipv6: false,
        auth: false,
        unicast: true,
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

/// VRRPv3 over IPv4 at 100 ms adverts: the fast mode most tests run.
pub(crate) const V3_IPV4_100MS: Mode = MODES[0];
/// VRRPv2 at 1 s adverts, keepalived's default.
pub(crate) const V2_1S: Mode = MODES[2];

pub(crate) struct Lab {
    pub(crate) mode: Mode,
    pub(crate) prefix: String,
    pub(crate) netlab: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) children: Vec<Child>,
    /// The vrrpd that [`Lab::vrrpd`] starts: the test's own build unless a test sets another
    /// (vrrpd_takeover measures the release build).
    pub(crate) vrrpd_program: PathBuf,
    /// Environment variables of every process [`Lab::spawn`] starts (none unless a test sets
    /// them: AWS credentials for a cloud backend).
    pub(crate) envs: Vec<(&'static str, &'static str)>,
}

impl Lab {
    /// A lab for tests that write their vrrpd configurations themselves: its mode (what
    /// [`Lab::has_vip`] looks for) is [`V3_IPV4_100MS`].
    pub(crate) fn new(netlab: PathBuf, tag: &str) -> Lab {
        Lab::up(netlab, tag, V3_IPV4_100MS)
    }

    /// The lab (`tag` names it) in `mode`, up, when `test` can run here (root, iproute2; see
    /// [`super::netlab_or_skip`]).
    pub(crate) fn or_skip(test: &str, tag: &str, mode: Mode) -> Option<Lab> {
        let netlab = super::netlab_or_skip(test, &[("ip", "-V")])?;
        Some(Lab::up(netlab, tag, mode))
    }

    pub(crate) fn up(netlab: PathBuf, tag: &str, mode: Mode) -> Lab {
        let prefix = format!("{tag}{}", std::process::id() % 10_000);
        let dir = super::fresh_dir(&format!("vrrpd-ka-{prefix}"));
        let lab = Lab {
            mode,
            prefix,
            netlab,
            dir,
            children: Vec::new(),
            vrrpd_program: PathBuf::from(env!("CARGO_BIN_EXE_vrrpd")),
            envs: Vec::new(),
        };
        super::netlab_up(&lab.netlab, &lab.prefix);
        lab.settle();
        lab
    }

    pub(crate) fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// `ip -n NS ARGS` for `host`'s namespace; fails the test if it fails.
    pub(crate) fn ip(&self, host: &str, args: &str) {
        let ns = self.ns(host);
        let status = Command::new("ip")
            .args(["-n", &ns])
            .args(args.split_whitespace())
            .status()
            .expect("ip runs");
        assert!(status.success(), "ip -n {ns} {args}");
    }

    /// Runs `args` in `host`'s namespace; fails the test if it fails.
    pub(crate) fn ip_netns_exec(&self, host: &str, args: &[&str]) {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .status()
            .expect("ip netns exec runs");
        assert!(status.success(), "ip netns exec {} {args:?}", self.ns(host));
    }

    pub(crate) fn vrrpd(&mut self, host: &str, priority: u8, m: Mode) -> usize {
        self.vrrpd_with(host, priority, m, "")
    }

    /// vrrpd with `extra` config lines for its instance (e.g. `preempt = false`).
    pub(crate) fn vrrpd_with(&mut self, host: &str, priority: u8, m: Mode, extra: &str) -> usize {
        // The status socket in the test's directory, not in /run.
        let mut text = format!(
            "status_socket = \"{}\"\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nversion = {}\nadvert_interval = \"{}ms\"\nvirtual_addresses = [\"{}\"]\n",
            self.socket(host).display(),
            m.version,
            m.centis * 10,
            m.vip()
        );
        if m.auth {
            text.push_str("auth_pass = \"secret12\"\n");
        }
        if let Some((me, peer)) = m.unicast(host) {
            text.push_str(&format!(
                "unicast_source = \"{me}\"\nunicast_peers = [\"{peer}\"]\n"
            ));
        }
        text.push_str(extra);
        self.vrrpd_config(host, host, &text)
    }

    /// vrrpd on `host` with the configuration `text`, written to `NAME.toml` in the lab's
    /// directory (its log: `NAME.vrrpd.log`); returns its index.
    pub(crate) fn vrrpd_config(&mut self, host: &str, name: &str, text: &str) -> usize {
        let config = self.dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).expect("config");
        let program = self.vrrpd_program.clone();
        self.spawn(host, program, &format!("{name}.vrrpd.log"), |c| {
            c.arg("--config").arg(&config);
        })
    }

    /// The status socket [`Lab::vrrpd_with`] gives the vrrpd of `host`.
    pub(crate) fn socket(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.sock"))
    }

    /// Starts `program` in `host`'s namespace with the arguments `args` adds and the lab's
    /// `envs`, its stderr in the file `log` of the lab's directory; returns its index.
    pub(crate) fn spawn(
        &mut self,
        host: &str,
        program: impl AsRef<OsStr>,
        log: &str,
        args: impl FnOnce(&mut Command),
    ) -> usize {
        let program = program.as_ref();
        let log = std::fs::File::create(self.dir.join(log)).expect("log");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns(host)])
            .arg(program)
            .envs(self.envs.iter().copied());
        args(&mut command);
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
        self.children.push(child);
        self.children.len() - 1
    }

    pub(crate) fn keepalived(&mut self, host: &str, priority: u8, m: Mode) -> usize {
        self.keepalived_with(host, priority, m, "")
    }

    /// keepalived with `extra` lines in its `vrrp_instance` (e.g. `use_vmac`).
    pub(crate) fn keepalived_with(
        &mut self,
        host: &str,
        priority: u8,
        m: Mode,
        extra_lines: &str,
    ) -> usize {
        let config = self.dir.join(format!("{host}.conf"));
        let advert = if m.centis.is_multiple_of(100) {
            format!("{}", m.centis / 100)
        } else {
            format!("{}", f64::from(m.centis) / 100.0)
        };
        let mut extra = extra_lines.to_owned();
        if m.auth {
            extra.push_str("  authentication {\n    auth_type PASS\n    auth_pass secret12\n  }\n");
        }
        if let Some((me, peer)) = m.unicast(host) {
            extra.push_str(&format!(
                "  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n"
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
        let pid = |n: &str| self.dir.join(format!("{host}.{n}.pid"));
        let (main, vrrp) = (pid("main"), pid("vrrp"));
        self.spawn(host, "keepalived", &format!("{host}.keepalived.log"), |c| {
            c.args(["-n", "-l", "-D", "-f"])
                .arg(&config)
                .arg("-p")
                .arg(main)
                .arg("-r")
                .arg(vrrp);
        })
    }

    /// [`crash`](Lab::crash)es child `i` and waits (polling every 5 ms) until `host` holds the
    /// VIP; fails, naming `who`, if that takes `within` or longer. Returns the time from the
    /// crash to the takeover. The crashed host keeps its copy of the address (no clean stop
    /// removed it).
    pub(crate) fn crash_until_vip(
        &mut self,
        i: usize,
        host: &str,
        within: Duration,
        who: &str,
    ) -> Duration {
        let crashed = Instant::now();
        self.crash(i);
        while !self.has_vip(host) {
            assert!(crashed.elapsed() < within, "{who} never took over");
            std::thread::sleep(Duration::from_millis(5));
        }
        crashed.elapsed()
    }

    /// A host crash: SIGKILL to child `i` and to its crash guard (the guard first, so that it
    /// does not act), its guard file removed (a rebooted host has an empty /run): nothing is
    /// cleaned up. Waits for the child to be gone.
    pub(crate) fn crash(&mut self, i: usize) {
        let child = &mut self.children[i];
        for (guard, file) in guards_of(child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &guard.to_string()])
                .status();
            if let Some(file) = file {
                let _ = std::fs::remove_file(file);
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    /// The daemon alone dies (SIGKILL to child `i`, as the OOM killer or a segfault would
    /// end it): its crash guard acts. Waits for the child to be gone; returns its guards'
    /// PIDs as they were.
    pub(crate) fn kill_daemon(&mut self, i: usize) -> Vec<u32> {
        let child = &mut self.children[i];
        let guards = guards_of(child.id()).into_iter().map(|(g, _)| g).collect();
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        guards
    }

    /// vrrpd on h1 at priority `h1` and on h2 at `h2` (lower), in the lab's mode `m`; waits
    /// for the election to leave the VIP on h1 alone. Returns their child indexes.
    pub(crate) fn vrrpd_pair(&mut self, m: Mode, h1: u8, h2: u8) -> (usize, usize) {
        let master = self.vrrpd("h1", h1, m);
        let backup = self.vrrpd("h2", h2, m);
        self.wait_vip("h1", "h2", m.election());
        (master, backup)
    }

    /// SIGKILLs daemon `i`, the Master on h1 with one crash guard beside it, after 500 ms of
    /// settling, and waits up to 3 s for the VIP to be on h2 alone; checks in h1's log `log`
    /// that the guard sent priority 0 and removed the address. Returns the time from the kill
    /// to the takeover, and the log.
    pub(crate) fn kill_guarded_master(&mut self, i: usize, log: &str) -> (Duration, String) {
        std::thread::sleep(Duration::from_millis(500));
        let killed = Instant::now();
        let guards = self.kill_daemon(i);
        assert_eq!(guards.len(), 1, "one crash guard beside the daemon");
        self.wait_vip("h2", "h1", Duration::from_secs(3));
        let took = killed.elapsed();
        let log = self.log(log);
        assert_has(
            &log,
            &[
                "priority 0 sent to 1 of 1 destinations",
                "1 of 1 virtual addresses removed",
            ],
        );
        (took, log)
    }

    /// The PIDs of child `i`'s crash guards.
    pub(crate) fn guards(&self, i: usize) -> Vec<u32> {
        guards_of(self.children[i].id())
            .into_iter()
            .map(|(g, _)| g)
            .collect()
    }

    /// Sends `signal` (e.g. `-HUP`) to child `i`; fails the test if `kill` fails.
    pub(crate) fn signal(&self, i: usize, signal: &str) {
        let pid = self.children[i].id().to_string();
        let ok = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    /// SIGTERM to child `i`, without waiting (keepalived lingers a second after its
    /// priority-0 advert).
    pub(crate) fn terminate(&self, i: usize) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.children[i].id().to_string()])
            .status();
    }

    /// SIGTERM to child `i` (the process `ip netns exec` became), waits for it to exit.
    pub(crate) fn stop(&mut self, i: usize) -> Duration {
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

    pub(crate) fn has_vip(&self, host: &str) -> bool {
        self.addresses(host).contains(self.mode.vip())
    }

    /// `ip -o addr show dev eth0` in `host`'s namespace.
    pub(crate) fn addresses(&self, host: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.ns(host), "-o", "addr", "show", "dev", "eth0"])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for both hosts' IPv6 addresses to leave duplicate address detection.
    pub(crate) fn settle(&self) {
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

    /// Does `act`, then waits until the VIP is on `host` and not on `other`; returns how long
    /// both took.
    pub(crate) fn timed_move(
        &self,
        [host, other]: [&str; 2],
        within: Duration,
        act: impl FnOnce(),
    ) -> Duration {
        let started = Instant::now();
        act();
        self.wait_vip(host, other, within);
        started.elapsed()
    }

    /// Waits until the VIP is on `host` and not on `other`; returns how long it took.
    pub(crate) fn wait_vip(&self, host: &str, other: &str, within: Duration) -> Duration {
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

    /// A host crash of the keepalived started as child `i` on `host`: both its processes
    /// frozen, then killed (a SIGKILL of the parent alone makes the VRRP child stop gracefully).
    pub(crate) fn crash_keepalived(&mut self, i: usize, host: &str) {
        let pids: Vec<String> = ["main", "vrrp"]
            .iter()
            .filter_map(|n| std::fs::read_to_string(self.dir.join(format!("{host}.{n}.pid"))).ok())
            .map(|p| p.trim().to_owned())
            .collect();
        for signal in ["-STOP", "-KILL"] {
            for pid in &pids {
                let _ = Command::new("kill").args([signal, pid]).status();
            }
        }
        self.crash(i);
        // A rebooted host has an empty /run; here the dead VRRP child may linger as a zombie
        // (pid 1 of a container need not reap), and keepalived would refuse to start.
        for n in ["main", "vrrp"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{host}.{n}.pid")));
        }
    }

    /// Removes the VIP from `host` (what a crashed host's kernel no longer answers for).
    pub(crate) fn drop_vip(&self, host: &str) {
        let _ = Command::new("ip")
            .args([
                "-n",
                &self.ns(host),
                "addr",
                "del",
                self.mode.vip(),
                "dev",
                "eth0",
            ])
            .status();
    }

    /// The MAC address of `host`'s eth0.
    pub(crate) fn mac(&self, host: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.ns(host), "-o", "link", "show", "eth0"])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "link/ether");
        words.next().unwrap_or_default().to_owned()
    }

    /// The client pings the VIP and its neighbour entry for it names `host`'s MAC: traffic
    /// really goes to the new Master.
    pub(crate) fn client_reaches(&self, host: &str) {
        let vip = self.mode.vip().split('/').next().unwrap_or_default();
        let want = self.mac(host);
        let started = Instant::now();
        loop {
            let ping = super::client::pings(self, vip);
            let neigh = super::client::neighbour(self, vip);
            if ping && neigh.contains(&want) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{}: the client does not reach {vip} at {host} ({want}): ping ok {ping}, neighbour {neigh:?}",
                self.mode.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `vrrpd --status` of the vrrpd that [`Lab::vrrpd_with`] started on `host`, parsed.
    pub(crate) fn status(&self, host: &str) -> serde_json::Value {
        let out = Command::new(&self.vrrpd_program)
            .arg("--status")
            .arg("--config")
            .arg(self.dir.join(format!("{host}.toml")))
            .output()
            .expect("vrrpd --status runs");
        assert!(
            out.status.success(),
            "vrrpd --status on {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("vrrpd --status prints JSON")
    }

    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            // The crash guards first: a torn-down lab is not a crash to act on.
            for (guard, _) in guards_of(c.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &guard.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = Command::new("kill")
                .args(["-KILL", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = c.wait();
        }
        let _ = super::netlab(&self.netlab, &self.prefix, "down");
        // The configs and logs stay for a failed test to be read.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A capture (tshark) in a lab namespace, stopped with SIGINT and read back.
pub(crate) struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing `filter` on `interface` of namespace `host` (e.g. "sw" and "br0"),
    /// once tshark is really capturing.
    pub(crate) fn start(
        lab: &Lab,
        host: &str,
        interface: &str,
        filter: &str,
        name: &str,
    ) -> Capture {
        let file = lab.dir.join(format!("{name}.pcap"));
        let _ = std::fs::remove_file(&file);
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns(host),
                "tshark",
                "-n",
                "-q",
                "-i",
                interface,
            ])
            .args(["-f", filter, "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tshark starts");
        let started = Instant::now();
        while std::fs::metadata(&file).map_or(0, |m| m.len()) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tshark did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        Capture { child, file }
    }

    /// Stops the capture and returns the file.
    pub(crate) fn stop(mut self) -> PathBuf {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tshark's `fields` of the frames matching `filter` in `pcap`, one Vec per frame.
/// The path of `netlab.sh` when a test of vrrpd against keepalived, watched by tshark, can
/// run here (root, iproute2, keepalived, tshark); otherwise `None` after skipping `test`.
pub(crate) fn keepalived_lab_or_skip(test: &str) -> Option<PathBuf> {
    let tools = [
        ("ip", "-V"),
        ("keepalived", "--version"),
        ("tshark", "--version"),
    ];
    super::netlab_or_skip(test, &tools)
}

/// The keepalived lab (see [`keepalived_lab_or_skip`]) named `tag`, up in mode `m`, when
/// `test` can run here.
pub(crate) fn keepalived_lab(test: &str, tag: &str, m: Mode) -> Option<Lab> {
    Some(Lab::up(keepalived_lab_or_skip(test)?, tag, m))
}

/// Runs `run` with the keepalived lab's `netlab.sh` in each of `modes`, when `test` can run
/// here (see [`keepalived_lab_or_skip`]).
pub(crate) fn keepalived_lab_each(test: &str, modes: &[Mode], mut run: impl FnMut(&Path, Mode)) {
    if let Some(netlab) = keepalived_lab_or_skip(test) {
        for &m in modes {
            run(&netlab, m);
        }
    }
}

pub(crate) fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The longest time two routers were Master together, from the adverts in `pcap`: each
/// source's run of non-zero-priority adverts (gaps under 1.5 intervals) is its time as
/// Master; the result is the largest overlap of two sources' runs.
pub(crate) fn two_masters(pcap: &Path, interval: Duration) -> Duration {
    // (source, first, last, closed by a priority-0 advert)
    let mut spans: Vec<(String, f64, f64, bool)> = Vec::new();
    let gap = interval.as_secs_f64() * 1.5;
    for f in tshark(
        pcap,
        "vrrp",
        &["frame.time_epoch", "ip.src", "ipv6.src", "vrrp.prio"],
    ) {
        let (Some(t), Some(prio)) = (
            f.first().and_then(|t| t.parse::<f64>().ok()),
            f.get(3).and_then(|p| p.parse::<u8>().ok()),
        ) else {
            continue;
        };
        let source = f
            .get(1)
            .filter(|s| !s.is_empty())
            .or(f.get(2))
            .cloned()
            .unwrap_or_default();
        let open = spans
            .iter_mut()
            .rev()
            .find(|s| s.0 == source)
            .filter(|s| !s.3 && t - s.2 <= gap);
        match (prio, open) {
            (0, Some(span)) => span.3 = true,
            (0, None) => {}
            (_, Some(span)) => span.2 = t,
            (_, None) => spans.push((source, t, t, false)),
        }
    }
    let mut worst = 0.0f64;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if a.0 != b.0 {
                worst = worst.max(a.2.min(b.2) - a.1.max(b.1));
            }
        }
    }
    Duration::from_secs_f64(worst.max(0.0))
}

/// The crash guards among the children of process `pid` (named `crash-guard`), each with the
/// guard file it holds open.
pub(crate) fn guards_of(pid: u32) -> Vec<(u32, Option<PathBuf>)> {
    // Every thread's children: hald forks its guard from its VRRP thread.
    let children: String = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .collect::<Vec<_>>()
        .join(" ");
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|n| n.trim() == "crash-guard")
        })
        .map(|c| {
            let file = std::fs::read_dir(format!("/proc/{c}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .find(|p| p.extension().is_some_and(|e| e == "guard"));
            (c, file)
        })
        .collect()
}

/// Whether process `pid` is gone (or a zombie nobody reaped).
pub(crate) fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}
