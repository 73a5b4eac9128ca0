//! The story in network namespaces: a bridge in `hd<pid>sw`, routers in `hd<pid>r1` and
//! `hd<pid>r2`, the client in `hd<pid>cl`, all on 10.99.0.0/24. Each router is this binary run
//! again inside its namespace with `--router CONFIG` (vrrpd's daemon, in-process: one build,
//! nothing else to install), and so is the client (`--client ADDRESS`, ICMP echo at a fixed
//! rate). Traffic stays inside these namespaces.
//!
//! Every namespace and process is registered with the [`Lab`] before it exists, and
//! [`Lab::teardown`] removes them all: after the story, after an error, on a panic (through
//! [`Guard`]) and on SIGINT / SIGTERM / SIGHUP (from `main`).

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::RATE;
use crate::logs;
use crate::story::{CLIENT, Line, Node, Outcome, ROUTERS, VIP, VIP_PREFIX, VRID, advert_interval};

/// What went wrong; each says where to look.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LabError {
    /// Building the namespaces failed (the caller falls back to the simulator).
    #[error("building the namespaces: `ip {args}` failed: {stderr}")]
    Setup {
        /// The arguments.
        args: String,
        /// What `ip` said.
        stderr: String,
    },
    /// A program did not start.
    #[error("starting {what}: {source}")]
    Spawn {
        /// Which.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The story did not go as it should.
    #[error("{what} (the logs stay in {dir})")]
    Story {
        /// What did not happen.
        what: String,
        /// Where the logs are.
        dir: String,
    },
    /// The lab was torn down under the story (a signal).
    #[error("interrupted")]
    Closed,
}

#[derive(Debug, Default)]
struct State {
    namespaces: Vec<String>,
    children: Vec<Child>,
    closed: bool,
    keep_logs: bool,
}

/// The namespaces and processes of one run.
#[derive(Debug)]
pub(crate) struct Lab {
    prefix: String,
    dir: PathBuf,
    state: Mutex<State>,
}

/// Tears the lab down if the story panics.
pub(crate) struct Guard<'a>(pub(crate) &'a Lab);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.teardown();
        }
    }
}

impl Lab {
    /// A lab named after this process, nothing built yet.
    pub(crate) fn new() -> Lab {
        let prefix = format!("hd{}", std::process::id());
        Lab {
            dir: std::env::temp_dir().join(format!("ha-demo-{prefix}")),
            prefix,
            state: Mutex::new(State::default()),
        }
    }

    /// The namespace of `host` (`sw`, `r1`, `r2`, `cl`).
    pub(crate) fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ip(&self, args: &[&str]) -> Result<(), LabError> {
        if self.lock().closed {
            return Err(LabError::Closed);
        }
        let setup = |stderr: String| LabError::Setup {
            args: args.join(" "),
            stderr,
        };
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| setup(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(setup(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ))
        }
    }

    fn add_namespace(&self, host: &str) -> Result<String, LabError> {
        let name = self.ns(host);
        // Registered first, so that a failure half-way is cleaned up too.
        self.lock().namespaces.push(name.clone());
        self.ip(&["netns", "add", &name])?;
        Ok(name)
    }

