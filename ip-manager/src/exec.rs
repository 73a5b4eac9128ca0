//! Operator scripts: [`ExecHook`] runs one (keepalived `notify` style), and [`ExecManager`]
//! is an [`IpManager`] whose add and remove are scripts, for setups where a script already
//! knows how to move the address (a cloud CLI, a router API).
//!
//! A hook runs its program directly with its arguments, no shell, unless built with
//! [`ExecHook::shell`]. Its timeout kills the whole process group, so a script's children do
//! not outlive it. Stdout and stderr are captured and returned.
//!
//! Reconciliation: nothing to observe. What a script did (a cloud CLI, a router API) cannot
//! be read back, so [`ExecManager`] keeps the trait's default
//! ([`Reconcile::unobservable`](crate::Reconcile::unobservable)): a failover's reconciler does
//! nothing for it, and an address moved behind the daemon's back stays moved until the next
//! takeover runs the script again. A script-backed setup that can tell should wrap the manager
//! and implement `owns` and `reconcile` (a poll period).

use std::collections::BTreeSet;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::{Error, IpManager, Vip};

/// How long a hook may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One command to run, with its arguments and a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecHook {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

/// What a finished hook did.
#[derive(Clone, Debug)]
pub struct ExecOutcome {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ExecHook {
    /// Runs `program` with `args`, no shell involved: `$(...)` or `;` in an argument are
    /// passed to the program as they are.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> ExecHook {
        ExecHook {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Runs `script` with `/bin/sh -c`, for configurations that ask for a shell (keepalived's
    /// `notify_master "/etc/ha/notify.sh master"` strings). Extra arguments become `$1`, `$2`...
    pub fn shell(script: impl Into<String>) -> ExecHook {
        ExecHook::new(
            "/bin/sh",
            ["-c".to_owned(), script.into(), "hook".to_owned()],
        )
    }

    /// Sets the timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> ExecHook {
        self.timeout = timeout;
        self
    }

    /// Runs the hook with `extra` appended to its arguments. A non-zero exit is
    /// [`Error::HookFailed`]; running past the timeout kills the process group and is
    /// [`Error::HookTimedOut`].
    pub async fn run(&self, extra: &[&str]) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format!("starting hook {}", self.program), e))?;
        let pgid = child.id();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
            let status = child.wait().await;
            (status, out, err)
        };
        let Ok((status, out, err)) = tokio::time::timeout(self.timeout, collect).await else {
            if let Some(pgid) = pgid {
                kill_process_group(pgid);
            }
            return Err(Error::HookTimedOut {
                hook: self.program.clone(),
                timeout: self.timeout,
            });
        };
        let status =
            status.map_err(|e| Error::io(format!("waiting for hook {}", self.program), e))?;
        let outcome = ExecOutcome {
            status,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            elapsed: started.elapsed(),
        };
        if outcome.status.success() {
            Ok(outcome)
        } else {
            Err(Error::HookFailed {
                hook: self.program.clone(),
                status: outcome.status,
                stderr: outcome.stderr,
            })
        }
    }

    /// keepalived's notify call: `TYPE NAME STATE PRIORITY`, e.g.
    /// `INSTANCE VI_1 MASTER 101`.
    pub async fn notify(
        &self,
        name: &str,
        state: &str,
        priority: u8,
    ) -> Result<ExecOutcome, Error> {
        self.run(&["INSTANCE", name, state, &priority.to_string()])
            .await
    }
}

/// SIGKILL to every process of group `pgid` (the hook and whatever it started).
#[allow(unsafe_code)]
fn kill_process_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: killpg takes plain integers and has no memory effects; a group that is already
    // gone gives ESRCH, which is fine to ignore here.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// An [`IpManager`] whose `add` and `remove` run scripts with the arguments
/// `ADDRESS/PREFIX INTERFACE`. It remembers what it added, for `list` and `owns`.
///
/// ```
/// use ip_manager::{ExecHook, ExecManager, IpManager, Vip};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ip_manager::Error> {
/// // A real setup calls e.g. a cloud CLI; `true` stands in for it here.
/// let ips = ExecManager::new(ExecHook::new("true", ["add"]), ExecHook::new("true", ["del"]));
/// let vip = Vip::parse("10.99.0.200/24", "eth0")?;
/// ips.add(&vip).await?;   // runs: true add 10.99.0.200/24 eth0
/// assert!(ips.owns(&vip).await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExecManager {
    add: ExecHook,
    remove: ExecHook,
    added: Mutex<BTreeSet<Vip>>,
}

impl ExecManager {
    /// A manager running `add` and `remove`.
    pub fn new(add: ExecHook, remove: ExecHook) -> ExecManager {
        ExecManager {
            add,
            remove,
            added: Mutex::new(BTreeSet::new()),
        }
    }
}

#[async_trait]
impl IpManager for ExecManager {
    async fn add(&self, vip: &Vip) -> Result<(), Error> {
        let cidr = format!("{}/{}", vip.address, vip.prefix_len);
        self.add.run(&[&cidr, &vip.interface]).await?;
        if let Ok(mut a) = self.added.lock() {
            a.insert(vip.clone());
        }
        Ok(())
    }

    async fn remove(&self, vip: &Vip) -> Result<(), Error> {
        let cidr = format!("{}/{}", vip.address, vip.prefix_len);
        self.remove.run(&[&cidr, &vip.interface]).await?;
        if let Ok(mut a) = self.added.lock() {
            a.retain(|v| !(v.address == vip.address && v.interface == vip.interface));
        }
        Ok(())
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, Error> {
        Ok(self
            .added
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|v| v.interface == interface)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}
