//! Why a stats page could not start.

use std::net::SocketAddr;

use thiserror::Error;

/// A stats page that cannot start: each message names the setting and the fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The page's address could not be bound.
    #[error(
        "stats page: cannot listen on {addr}: {source} (is the port taken, or the address not on this host? pick another bind address)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The page's path does not start with `/`, or is the metrics' own.
    #[error(
        "stats page uri {uri:?}: give a path starting with '/', other than /metrics (e.g. \"/stats\")"
    )]
    Uri {
        /// The path given.
        uri: String,
    },
    /// The metrics prefix would not make Prometheus names.
    #[error(
        "stats page metrics prefix {prefix:?}: give letters, digits, '_' or ':', not starting with a digit (e.g. \"lb\")"
    )]
    MetricsPrefix {
        /// The prefix given.
        prefix: String,
    },
    /// The title holds a control character (a newline, ...), which the realm header cannot carry.
    #[error("stats page title {title:?}: give one line of text without control characters")]
    Title {
        /// The title given.
        title: String,
    },
    /// The authentication's user is empty or holds a `:`, which basic authentication cannot
    /// carry.
    #[error("stats page user {user:?}: give a non-empty user name without ':'")]
    User {
        /// The user given.
        user: String,
    },
}
