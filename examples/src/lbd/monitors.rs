//! The servers' health checks at run time: one `health-check` [`Monitor`] per server, and a
//! task per server that applies each verdict to the balancer and logs it as HAProxy does
//! (`backend web server web2 127.0.0.1:18082 marked down: ...`).
//!
//! A reload that changes a listener's servers or check goes through [`Monitors::plan`] and
//! [`Monitors::apply`]: a server checked as before keeps its monitor, with its state and its
//! counts towards `rise` and `fall`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use health_check::{Check, Health, Monitor, Status};
use ip_manager::alert::{Alert, Alerts};

use super::config::{Listener, Server};
use super::health::HealthCheck;
use super::running::Backends;
use crate::task::AbortOnDrop;

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
    Tls(#[from] lb_core::proxy::tls::TlsError),
}

/// The checks of one listener's servers.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    servers: Vec<Watched>,
    /// Shared by the watchers; kept across reloads with the monitors it counts.
    tally: Option<Arc<Tally>>,
    /// Where servers marked down or up are told (`[alerts]`).
    alerts: Option<Arc<Alerts>>,
}

/// One server's monitor and the task applying its verdicts (stopped on drop).
#[derive(Debug)]
struct Watched {
    /// The server as checked (name, address, TLS).
    server: Server,
    monitor: Monitor,
    /// The task applying its verdicts; held only to stop it with this.
    _watcher: AbortOnDrop,
}

/// What the log lines and the stats page say about one listener's servers.
#[derive(Debug)]
struct Tally {
    listener: String,
    total: AtomicUsize,
    up: AtomicUsize,
    alerts: Option<Arc<Alerts>>,
}

/// The monitors a listener's configuration needs, ready to [`apply`](Monitors::apply): the
/// checks to start were built (what can fail), nothing runs or stopped yet.
pub(crate) struct Plan {
    check: Option<HealthCheck>,
    listener: String,
    servers: Vec<Planned>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("listener", &self.listener)
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

enum Planned {
    /// The running monitor of this server goes on, with its state.
    Keep(Server),
    /// A new monitor with this check.
    Start(Server, Arc<dyn Check>),
}

impl Monitors {
    /// Starts a monitor per server of `listener` (none when it has no `check`); verdicts go
    /// to `backends`.
    pub(crate) fn start(
        listener: &Listener,
        backends: Arc<dyn Backends>,
        alerts: Option<Arc<Alerts>>,
    ) -> Result<Monitors, CheckError> {
        let mut monitors = Monitors {
            alerts,
            ..Monitors::default()
        };
        let plan = monitors.plan(None, listener)?;
        monitors.apply(plan, &backends)?;
        Ok(monitors)
    }

    /// What changing from `old`'s checks (`None`: from none) to `new`'s takes: a server whose
    /// name, address and TLS settings stay, under the same `check`, keeps its monitor and
    /// its state (no check from scratch); the others get a new one. Fails, changing nothing,
    /// when a check cannot be built (its `ca` file, its schedule).
    pub(crate) fn plan(&self, old: Option<&Listener>, new: &Listener) -> Result<Plan, CheckError> {
        let mut servers = Vec::with_capacity(new.servers.len());
        if let Some(check) = &new.check {
            let same_check = old.and_then(|o| o.check.as_ref()) == Some(check);
            for server in &new.servers {
                let error = |reason: CheckErrorReason| CheckError {
                    listener: new.name.clone(),
                    server: server.name.clone(),
                    reason,
                };
                let kept =
                    same_check && self.servers.iter().any(|w| same_target(&w.server, server));
                servers.push(if kept {
                    Planned::Keep(server.clone())
                } else {
                    check.monitor.validate().map_err(|e| error(e.into()))?;
                    let probe = check.checker(server).map_err(|e| error(e.into()))?;
                    Planned::Start(server.clone(), probe)
                });
            }
        }
        Ok(Plan {
            check: new.check.clone(),
            listener: new.name.clone(),
            servers,
        })
    }

