//! [`ProcessCheck`]: is a process alive, by name (`killall -0 NAME`) or by pid file, read from
//! `/proc` without spawning anything.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::{Check, CheckError};
use pidfd::Unwatchable;

/// Healthy while the process runs (zombies count as gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessCheck {
    /// Any process whose name (`/proc/PID/comm`, at most 15 bytes, as `killall` matches) is
    /// this one.
    Name(String),
    /// The process whose pid the file holds.
    PidFile(PathBuf),
}

impl ProcessCheck {
    /// By name, like `killall -0 haproxy`.
    pub fn name(name: impl Into<String>) -> ProcessCheck {
        ProcessCheck::Name(name.into())
    }

    /// By pid file, like `kill -0 $(cat /run/haproxy.pid)`.
    pub fn pid_file(path: impl Into<PathBuf>) -> ProcessCheck {
        ProcessCheck::PidFile(path.into())
    }
}

/// Whether `/proc/PID` is a live process (not a zombie or dead task).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name, which may itself contain ") ".
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X")
    })
}

impl ProcessCheck {
    /// The live processes this check is about, or why there are none.
    fn running(&self) -> Result<Vec<u32>, CheckError> {
        match self {
            ProcessCheck::Name(name) => {
                // The kernel truncates comm to 15 bytes; match what killall matches.
                let wanted: String = name.chars().take(15).collect();
                let gone = || CheckError::ProcessNotRunning { name: name.clone() };
                let entries = std::fs::read_dir("/proc").map_err(|_| gone())?;
                let pids: Vec<u32> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim_end() == wanted)
                            && alive(&pid.to_string())
                    })
                    .collect();
                if pids.is_empty() {
                    Err(gone())
                } else {
                    Ok(pids)
                }
            }
            ProcessCheck::PidFile(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| CheckError::PidFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                let pid = text.trim();
                let Some(number) = pid
                    .parse::<u32>()
                    .ok()
                    .filter(|_| pid.bytes().all(|b| b.is_ascii_digit()))
                else {
                    return Err(CheckError::PidFile {
                        path: shown,
                        reason: format!("{pid:?} is not a pid"),
                    });
                };
                if alive(pid) {
                    Ok(vec![number])
                } else {
                    Err(CheckError::PidFile {
                        path: shown,
                        reason: format!("process {pid} is not running"),
                    })
                }
            }
        }
    }
}

#[async_trait]
impl Check for ProcessCheck {
    async fn check(&self) -> Result<(), CheckError> {
        self.running().map(|_| ())
    }

    fn describe(&self) -> String {
        match self {
            ProcessCheck::Name(n) => format!("process {n}"),
            ProcessCheck::PidFile(p) => format!("pid file {}", p.display()),
        }
    }

    /// Resolves when no process matches any more, watched through pidfds: the monitor hears
    /// of an exit within the scheduler's reaction time, not at the next check. When the
    /// processes watched have exited, the name (or pid file) is looked up again, so a
    /// replacement started meanwhile (a reload that re-execs, a new pid in the file) keeps
    /// the target up. Without pidfd support (Linux < 5.3) it never resolves and the checks
    /// alone decide.
    async fn failed(&self) -> CheckError {
        loop {
            let pids = match self.running() {
                Ok(pids) => pids,
                Err(e) => return e,
            };
            for pid in pids {
                if let Err(Unwatchable) = pidfd::exit(pid).await {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// Waiting for a process's exit through a pidfd (Linux 5.3+).
mod pidfd {
    use std::io;
    use std::os::fd::OwnedFd;

    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// This kernel or sandbox cannot watch processes: fall back to polling.
    pub(super) struct Unwatchable;

    /// Resolves when process `pid` has exited (or at once if it is already gone).
    pub(super) async fn exit(pid: u32) -> Result<(), Unwatchable> {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return Ok(());
        };
        let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::SRCH) => return Ok(()),
            Err(_) => return Err(Unwatchable),
        };
        let Ok(fd) = register(fd) else {
            return Err(Unwatchable);
        };
        // A pidfd becomes readable when its process terminates, and stays so.
        match fd.readable().await {
            Ok(_) => Ok(()),
            Err(_) => Err(Unwatchable),
        }
    }

    #[allow(unsafe_code)]
    fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: the `AsyncFd` takes ownership of `fd`, an open pidfd owned by it alone;
        // `OwnedFd::as_raw_fd` always returns that same descriptor, and nothing closes or
        // replaces it until the `AsyncFd` (and the `OwnedFd` with it) is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }
}
