//! Why a proxy could not start.

use std::net::SocketAddr;

use thiserror::Error;

/// A proxy that cannot start: each message names the setting and the fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The listen socket could not be set up.
    #[error(
        "proxy {proxy:?}: cannot listen on {addr}: {source} (is the port taken, or below 1024 without CAP_NET_BIND_SERVICE?)"
    )]
    Bind {
        /// The proxy.
        proxy: String,
        /// The address.
        addr: SocketAddr,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// No server configured.
    #[error("proxy {proxy:?}: no servers: give it at least one")]
    NoServers {
        /// The proxy.
        proxy: String,
    },
    /// Two servers share a name.
    #[error("proxy {proxy:?}: two servers are named {server:?}: give each server its own name")]
    DuplicateServer {
        /// The proxy.
        proxy: String,
        /// The name.
        server: String,
    },
    /// `maxconn = 0` would never accept.
    #[error("proxy {proxy:?}: maxconn 0 accepts nothing: set it to 1 or more")]
    ZeroMaxConn {
        /// The proxy.
        proxy: String,
    },
}
