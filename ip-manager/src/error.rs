//! [`Error`]: what can go wrong moving an address, said so that an operator can fix it.

use thiserror::Error;

/// An `ip-manager` error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks a capability for the operation.
    #[error(
        "{operation} needs {capability}: run as root or grant it (systemd: AmbientCapabilities={capability})"
    )]
    PermissionDenied {
        /// What was attempted.
        operation: String,
        /// The missing capability.
        capability: &'static str,
    },
    /// No interface of that name in this network namespace.
    #[error("interface {name:?} does not exist in this network namespace (see `ip link`)")]
    UnknownInterface {
        /// The name asked for.
        name: String,
    },
    /// A malformed virtual address.
    #[error("invalid virtual address {vip:?}: {reason}")]
    InvalidVip {
        /// The address as given.
        vip: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The interface has no address of the family to send from.
    #[error(
        "{interface} has no {family} address to send VRRP adverts from: add one, or give the source explicitly (unicast source)"
    )]
    NoSourceAddress {
        /// The interface.
        interface: String,
        /// `IPv4` or `IPv6 link-local`.
        family: &'static str,
    },
    /// The kernel refused a netlink request.
    #[error("{operation} failed: {message}")]
    Netlink {
        /// What was attempted.
        operation: String,
        /// The kernel's answer.
        message: String,
    },
    /// A hook exited with a failure status.
    #[error("hook {hook} failed with {status}: {stderr}")]
    HookFailed {
        /// The program.
        hook: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A hook ran past its timeout; its process group was killed.
    #[error("hook {hook} did not finish within {timeout:?}; its process group was killed")]
    HookTimedOut {
        /// The program.
        hook: String,
        /// The timeout.
        timeout: std::time::Duration,
    },
    /// The AWS API answered with an error (its code, e.g. `InvalidAllocationID.NotFound`, and
    /// message, which names the id), or could not be reached.
    #[error("AWS {action} failed: {code}: {message}")]
    Aws {
        /// The API action.
        action: String,
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// No usable AWS credentials.
    #[error("no AWS credentials: {reason}")]
    AwsCredentials {
        /// Where it looked and what was missing.
        reason: String,
    },
    /// Some frames of an announcement could not be sent, each tried twice; the others went
    /// out (a failed frame never stops the rest of the sequence).
    #[error(
        "{failed} of {attempted} announcement frames for {vip} could not be sent; the last: {last}"
    )]
    Announce {
        /// The address announced.
        vip: String,
        /// The frames given up.
        failed: usize,
        /// The frames tried.
        attempted: usize,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },
    /// A socket or process error.
    #[error("{operation} failed: {source}")]
    Io {
        /// What was attempted.
        operation: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error of `operation`, reported as it is.
    pub(crate) fn io(operation: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            operation: operation.into(),
            source,
        }
    }

    /// An error opening or using a raw socket: EPERM / EACCES there means CAP_NET_RAW is missing.
    pub(crate) fn raw_socket(operation: impl Into<String>, source: std::io::Error) -> Error {
        let operation = operation.into();
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            return Error::PermissionDenied {
                operation,
                capability: "CAP_NET_RAW",
            };
        }
        Error::Io { operation, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn only_raw_sockets_blame_a_capability() {
        let denied = || IoError::from(ErrorKind::PermissionDenied);
        let e = Error::raw_socket("opening an AF_PACKET socket", denied());
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        // A script without the execute bit is not a capability problem.
        let e = Error::io("starting hook /etc/ha/notify.sh", denied());
        assert!(!e.to_string().contains("CAP_"), "{e}");
    }
}
