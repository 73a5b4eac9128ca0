//! Link state: the interfaces the instances run on (link down → Fault at once, up → recover)
//! and the `track_interfaces` entries (weights, or Fault for weight 0), from rtnetlink's link
//! notifications rather than from polling.

use std::collections::HashMap;

use ip_manager::{LinkMonitor, LinkState};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use vrrp_core::driver::Command;

use super::config;

/// Who hears of one interface's changes.
#[derive(Clone, Debug)]
enum Target {
    /// Every router of a driver runs on it.
    Link(mpsc::UnboundedSender<Command>),
    /// A router tracks it: (driver, router position, tracker index).
    Tracker(mpsc::UnboundedSender<Command>, usize, usize),
}

impl Target {
    fn tell(&self, up: bool) {
        // A driver that is gone has nothing left to fault.
        let _ = match self {
            Target::Link(commands) => commands.send(Command::Link { up }),
            Target::Tracker(commands, router, index) => commands.send(Command::Tracker {
                router: *router,
                index: *index,
                up,
            }),
        };
    }
}

/// Starts the watcher: reads every interface's state now (an interface that does not exist is
/// down, as keepalived has it), tells the routers about those that are down, then follows the
/// kernel's notifications until the daemon stops. `placement` maps an instance's index to its
/// driver and its position there; tracked interfaces come after the tracked checks in each
/// router's tracker list.
pub(super) async fn start(
    config: &config::Config,
    placement: &HashMap<usize, (mpsc::UnboundedSender<Command>, usize)>,
) -> Result<JoinHandle<()>, super::daemon::Error> {
    let mut targets: HashMap<String, Vec<Target>> = HashMap::new();
    let mut drivers_seen = Vec::new();
    for (i, inst) in config.instances.iter().enumerate() {
        let Some((commands, pos)) = placement.get(&i) else {
            continue;
        };
        // One Link command per driver: the driver applies it to all its routers.
        let key = (inst.interface.clone(), inst.is_ipv6());
        if !drivers_seen.contains(&key) {
            drivers_seen.push(key);
            targets
                .entry(inst.interface.clone())
                .or_default()
                .push(Target::Link(commands.clone()));
        }
        for (k, (name, _)) in inst.track_interfaces.iter().enumerate() {
            targets
                .entry(name.clone())
                .or_default()
                .push(Target::Tracker(
                    commands.clone(),
                    *pos,
                    inst.track.len() + k,
                ));
        }
    }
    // Subscribe before reading the states, so that no change falls in between.
    let mut monitor = LinkMonitor::new()?;
    let mut up: HashMap<String, bool> = HashMap::new();
    for (name, to) in &targets {
        let now = match monitor.state(name).await {
            Ok(s) => s.up,
            Err(ip_manager::Error::UnknownInterface { .. }) => {
                warn!(interface = %name, "no such interface: counted as down until it appears");
                false
            }
            Err(e) => return Err(e.into()),
        };
        if !now {
            info!(interface = %name, "link is down");
            for t in to {
                t.tell(false);
            }
        }
        up.insert(name.clone(), now);
    }
    Ok(tokio::spawn(async move {
        while let Some(LinkState { name, up: now, .. }) = monitor.next().await {
            let Some(to) = targets.get(&name) else {
                continue;
            };
            if up.insert(name.clone(), now) == Some(now) {
                continue; // statistics or addresses changed, not the link
            }
            info!(interface = %name, up = now, "link changed");
            for t in to {
                t.tell(now);
            }
        }
        warn!("the netlink link monitor ended: link changes are no longer followed");
    }))
}
