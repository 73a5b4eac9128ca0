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
    #[error("no interface named {interface:?} in this network namespace (see `ip link`)")]
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

/// Why a command to a spawned driver ([`DriverHandle`](super::DriverHandle)) did not take.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The driver has ended; nothing it ran is running any more.
    #[error("the VRRP driver has ended ({0})")]
    DriverEnded(DriverExit),
    /// The driver did not answer in time (a blocking call from outside its runtime).
    #[error("the VRRP driver did not answer within {within:?}: its runtime may not be running")]
    NotAnswered {
        /// How long the caller waited.
        within: std::time::Duration,
    },
    /// No router of that VRID runs on the driver.
    #[error("no virtual router with VRID {vrid} runs on this driver")]
    UnknownRouter {
        /// The VRID asked for.
        vrid: crate::packet::Vrid,
    },
    /// The router tracks no object of that name.
    #[error(
        "virtual router {vrid} tracks no object named {name:?} (it tracks {known:?}): add it to `Config::trackers`"
    )]
    UnknownTracker {
        /// The router.
        vrid: crate::packet::Vrid,
        /// The name asked for.
        name: String,
        /// The names it tracks.
        known: Vec<String>,
    },
}

/// How a spawned driver ended ([`DriverHandle::closed`](super::DriverHandle::closed),
/// [`DriverEvents::exit`](super::DriverEvents::exit)).
///
/// Whatever the cause, a driver that returned shut its routers down first (the last event of
/// each is a `StateChanged` to `Initialize`); one that panicked or was aborted could not, and
/// its owner must release what the routers held.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverExit {
    /// Stopped on purpose: [`DriverHandle::stop`](super::DriverHandle::stop), or every
    /// handle dropped.
    #[error("stopped")]
    Stopped,
    /// Its socket or timer failed.
    #[error("failed: {0}")]
    Failed(String),
    /// Its task panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// Its task was cancelled (the runtime shutting down).
    #[error("cancelled with its runtime")]
    Cancelled,
}
