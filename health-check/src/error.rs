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
    /// An HTTP exchange failed: the request is invalid, or the reply is not HTTP, or the
    /// connection broke before the status (or the expected body) arrived.
    #[error("{addr} {request}: {reason}")]
    Http {
        /// The target.
        addr: SocketAddr,
        /// The method and path, e.g. `GET /health`.
        request: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP status is not one of the expected ones.
    #[error("HTTP {status} from {addr} {request} (expected {expected})")]
    HttpStatus {
        /// The target.
        addr: SocketAddr,
        /// The method and path, e.g. `GET /health`.
        request: String,
        /// The status received.
        status: u16,
        /// The statuses that pass, e.g. `2xx/3xx`, `200`, `200/204`, `200-249`.
        expected: String,
    },
    /// The HTTP body lacks the expected string (within the bytes read).
    #[error(
        "body of {addr} {request} lacks {expected:?} ({})",
        searched_text(*.searched, *.limit_reached)
    )]
    HttpBody {
        /// The target.
        addr: SocketAddr,
        /// The method and path, e.g. `GET /health`.
        request: String,
        /// The string looked for.
        expected: String,
        /// How many body bytes were searched.
        searched: usize,
        /// Whether the body was longer than the limit, so only its start was searched.
        limit_reached: bool,
    },
    /// The TLS handshake failed (certificate not trusted or not valid for the name, no common
    /// protocol, not a TLS server, ...), or the TLS settings are unusable.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The target.
        addr: SocketAddr,
        /// Why, in rustls' words.
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
    /// The program of an exec check failed: could not start, non-zero exit, killed.
    #[error("{command}: {reason}")]
    Exec {
        /// The command line, as shown in logs.
        command: String,
        /// What happened, with the first line of its standard error when it wrote one.
        reason: String,
    },
}

/// A [`MonitorConfig`](crate::MonitorConfig) that cannot run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An interval or the timeout is zero.
    #[error("{field} is zero: give it a positive duration (HAProxy's default inter is 2s)")]
    Zero {
        /// `interval`, `fastinter`, `downinter` or `timeout`.
        field: &'static str,
    },
    /// `rise` or `fall` is zero.
    #[error("{field} is 0: it counts consecutive checks, so it must be at least 1")]
    Threshold {
        /// `rise` or `fall`.
        field: &'static str,
    },
    /// `spread_percent` above 50.
    #[error("spread_percent is {percent}: it must be 0 to 50 (HAProxy's spread-checks)")]
    Spread {
        /// The value given.
        percent: u8,
    },
}

fn searched_text(searched: usize, limit_reached: bool) -> String {
    if limit_reached {
        format!("searched only the first {searched} bytes, the limit")
    } else {
        format!("searched all {searched} bytes")
    }
}
