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
}

fn searched_text(searched: usize, limit_reached: bool) -> String {
    if limit_reached {
        format!("searched only the first {searched} bytes, the limit")
    } else {
        format!("searched all {searched} bytes")
    }
}
