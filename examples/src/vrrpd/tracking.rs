//! Tracked checks: a `health-check` monitor per `[[check]]`, its transitions fed to the routers
//! that track it.

use std::collections::HashMap;
use std::sync::Arc;

use health_check::{
    ExecCheck, Health, HttpCheck, Monitor, MonitorConfig, ProcessCheck, Start, TcpCheck,
};
use tokio::sync::mpsc;
use tracing::info;
use vrrp_core::driver::Command;

use super::config::{self, CheckKind};

/// Starts a monitor per `[[check]]` and feeds each transition to the routers that track it
/// (`Command::Tracker`): the router applies the weight, or Fault for weight 0, at once.
pub(super) fn start(
    config: &config::Config,
    placement: &HashMap<usize, (mpsc::UnboundedSender<Command>, usize)>,
) -> Result<Vec<Monitor>, super::daemon::Error> {
    let mut monitors = Vec::new();
    for check in &config.checks {
        let probe: Arc<dyn health_check::Check> = match &check.kind {
            CheckKind::Process(name) => Arc::new(ProcessCheck::name(name.clone())),
            CheckKind::PidFile(path) => Arc::new(ProcessCheck::pid_file(path.clone())),
            CheckKind::Exec(command) => Arc::new(ExecCheck::shell(command.clone())),
            CheckKind::Tcp(addr) => Arc::new(TcpCheck::new(*addr)),
            CheckKind::Http(addr, path) => Arc::new(HttpCheck::new(*addr).path(path.clone())),
        };
        let monitor = Monitor::spawn(
            probe,
            MonitorConfig {
                interval: check.interval,
                timeout: check.timeout,
                rise: check.rise,
                fall: check.fall,
                start: Start::Now,
                id: Some(check.name.clone()),
                ..MonitorConfig::default()
            },
        )?;
        // Every (driver, router, tracker index) that tracks this check.
        let mut targets = Vec::new();
        for (i, inst) in config.instances.iter().enumerate() {
            for (k, (name, _)) in inst.track.iter().enumerate() {
                if name == &check.name
                    && let Some((commands, pos)) = placement.get(&i)
                {
                    targets.push((commands.clone(), *pos, k, inst.name.clone()));
                }
            }
        }
        let mut status = monitor.subscribe();
        let check_name = check.name.clone();
        tokio::spawn(async move {
            let mut last = status.borrow().health;
            while status.changed().await.is_ok() {
                let (health, error) = {
                    let s = status.borrow();
                    (s.health, s.last_error.clone())
                };
                if health == last {
                    continue;
                }
                last = health;
                let up = health == Health::Up;
                info!(check = %check_name, up, error = ?error, "tracked check changed");
                for (commands, router, index, _) in &targets {
                    let _ = commands.send(Command::Tracker {
                        router: *router,
                        index: *index,
                        up,
                    });
                }
            }
        });
        monitors.push(monitor);
    }
    Ok(monitors)
}
