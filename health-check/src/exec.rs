//! [`ExecCheck`]: run a program, healthy when it exits 0 (keepalived's `vrrp_script`, HAProxy's
//! `external-check`).
//!
//! The program runs in a process group of its own. When a run ends, for whatever reason (exit,
//! its own timeout, or the [`Monitor`](crate::Monitor) dropping it at the monitor's timeout),
//! the whole group is killed with `SIGKILL`, so a hung script and anything it started are gone
//! before the next run. At most one run is in flight per check.
//!
//! Zombies: the program itself is reaped by tokio. Processes it started are reparented to the
//! nearest "child subreaper" or to pid 1 when they die; a proper init (systemd, tini) reaps them,
//! but a container whose pid 1 does not would keep them as zombies. [`become_subreaper`] makes
//! this process adopt them, and the check then reaps every member of its group.

use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use rustix::process::{Pid, Signal, WaitOptions};
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio::sync::Mutex;

use crate::{Check, CheckError};

/// How much of the program's standard error goes into the error text.
const STDERR_KEPT: usize = 256;

/// Healthy when the program exits with status 0.
///
/// Runs the program directly with its arguments (no shell); [`ExecCheck::shell`] asks for
/// `/bin/sh -c`. Standard input is `/dev/null`, standard output is discarded, and the start of
/// standard error (256 bytes) is kept for the error text.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use health_check::{Check, ExecCheck};
///
/// assert!(ExecCheck::new("true").check().await.is_ok());
/// let err = ExecCheck::shell("echo 'haproxy is gone' >&2; exit 3").check().await.unwrap_err();
/// assert_eq!(err.to_string(), "sh -c \"echo 'haproxy is gone' >&2; exit 3\": exited with status 3: haproxy is gone");
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a check does nothing until a Monitor runs it"]
pub struct ExecCheck {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Option<Duration>,
    shown: String,
    in_flight: Mutex<()>,
}

impl ExecCheck {
    /// Runs `program` (looked up in `PATH` when it has no slash) without arguments.
    pub fn new(program: impl Into<OsString>) -> ExecCheck {
        let program = program.into();
        let shown = program.to_string_lossy().into_owned();
        ExecCheck {
            program,
            args: Vec::new(),
            env: Vec::new(),
            timeout: None,
            shown,
            in_flight: Mutex::new(()),
        }
    }

    /// Runs `command` through `/bin/sh -c`, for checks written as shell one-liners.
    pub fn shell(command: impl Into<String>) -> ExecCheck {
        let command = command.into();
        let shown = format!("sh -c {command:?}");
        let mut check = ExecCheck::new("/bin/sh").args(["-c".to_owned(), command]);
        check.shown = shown;
        check
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> ExecCheck {
        let arg = arg.into();
        self.shown.push(' ');
        self.shown.push_str(&arg.to_string_lossy());
        self.args.push(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, A>(self, args: I) -> ExecCheck
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        args.into_iter().fold(self, ExecCheck::arg)
    }

    /// Sets an environment variable for the program (the rest is inherited).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> ExecCheck {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Kills the run after `timeout` even when called outside a [`Monitor`](crate::Monitor)
    /// (a monitor applies its own timeout to every check).
    pub fn timeout(mut self, timeout: Duration) -> ExecCheck {
        self.timeout = Some(timeout);
        self
    }

    async fn run(&self) -> Result<(), CheckError> {
        let failed = |reason: String| CheckError::Exec {
            command: self.shown.clone(),
            reason,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("could not start: {e}")))?;
        // From here on the group dies with this guard, also when the future is dropped. On a
        // normal exit tokio has reaped the leader first; its pgid stays reserved while any
        // member lives, and killing an empty group is a harmless ESRCH.
        let _group = child.id().and_then(group_of).map(GroupGuard);
        let mut stderr = child.stderr.take();
        let mut kept = Vec::new();
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                more = read_some(&mut stderr, &mut kept) => {
                    if !more {
                        stderr = None;
                    }
                }
            }
        };
        let status = status.map_err(|e| failed(format!("could not wait for it: {e}")))?;
        if status.success() {
            return Ok(());
        }
        // The writers are dead or about to be (the guard kills the group): what is in the pipe
        // is all there is. Bounded in case a stray process escaped the group.
        let _ = tokio::time::timeout(Duration::from_millis(20), async {
            while read_some(&mut stderr, &mut kept).await {}
        })
        .await;
        Err(failed(exit_reason(status, &kept)))
    }
}

#[async_trait]
impl Check for ExecCheck {
    async fn check(&self) -> Result<(), CheckError> {
        let Ok(_running) = self.in_flight.try_lock() else {
            return Err(CheckError::Exec {
                command: self.shown.clone(),
                reason: "the previous run is still in flight".into(),
            });
        };
        match self.timeout {
            None => self.run().await,
            Some(after) => tokio::time::timeout(after, self.run())
                .await
                .unwrap_or(Err(CheckError::Timeout { after })),
        }
    }

    fn describe(&self) -> String {
        format!("exec {}", self.shown)
    }
}

/// Reads what is there (keeping the first [`STDERR_KEPT`] bytes); `false` at the end.
async fn read_some(stream: &mut Option<ChildStderr>, kept: &mut Vec<u8>) -> bool {
    let Some(s) = stream else {
        return std::future::pending().await;
    };
    let mut chunk = [0u8; 512];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let room = STDERR_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..n.min(room)]);
            true
        }
    }
}

fn exit_reason(status: ExitStatus, stderr: &[u8]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    };
    let text = String::from_utf8_lossy(stderr);
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!("{how}: {line}"),
        None => how,
    }
}

fn group_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Kills the process group when dropped and reaps what it can of it.
struct GroupGuard(Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let pgid = self.0;
        // ESRCH: the group is already empty. Nothing else can fail for our own group.
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        // SIGKILL is delivered asynchronously: keep reaping members that were reparented to us
        // (only when this process is a subreaper) until none is left. The leader is usually
        // tokio's to reap; whoever gets it first is fine.
        if reap_group(pgid) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for _ in 0..200 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if reap_group(pgid) {
                        return;
                    }
                }
            });
        }
    }
}

/// Reaps the group's dead members; `true` once none of our children is in it.
fn reap_group(pgid: Pid) -> bool {
    loop {
        match rustix::process::waitpgid(pgid, WaitOptions::NOHANG) {
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(e) => return e == rustix::io::Errno::CHILD,
        }
    }
}

/// Makes this process a "child subreaper" (`prctl(PR_SET_CHILD_SUBREAPER)`): processes started
/// by check scripts that outlive their parent are reparented here instead of to pid 1, and
/// [`ExecCheck`] reaps them. Call it once at start-up in a daemon that may run as pid 1's child
/// in a container without a reaping init; under systemd or tini it is not needed.
pub fn become_subreaper() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(io::Error::from)
}