    /// Applies `plan`: monitors of servers gone (or checked differently) stop, new ones
    /// start, kept ones go on. Without a `check` any more, every server is up again (as in
    /// HAProxy without `check`). Run it once the proxy holds the new servers, so the first
    /// verdicts of new monitors reach them.
    pub(crate) fn apply(
        &mut self,
        plan: Plan,
        backends: &Arc<dyn Backends>,
    ) -> Result<(), CheckError> {
        let mut old: Vec<Option<Watched>> = std::mem::take(&mut self.servers)
            .into_iter()
            .map(Some)
            .collect();
        let Some(check) = plan.check else {
            if !old.is_empty() {
                for w in old.iter().flatten() {
                    backends.set_health(&w.server.name, true);
                }
            }
            self.tally = None;
            return Ok(());
        };
        let tally = self
            .tally
            .get_or_insert_with(|| {
                Arc::new(Tally {
                    listener: plan.listener.clone(),
                    total: AtomicUsize::new(0),
                    up: AtomicUsize::new(0),
                    alerts: self.alerts.clone(),
                })
            })
            .clone();
        let mut servers = Vec::with_capacity(plan.servers.len());
        for planned in plan.servers {
            let (server, probe) = match planned {
                Planned::Keep(server) => {
                    let kept = old
                        .iter_mut()
                        .find(|w| w.as_ref().is_some_and(|w| w.server.name == server.name))
                        .and_then(Option::take);
                    if let Some(kept) = kept {
                        servers.push(kept);
                        continue;
                    }
                    // Not running after all (cannot happen: planned from these monitors).
                    let probe = check.checker(&server).map_err(|e| CheckError {
                        listener: plan.listener.clone(),
                        server: server.name.clone(),
                        reason: e.into(),
                    })?;
                    (server, probe)
                }
                Planned::Start(server, probe) => (server, probe),
            };
            let config = check
                .monitor
                .clone()
                .id(format!("{}/{}", plan.listener, server.name));
            let monitor = Monitor::spawn(probe, config).map_err(|e| CheckError {
                listener: plan.listener.clone(),
                server: server.name.clone(),
                reason: e.into(),
            })?;
            let watcher = AbortOnDrop::spawn(watch(
                monitor.subscribe(),
                server.name.clone(),
                server.addr,
                backends.clone(),
                tally.clone(),
            ));
            servers.push(Watched {
                server,
                monitor,
                _watcher: watcher,
            });
        }
        // What the log lines count from now on (a verdict racing this may be off by one
        // until the next).
        tally.total.store(servers.len(), Ordering::Relaxed);
        let up = servers
            .iter()
            .filter(|w| w.monitor.status().health == Health::Up)
            .count();
        tally.up.store(up, Ordering::Relaxed);
        self.servers = servers;
        // The monitors left in `old` stop as they drop here.
        drop(old);
        Ok(())
    }

    /// Every checked server's name and status channel, in order (none without a `check`).
    pub(crate) fn subscribe(&self) -> Vec<(String, tokio::sync::watch::Receiver<Status>)> {
        self.servers
            .iter()
            .map(|w| (w.server.name.clone(), w.monitor.subscribe()))
            .collect()
    }

    /// The check status of server `name`, if it is checked.
    pub(crate) fn status(&self, name: &str) -> Option<Status> {
        self.servers
            .iter()
            .find(|w| w.server.name == name)
            .map(|w| w.monitor.status())
    }
}

/// Whether a check of `new` probes what the check of `old` probed: same name, address and
/// TLS settings.
fn same_target(old: &Server, new: &Server) -> bool {
    old.name == new.name && old.addr == new.addr && old.tls == new.tls && old.ca == new.ca
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
    // A monitor started by a reload on a server the proxy had: its state starts over.
    backends.set_health(&name, health == Health::Up);
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
        let (listener, total) = (&tally.listener, tally.total.load(Ordering::Relaxed));
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
        if let Some(alerts) = &tally.alerts {
            let word = if up { "UP" } else { "DOWN" };
            alerts.send(
                Alert::new(format!("{listener}/{name} is {word}"))
                    .field("listener", listener)
                    .field("server", &name)
                    .field("address", addr)
                    .field("state", word)
                    .field("reason", reason)
                    .field("servers_up", format!("{left} of {total}")),
            );
        }
    }
}
