//! The servers' health checks at run time: one `health-check` [`Monitor`] per server, and a
//! task per server that applies each verdict to the balancer and logs it as HAProxy does
//! (`backend web server web2 127.0.0.1:18082 marked down: ...`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use health_check::{Health, Monitor, MonitorConfig, Status};
use tokio::task::JoinHandle;

use super::config::Listener;
use super::running::Backends;

/// Why a listener's checks could not start.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener:?} server {server:?}: the health check cannot start: {reason}")]
pub struct CheckError {
    /// The listener.
    pub listener: String,
    /// The server.
    pub server: String,
    /// What went wrong.
    #[source]
    pub reason: CheckErrorReason,
}

/// What stopped a server's health check from starting.
#[derive(Debug, thiserror::Error)]
pub enum CheckErrorReason {
    /// health-check refused the schedule.
    #[error(transparent)]
    Schedule(#[from] health_check::ConfigError),
    /// The TLS settings towards the server (its `ca` file) could not be used.
    #[error(transparent)]
    Tls(#[from] crate::proxy::tls::TlsError),
}

/// The checks of one listener's servers.
#[derive(Debug)]
pub(crate) struct Monitors {
    servers: Vec<Watched>,
}

#[derive(Debug)]
struct Watched {
    name: String,
    monitor: Monitor,
    watcher: JoinHandle<()>,
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for w in &self.servers {
            w.watcher.abort();
        }
    }
}

/// What the log lines and the stats page say about one listener's servers.
#[derive(Debug)]
struct Tally {
    listener: String,
    total: usize,
    up: AtomicUsize,
}

impl Monitors {
    /// Starts a monitor per server of `listener` (none when it has no `check`); verdicts go
    /// to `backends`.
    pub(crate) fn start(
        listener: &Listener,
        backends: Arc<dyn Backends>,
    ) -> Result<Monitors, CheckError> {
        let Some(check) = &listener.check else {
            return Ok(Monitors {
                servers: Vec::new(),
            });
        };
        let tally = Arc::new(Tally {
            listener: listener.name.clone(),
            total: listener.servers.len(),
            up: AtomicUsize::new(listener.servers.len()),
        });
        let mut servers = Vec::with_capacity(listener.servers.len());
        for server in &listener.servers {
            let config = MonitorConfig {
                id: Some(format!("{}/{}", listener.name, server.name)),
                ..check.monitor.clone()
            };
            let error = |reason: CheckErrorReason| CheckError {
                listener: listener.name.clone(),
                server: server.name.clone(),
                reason,
            };
            let probe = check.checker(server).map_err(|e| error(e.into()))?;
            let monitor = Monitor::spawn(probe, config).map_err(|e| error(e.into()))?;
            let watcher = tokio::spawn(watch(
                monitor.subscribe(),
                server.name.clone(),
                server.addr,
                backends.clone(),
                tally.clone(),
            ));
            servers.push(Watched {
                name: server.name.clone(),
                monitor,
                watcher,
            });
        }
        Ok(Monitors { servers })
    }

    /// The check status of server `name`, if it is checked.
    pub(crate) fn status(&self, name: &str) -> Option<Status> {
        self.servers
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.monitor.status())
    }
}

/// Applies every change of one server's health to the balancer, and logs it.
async fn watch(
    mut status: tokio::sync::watch::Receiver<Status>,
    name: String,
    addr: SocketAddr,
    backends: Arc<dyn Backends>,
    tally: Arc<Tally>,
) {
    let mut health = status.borrow_and_update().health;
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        if now.health == health {
            continue;
        }
        health = now.health;
        let up = health == Health::Up;
        backends.set_health(&name, up);
        let left = if up {
            tally.up.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            tally.up.fetch_sub(1, Ordering::Relaxed) - 1
        };
        let reason = now.last_error.as_deref().unwrap_or("check passed");
        let (listener, total) = (&tally.listener, tally.total);
        if up {
            tracing::info!(
                "backend {listener} server {name} {addr} marked up after {} good checks; {left} of {total} servers up",
                now.successes
            );
        } else if left == 0 {
            tracing::error!(
                "backend {listener} server {name} {addr} marked down: {reason}; {left} of {total} servers up: the backend has no server left"
            );
        } else {
            tracing::warn!(
                "backend {listener} server {name} {addr} marked down: {reason}; {left} of {total} servers up"
            );
        }
    }
}
