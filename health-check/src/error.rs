//! [`CheckError`]: why a check failed, in words for a stats page.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

/// Why one run of a check failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The check did not finish within its timeout.
    #[error("no answer within {after:?}")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The TCP connection failed.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// Connected, but the exchange failed or the reply was not the expected one.
    #[error("{addr}: {reason}")]
    Reply {
        /// The target.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// No process of that name runs.
    #[error("no process named {name:?} is running")]
    ProcessNotRunning {
        /// The name looked for.
        name: String,
    },
    /// The pid file is unreadable, malformed, or names a process that is gone.
    #[error("pid file {path}: {reason}")]
    PidFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
