//! Tracked checks: a `health-check` monitor per `[[check]]`, its transitions fed to the routers
//! that track it. Kept across reloads: a check whose definition did not change keeps its
//! monitor (and its rise/fall counts); only the routers it feeds are updated.

use std::collections::HashMap;
use std::sync::Arc;

use health_check::{
    ExecCheck, Health, HttpCheck, IcmpCheck, Monitor, MonitorConfig, ProcessCheck, Start, Status,
    TcpCheck,
};
use tokio::sync::{Mutex, watch};
use tracing::{info, warn};
use vrrp_core::driver::TrackerHandle;

use super::config::{self, CheckKind};
use crate::task::AbortOnDrop;

/// One tracker of one router (by its name, the check's): where a check's state goes.
pub(super) type Target = TrackerHandle;

/// The running monitors, by check name.
#[derive(Debug, Default)]
pub(super) struct Tracking {
    checks: HashMap<String, Tracked>,
}

/// A monitor for a new or changed check, started but not yet feeding any router.
#[derive(Debug)]
pub(super) struct Prepared {
    check: config::Check,
    monitor: Monitor,
}

#[derive(Debug)]
struct Tracked {
    check: config::Check,
    monitor: Monitor,
    targets: Arc<Mutex<Vec<Target>>>,
    /// The task feeding the targets; held only to stop it with this.
    _feeder: AbortOnDrop,
}

impl Tracking {
    /// Starts a monitor for every check of `checks` that is new or whose definition changed;
    /// the others keep theirs. Nothing is fed to routers until [`commit`](Self::commit).
    pub(super) fn prepare(
        &self,
        checks: &[config::Check],
    ) -> Result<Vec<Prepared>, super::daemon::Error> {
        let mut out = Vec::new();
        for check in checks {
            if self
                .checks
                .get(&check.name)
                .is_some_and(|t| &t.check == check)
            {
                continue;
            }
            out.push(Prepared {
                check: check.clone(),
                monitor: spawn(check)?,
            });
        }
        Ok(out)
    }

    /// Whether check `name` is up now (a new check counts as up until it fails, as at start).
    pub(super) fn is_up(&self, name: &str, prepared: &[Prepared]) -> bool {
        let status = match prepared.iter().find(|p| p.check.name == name) {
            Some(p) => p.monitor.status(),
            None => match self.checks.get(name) {
                Some(t) => t.monitor.status(),
                None => return true,
            },
        };
        status.health == Health::Up
    }

    /// Makes `checks` the running set: the prepared monitors replace the old ones, checks no
    /// longer in `checks` stop, and every check feeds exactly `targets[name]` from now on.
    /// Every target is then told the check's current state, so that a router added, or one
    /// whose check was restarted, agrees with its monitor.
    pub(super) async fn commit(
        &mut self,
        checks: &[config::Check],
        prepared: Vec<Prepared>,
        mut targets: HashMap<String, Vec<Target>>,
    ) {
        self.checks
            .retain(|name, _| checks.iter().any(|c| &c.name == name));
        for p in prepared {
            let shared = Arc::new(Mutex::new(Vec::new()));
            let feeder = AbortOnDrop::spawn(feed(
                p.check.name.clone(),
                p.monitor.subscribe(),
                shared.clone(),
            ));
            self.checks.insert(
                p.check.name.clone(),
                Tracked {
                    check: p.check,
                    monitor: p.monitor,
                    targets: shared,
                    _feeder: feeder,
                },
            );
        }
        for (name, tracked) in &self.checks {
            let mut list = tracked.targets.lock().await;
            *list = targets.remove(name).unwrap_or_default();
            // Under the lock the feeder also sends under: the last one to send read the
            // latest state.
            let up = tracked.monitor.status().health == Health::Up;
            tell(&list, up).await;
        }
    }

    /// Every check's definition and live status, for the status page.
    pub(super) fn statuses(&self) -> Vec<(config::Check, watch::Receiver<Status>)> {
        let mut out: Vec<_> = self
            .checks
            .values()
            .map(|t| (t.check.clone(), t.monitor.subscribe()))
            .collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }
}

/// Tells every target: the router applies the weight, or Fault for weight 0, at once.
async fn tell(targets: &[Target], up: bool) {
    for t in targets {
        // A driver that ended has nothing left to track; a tracker name the router does not
        // know cannot happen (the router's trackers are made from the same names).
        if let Err(e) = t.set(up).await {
            warn!(tracker = t.name(), "not told: {e}");
        }
    }
}

fn spawn(check: &config::Check) -> Result<Monitor, super::daemon::Error> {
    let probe: Arc<dyn health_check::Check> = match &check.kind {
        CheckKind::Process(name) => Arc::new(ProcessCheck::name(name.clone())),
        CheckKind::PidFile(path) => Arc::new(ProcessCheck::pid_file(path.clone())),
        CheckKind::Exec(command) => Arc::new(ExecCheck::shell(command.clone())),
        CheckKind::Tcp(addr) => Arc::new(TcpCheck::new(*addr)),
        CheckKind::Http(addr, path) => Arc::new(HttpCheck::new(*addr).path(path.clone())),
        CheckKind::Icmp(addr) => Arc::new(IcmpCheck::new(*addr).timeout(check.timeout)),
    };
    Ok(Monitor::spawn(
        probe,
        MonitorConfig::default()
            .interval(check.interval)
            .timeout(check.timeout)
            .rise(check.rise)
            .fall(check.fall)
            .start(Start::Now)
            .id(check.name.clone()),
    )?)
}

/// Feeds each transition of one check to its targets.
async fn feed(name: String, mut status: watch::Receiver<Status>, targets: Arc<Mutex<Vec<Target>>>) {
    let mut last = status.borrow().health;
    while status.changed().await.is_ok() {
        let list = targets.lock().await;
        let (health, error) = {
            let s = status.borrow_and_update();
            (s.health, s.last_error.clone())
        };
        if health == last {
            continue;
        }
        last = health;
        let up = health == Health::Up;
        // last_error outlives the failure it tells of: only a check gone down is explained by it
        let error = error.filter(|_| !up);
        info!(check = %name, up, error = ?error, "tracked check changed");
        tell(&list, up).await;
    }
}