    /// The bridge and `hosts` on it, each with its addresses (/24) on its `eth0`.
    pub(crate) fn build(&self, hosts: &[(&str, &[Ipv4Addr])]) -> Result<(), LabError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| LabError::Setup {
            args: format!("(creating {})", self.dir.display()),
            stderr: e.to_string(),
        })?;
        let sw = self.add_namespace("sw")?;
        self.ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        // No STP delay, and multicast (VRRP's 224.0.0.18) flooded whatever snooping learnt.
        self.ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])?;
        self.ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (host, addresses) in hosts {
            let ns = self.add_namespace(host)?;
            let port = format!("to-{host}");
            // Both ends are made inside the lab: nothing appears in the caller's namespace.
            self.ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            self.ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            self.ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            self.ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            for address in *addresses {
                self.ip(&[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{address}/24"),
                    "dev",
                    "eth0",
                ])?;
            }
        }
        Ok(())
    }

    /// Sets `host`'s link `up` or down (`ip link set eth0 up|down` in its namespace).
    pub(crate) fn link(&self, host: &str, up: bool) -> Result<(), LabError> {
        let state = if up { "up" } else { "down" };
        self.ip(&["-n", &self.ns(host), "link", "set", "eth0", state])
            .map_err(|e| self.failed(format!("setting {host}'s link {state}: {e}")))
    }

    /// This binary, which the lab runs again in the namespaces.
    pub(crate) fn exe() -> Result<PathBuf, LabError> {
        std::env::current_exe().map_err(|source| LabError::Spawn {
            what: "finding this binary to run in the namespaces".into(),
            source,
        })
    }

    /// Runs `program args` in `host`'s namespace, stdout and stderr to `log` in the lab's
    /// directory; returns its index.
    pub(crate) fn spawn(
        &self,
        host: &str,
        program: &Path,
        args: &[&str],
        log: &str,
    ) -> Result<usize, LabError> {
        let what = format!("{} in {}", program.display(), self.ns(host));
        let spawn_error = |source| LabError::Spawn {
            what: what.clone(),
            source,
        };
        let out = File::create(self.dir.join(log)).map_err(spawn_error)?;
        let err = out.try_clone().map_err(spawn_error)?;
        let mut state = self.lock();
        if state.closed {
            return Err(LabError::Closed);
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_error)?;
        state.children.push(child);
        Ok(state.children.len() - 1)
    }

    /// Sends `signal` (`-TERM`, `-INT`, `-KILL`) to child `i` (`ip netns exec` became the
    /// program, so this is its PID) and waits up to `within` for it to exit.
    pub(crate) fn signal(&self, i: usize, signal: &str, within: Duration) -> bool {
        let pid = match self.lock().children.get(i) {
            Some(c) => c.id().to_string(),
            None => return false,
        };
        let _ = Command::new("kill").args([signal, &pid]).status();
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(c) = self.lock().children.get_mut(i)
                && matches!(c.try_wait(), Ok(Some(_)))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// [`Lab::signal`], an error naming `what` unless it exits within `within`.
    pub(crate) fn stop(
        &self,
        i: usize,
        signal: &str,
        within: Duration,
        what: &str,
    ) -> Result<(), LabError> {
        if self.signal(i, signal, within) {
            Ok(())
        } else {
            Err(self.failed(format!("{what} did not exit on SIG{}", &signal[1..])))
        }
    }

    /// Waits up to `within` for `host` to hold the virtual address.
    pub(crate) fn wait_vip(&self, host: &str, within: Duration) -> Result<(), LabError> {
        let what = format!("{host} did not take the address");
        self.wait_for(within, &what, || self.has_vip(host))
    }

    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    pub(crate) fn has_vip(&self, host: &str) -> bool {
        Command::new("ip")
            .args([
                "-n",
                &self.ns(host),
                "-o",
                "-4",
                "addr",
                "show",
                "dev",
                "eth0",
            ])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/{VIP_PREFIX}"))
            })
    }

    /// Polls `done` every 5 ms for up to `within`.
    pub(crate) fn wait_for(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn() -> bool,
    ) -> Result<(), LabError> {
        let started = Instant::now();
        while !done() {
            if self.lock().closed {
                return Err(LabError::Closed);
            }
            if started.elapsed() > within {
                return Err(self.failed(format!("{what} within {within:?}")));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    pub(crate) fn failed(&self, what: String) -> LabError {
        self.lock().keep_logs = true;
        LabError::Story {
            what,
            dir: self.dir.display().to_string(),
        }
    }

    /// Writes `text` to `name` in the lab's directory; its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> Result<PathBuf, LabError> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| LabError::Spawn {
            what: format!("writing {}", path.display()),
            source: e,
        })?;
        Ok(path)
    }

    fn write_config(&self, node: &Node) -> Result<PathBuf, LabError> {
        let text = format!(
            "# ha-demo: {name} in namespace {ns}\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\nversion = 3\nadvert_interval = \"{ms}ms\"\nvirtual_addresses = [\"{VIP}/{VIP_PREFIX}\"]\n",
            name = node.name,
            ns = self.ns(node.name),
            vrid = VRID.get(),
            priority = node.priority,
            ms = advert_interval().as_duration().as_millis(),
        );
        self.write(&format!("{}.toml", node.name), &text)
    }

    /// Kills every process of the lab, deletes its namespaces (and its logs unless a step
    /// failed); returns the namespaces deleted. Runs once: later calls find nothing.
    pub(crate) fn teardown(&self) -> Vec<String> {
        let (children, namespaces, keep_logs) = {
            let mut s = self.lock();
            s.closed = true;
            (
                std::mem::take(&mut s.children),
                std::mem::take(&mut s.namespaces),
                s.keep_logs,
            )
        };
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut deleted = Vec::new();
        for ns in namespaces.iter().rev() {
            let ok = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                deleted.push(ns.clone());
            }
        }
        if !keep_logs {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        deleted
    }
}

