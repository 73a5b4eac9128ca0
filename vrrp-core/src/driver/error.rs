//! [`DriverError`].

use std::io;

use thiserror::Error;

/// Why the driver could not open or use its socket.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The process lacks a capability (`CAP_NET_RAW` for raw sockets).
    #[error(
        "{what} on {interface} needs {capability}: run as root, or grant it (systemd: AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN)"
    )]
    PermissionDenied {
        /// What was attempted.
        what: &'static str,
        /// The interface.
        interface: String,
        /// The missing capability.
        capability: &'static str,
    },
    /// No such interface.
    #[error("no interface named {interface:?}: check the `interface` key")]
    UnknownInterface {
        /// The name given.
        interface: String,
    },
    /// Another socket error.
    #[error("{what} on {interface}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The interface.
        interface: String,
        /// The error.
        source: io::Error,
    },
}

impl DriverError {
    pub(crate) fn from_io(what: &'static str, interface: &str, source: io::Error) -> DriverError {
        if source.kind() == io::ErrorKind::PermissionDenied {
            DriverError::PermissionDenied {
                what,
                interface: interface.to_owned(),
                capability: "CAP_NET_RAW",
            }
        } else {
            DriverError::Io {
                what,
                interface: interface.to_owned(),
                source,
            }
        }
    }
}
