//! vrrpd against real keepalived 2.2 in a namespace lab (VRRPv3 over IPv4, 100 ms adverts):
//! - vrrpd (priority 101) Master, keepalived (100) Backup: the VIP is on h1 only; a graceful
//!   stop of vrrpd sends priority 0 and keepalived takes the VIP within Skew_Time-ish;
//! - keepalived (101) Master, vrrpd (100) Backup: vrrpd stays Backup on keepalived's adverts;
//!   keepalived stopped (priority 0), vrrpd takes the VIP.
//!
//! More modes (v2, auth, IPv6, unicast, SIGKILL, preemption) follow in the vrrpd issue.
//! Needs root, iproute2 and keepalived; under `CI` a missing prerequisite fails the test.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.99.0.200";

struct Lab {
    prefix: String,
    netlab: PathBuf,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn up(netlab: PathBuf, tag: &str) -> Lab {
        let prefix = format!("{tag}{}", std::process::id() % 10_000);
        let dir = std::env::temp_dir().join(format!("vrrpd-ka-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let lab = Lab {
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
        lab
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn vrrpd(&mut self, host: &str, priority: u8) -> usize {
        let config = self.dir.join(format!("{host}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"{VIP}/24\"]\n"
            ),
        )
        .expect("config");
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

    fn keepalived(&mut self, host: &str, priority: u8) -> usize {
        let config = self.dir.join(format!("{host}.conf"));
        std::fs::write(
            &config,
            format!(
                "global_defs {{ router_id {0} }}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {{ {VIP}/24 }}\n}}\n",
                self.ns(host)
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
            .args([
                "-n",
                &self.ns(host),
                "-4",
                "-o",
                "addr",
                "show",
                "dev",
                "eth0",
            ])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/24"))
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

fn vrrpd_master_keepalived_backup(netlab: &Path) {
    let mut lab = Lab::up(netlab.to_path_buf(), "vk");
    let vrrpd = lab.vrrpd("h1", 101);
    lab.keepalived("h2", 100);
    // vrrpd wins after its Master_Down_Interval (~0.32 s) and keeps it: the VIP on h1 only,
    // for 2 s (20 adverts) — keepalived accepts our adverts (checksum, TTL, version).
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "two masters or none"
    );
    // Graceful stop: priority 0, keepalived takes over after Skew_Time, not Master_Down.
    let stop = Instant::now();
    let exited = lab.stop(vrrpd);
    let moved = lab.wait_vip("h2", "h1", Duration::from_secs(3));
    let handover = stop.elapsed().min(exited + moved);
    let k = lab.log("h2.keepalived.log");
    assert!(
        k.contains("priority 0"),
        "keepalived saw the priority-0 advert: {k}"
    );
    assert!(
        handover < Duration::from_millis(1500),
        "handover took {handover:?}"
    );
    eprintln!("vrrpd Master → keepalived: exit {exited:?}, VIP on h2 alone after {handover:?}");
}

fn keepalived_master_vrrpd_backup(netlab: &Path) {
    let mut lab = Lab::up(netlab.to_path_buf(), "kv");
    let keepalived = lab.keepalived("h1", 101);
    lab.vrrpd("h2", 100);
    lab.wait_vip("h1", "h2", Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "vrrpd must stay Backup on keepalived's adverts"
    );
    let stop = Instant::now();
    lab.stop(keepalived);
    lab.wait_vip("h2", "h1", Duration::from_secs(3));
    let took = stop.elapsed();
    let v = lab.log("h2.vrrpd.log");
    assert!(v.contains("to=Master"), "{v}");
    eprintln!("keepalived Master → vrrpd: VIP on h2 alone {took:?} after the stop");
}

#[test]
fn vrrpd_and_keepalived_interoperate_both_ways_v3_ipv4() {
    let Some(netlab) = prerequisites("vrrpd_and_keepalived_interoperate_both_ways_v3_ipv4") else {
        return;
    };
    vrrpd_master_keepalived_backup(&netlab);
    keepalived_master_vrrpd_backup(&netlab);
}
