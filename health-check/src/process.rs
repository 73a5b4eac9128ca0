//! [`ProcessCheck`]: is a process alive, by name (`killall -0 NAME`) or by pid file, read from
//! `/proc` without spawning anything.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::{Check, CheckError};

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

#[async_trait]
impl Check for ProcessCheck {
    async fn check(&self) -> Result<(), CheckError> {
        match self {
            ProcessCheck::Name(name) => {
                // The kernel truncates comm to 15 bytes; match what killall matches.
                let wanted: String = name.chars().take(15).collect();
                let entries = std::fs::read_dir("/proc")
                    .map_err(|_| CheckError::ProcessNotRunning { name: name.clone() })?;
                let found = entries.flatten().any(|e| {
                    let pid = e.file_name().to_string_lossy().into_owned();
                    pid.bytes().all(|b| b.is_ascii_digit())
                        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim_end() == wanted)
                        && alive(&pid)
                });
                if found {
                    Ok(())
                } else {
                    Err(CheckError::ProcessNotRunning { name: name.clone() })
                }
            }
            ProcessCheck::PidFile(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| CheckError::PidFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                let pid = text.trim();
                if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CheckError::PidFile {
                        path: shown,
                        reason: format!("{pid:?} is not a pid"),
                    });
                }
                if alive(pid) {
                    Ok(())
                } else {
                    Err(CheckError::PidFile {
                        path: shown,
                        reason: format!("process {pid} is not running"),
                    })
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            ProcessCheck::Name(n) => format!("process {n}"),
            ProcessCheck::PidFile(p) => format!("pid file {}", p.display()),
        }
    }
}