pub(crate) fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Builds the lab and runs the VRRP-only story in it (`--vrrp-only`). The caller tears the
/// lab down afterwards.
pub(crate) fn run(lab: &Lab) -> Result<Outcome, LabError> {
    let _guard = Guard(lab);
    let start = SystemTime::now();
    let at = |t: SystemTime| t.duration_since(start).unwrap_or_default();
    let since = |epoch_secs: f64| Duration::from_secs_f64((epoch_secs - epoch(start)).max(0.0));
    let mut lines = Vec::new();
    lab.build(&[
        (ROUTERS[0].name, &[ROUTERS[0].address]),
        (ROUTERS[1].name, &[ROUTERS[1].address]),
        ("cl", &[CLIENT]),
    ])?;
    lines.push(Line {
        at: at(SystemTime::now()),
        text: format!(
            "namespaces up: {} (bridge), {} and {} (routers), {} (client)",
            lab.ns("sw"),
            lab.ns("r1"),
            lab.ns("r2"),
            lab.ns("cl")
        ),
    });
    let exe = Lab::exe()?;
    let [first, second] = ROUTERS;
    let router = |node: &Node, lines: &mut Vec<Line>| -> Result<usize, LabError> {
        let config = lab.write_config(node)?;
        lines.push(Line {
            at: at(SystemTime::now()),
            text: format!("{}: vrrpd in {}", node.starts(), lab.ns(node.name)),
        });
        let config = config.display().to_string();
        lab.spawn(
            node.name,
            &exe,
            &["--router", &config],
            &format!("{}.log", node.name),
        )
    };
    let r1 = router(&first, &mut lines)?;
    lab.wait_vip(first.name, Duration::from_secs(5))?;
    let r2 = router(&second, &mut lines)?;
    lab.wait_for(Duration::from_secs(5), "r2 did not enter Backup", || {
        lab.log("r2.log").contains("to=Backup")
    })?;
    lines.push(Line {
        at: at(SystemTime::now()),
        text: format!("the client ({CLIENT}) sends {RATE} echo requests a second to {VIP}"),
    });
    let client = lab.spawn("cl", &exe, &["--client", &VIP.to_string()], "client.log")?;
    std::thread::sleep(Duration::from_secs(1));
    // The Master's host dies: its link goes (no more adverts, and its kernel no longer answers
    // for the address, which a killed daemon would leave on eth0), and its vrrpd is SIGKILLed
    // (no priority-0 advert).
    let crash = SystemTime::now();
    lines.push(Line {
        at: at(crash),
        text: format!(
            "{} (the Master) crashes: its link cut, its vrrpd SIGKILLed (no priority-0 advert)",
            first.name
        ),
    });
    lab.ip(&["-n", &lab.ns(first.name), "link", "set", "eth0", "down"])
        .map_err(|e| lab.failed(format!("cutting r1's link: {e}")))?;
    lab.stop(r1, "-KILL", Duration::from_secs(5), "r1")?;
    lab.wait_vip(second.name, Duration::from_secs(5))?;
    lines.push(Line {
        at: at(SystemTime::now()),
        text: format!("{VIP} is on {}'s eth0", lab.ns(second.name)),
    });
    // Replies flow again (the gratuitous ARPs moved the client's ARP entry); let them show it.
    std::thread::sleep(Duration::from_secs(1));
    lab.signal(client, "-KILL", Duration::from_secs(3));
    let replies = logs::replies(&lab.log("client.log"));
    let client = logs::client_view(&replies, epoch(crash), RATE).ok_or_else(|| {
        lab.failed(format!(
            "the client needs replies before and after the crash ({} replies in all)",
            replies.len()
        ))
    })?;
    let mut takeover = None;
    for node in [first, second] {
        for c in logs::changes(&lab.log(&format!("{}.log", node.name))) {
            if node.name == second.name && c.to == "Master" && c.at > epoch(crash) {
                takeover.get_or_insert(since(c.at) - at(crash));
            }
            lines.push(Line {
                at: since(c.at),
                text: format!("{}: {} -> {} ({})", node.name, c.from, c.to, c.reason),
            });
        }
    }
    let takeover =
        takeover.ok_or_else(|| lab.failed("r2's log shows no takeover after the crash".into()))?;
    // A graceful stop for the survivor: priority 0, the address removed.
    lab.signal(r2, "-TERM", Duration::from_secs(5));
    Ok(Outcome {
        mode: "namespaces",
        lines,
        takeover,
        client: Some(client),
    })
}
