//! The status socket: a unix socket (mode 0600) that answers every connection with the
//! daemon's [`Status`](super::status::Status) as one line of JSON and closes it; and
//! [`query`], the other end, for `vrrpd --status`.
//!
//! ```text
//! $ socat - UNIX-CONNECT:/run/vrrpd/vrrpd.sock    # what vrrpd --status does, unformatted
//! ```
//!
//! At start, a socket file left by a daemon that is gone is replaced; one that another running
//! daemon answers on is left alone (the second daemon runs without a status socket and says
//! so). At exit the file is removed, if it is still this daemon's.

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::registry::Registry;

/// How long a client may take to read the answer, and `query` to wait for it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why the status socket could not be opened, or queried.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StatusSocketError {
    /// Another daemon answers on the path.
    #[error("{path} is in use by another running vrrpd: give each daemon its own `status_socket`")]
    InUse {
        /// The socket's path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{path} exists and is not a socket: remove it, or set another `status_socket`")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// No daemon answers (`vrrpd --status`).
    #[error(
        "no vrrpd answers on {path} ({source}): is it running, and is this its `status_socket` (--config FILE or --status-socket PATH)?"
    )]
    NotRunning {
        /// The socket's path.
        path: PathBuf,
        /// Why the connection failed.
        source: io::Error,
    },
    /// Any other I/O error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StatusSocketError {
    let path = path.to_owned();
    move |source| StatusSocketError::Io { what, path, source }
}

/// The listening socket; dropping it stops answering and removes the file if it is still
/// this one (not a later daemon's).
#[derive(Debug)]
pub struct StatusSocket {
    path: PathBuf,
    /// The file's device and inode, to recognise it at exit.
    identity: (u64, u64),
    task: JoinHandle<()>,
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        self.task.abort();
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Listens on `path` (creating its directory if needed) and answers with the status of
/// `registry`. Needs a tokio runtime.
pub(super) fn serve(path: &Path, registry: Registry) -> Result<StatusSocket, StatusSocketError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(StatusSocketError::NotASocket {
                path: path.to_owned(),
            });
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(StatusSocketError::InUse {
                path: path.to_owned(),
            });
        }
        // Nobody answers: left by a daemon that is gone.
        std::fs::remove_file(path).map_err(io_error("removing the stale socket", path))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error("creating the directory of", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io_error("listening on", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error("restricting to its owner", path))?;
    let meta = std::fs::symlink_metadata(path).map_err(io_error("reading", path))?;
    info!(path = %path.display(), "status socket listening");
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((mut stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let mut json = registry.status().await.to_json();
                        json.push('\n');
                        // A client that does not read is dropped after TIMEOUT.
                        let _ = tokio::time::timeout(TIMEOUT, async {
                            stream.write_all(json.as_bytes()).await?;
                            stream.shutdown().await
                        })
                        .await;
                    });
                }
                Err(e) => {
                    warn!("status socket: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(StatusSocket {
        path: path.to_owned(),
        identity: (meta.dev(), meta.ino()),
        task,
    })
}

/// Connects to the daemon's status socket at `path` and returns its answer (one JSON
/// document). Blocking; no runtime needed.
pub fn query(path: &Path) -> Result<String, StatusSocketError> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|source| {
        StatusSocketError::NotRunning {
            path: path.to_owned(),
            source,
        }
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(io_error("setting a timeout on", path))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(io_error("reading the status from", path))?;
    Ok(answer)
}

/// `--status` of vrrpd and hald: the socket `socket`, else the `status_socket` of the file
/// `config`, else the default; the answer pretty-printed on stdout (exit 0), or why not on
/// stderr (exit 1).
pub fn print(
    program: &str,
    config: Option<&str>,
    socket: Option<std::path::PathBuf>,
) -> std::process::ExitCode {
    let path = match (socket, config) {
        (Some(s), _) => s,
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(text) => super::config::status_socket_of(&text),
            Err(e) => {
                eprintln!("{program}: cannot read {file}: {e}");
                return std::process::ExitCode::from(1);
            }
        },
        (None, None) => std::path::PathBuf::from(super::config::DEFAULT_STATUS_SOCKET),
    };
    let answer = match query(&path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{program}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match serde_json::from_str::<serde_json::Value>(&answer)
        .and_then(|v| serde_json::to_string_pretty(&v))
    {
        Ok(pretty) => {
            println!("{pretty}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "{program}: {} answered with something that is not JSON ({e}): {answer:?}",
                path.display()
            );
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn registry() -> Registry {
        let netlink = ip_manager::NetlinkManager::new().expect("netlink socket");
        Registry::new("/etc/vrrpd.toml".into(), Arc::new(netlink))
    }

    async fn ask(path: &Path) -> Result<String, StatusSocketError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || query(&path))
            .await
            .expect("query thread")
    }

    #[tokio::test]
    async fn one_json_document_per_connection_and_one_daemon_per_socket() {
        let dir = std::env::temp_dir().join(format!("vrrpd-sock-{}", std::process::id()));
        let path = dir.join("sub/vrrpd.sock");
        let _ = std::fs::remove_dir_all(&dir);

        let err = ask(&path).await.expect_err("nobody there yet");
        assert!(matches!(err, StatusSocketError::NotRunning { .. }), "{err}");
        assert!(err.to_string().contains("is it running"), "{err}");

        let socket = serve(&path, registry()).expect("serves; the directory is created");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for _ in 0..2 {
            let answer = ask(&path).await.expect("answers");
            let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
            assert_eq!(v["config_file"], "/etc/vrrpd.toml");
            assert_eq!(v["pid"], std::process::id());
        }
        let second = serve(&path, registry()).expect_err("in use");
        assert!(
            matches!(second, StatusSocketError::InUse { .. }),
            "{second}"
        );
        drop(socket);
        assert!(!path.exists(), "removed at exit");

        // A file left by a daemon that is gone is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
        assert!(path.exists());
        let socket = serve(&path, registry()).expect("replaces the stale socket");
        assert!(ask(&path).await.is_ok());
        drop(socket);

        std::fs::write(&path, "not a socket").unwrap();
        let err = serve(&path, registry()).expect_err("a file in the way");
        assert!(matches!(err, StatusSocketError::NotASocket { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
