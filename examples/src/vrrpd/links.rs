//! Link state: the interfaces the instances run on (link down → Fault at once, up → recover)
//! and the `track_interfaces` entries (weights, or Fault for weight 0), from rtnetlink's link
//! notifications rather than from polling. The targets follow every (re)load.

use std::collections::HashMap;
use std::sync::Arc;

use ip_manager::{LinkMonitor, LinkState, NetlinkManager};
use tokio::sync::Mutex;
use tracing::{info, warn};
use vrrp_core::driver::{DriverHandle, TrackerHandle};

use super::registry::Registry;
use crate::task::AbortOnDrop;

/// Who hears of one interface's changes.
#[derive(Clone, Debug)]
pub(super) enum LinkTarget {
    /// Every router of a driver runs on it.
    Driver(DriverHandle),
    /// A router tracks it (by the interface's name).
    Tracker(TrackerHandle),
}

impl LinkTarget {
    async fn tell(&self, up: bool) {
        let told = match self {
            LinkTarget::Driver(driver) => driver.set_link(up).await,
            LinkTarget::Tracker(tracker) => tracker.set(up).await,
        };
        // A driver that is gone has nothing left to fault.
        if let Err(e) = told {
            warn!("link state not told: {e}");
        }
    }
}

#[derive(Default)]
struct Shared {
    targets: HashMap<String, Vec<LinkTarget>>,
    /// The last state seen per interface.
    up: HashMap<String, bool>,
}

/// The link watcher: subscribed to the kernel's link notifications for the daemon's life.
pub(super) struct Links {
    netlink: Arc<NetlinkManager>,
    registry: Registry,
    shared: Arc<Mutex<Shared>>,
    /// The task following the notifications; held only to stop it with this.
    _watcher: AbortOnDrop,
}

impl Links {
    /// Subscribes (before any state is read, so that no change falls in between) and starts
    /// following the notifications. Nobody is told anything until [`commit`](Self::commit).
    pub(super) fn start(
        netlink: Arc<NetlinkManager>,
        registry: Registry,
    ) -> Result<Links, ip_manager::Error> {
        let mut monitor = LinkMonitor::new()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let watched = shared.clone();
        let record = registry.clone();
        let watcher = AbortOnDrop::spawn(async move {
            while let Some(LinkState { name, up, .. }) = monitor.next().await {
                let mut s = watched.lock().await;
                if !s.targets.contains_key(&name) || s.up.insert(name.clone(), up) == Some(up) {
                    continue; // not ours, or statistics / addresses changed, not the link
                }
                info!(interface = %name, up, "link changed");
                record.record_link(&name, up);
                for t in s.targets.get(&name).into_iter().flatten() {
                    t.tell(up).await;
                }
            }
            warn!("the netlink link monitor ended: link changes are no longer followed");
        });
        Ok(Links {
            netlink,
            registry,
            shared,
            _watcher: watcher,
        })
    }

    /// Whether `interface` is up now (an interface that does not exist is down, as keepalived
    /// has it). Also remembered as the last state seen.
    pub(super) async fn is_up(&self, interface: &str) -> bool {
        let up = match self.netlink.link_state(interface).await {
            Ok(s) => s.up,
            Err(ip_manager::Error::UnknownInterface { .. }) => {
                warn!(%interface, "no such interface: counted as down until it appears");
                false
            }
            Err(e) => {
                warn!(%interface, "reading the link state failed, counted as up: {e}");
                true
            }
        };
        self.shared.lock().await.up.insert(interface.to_owned(), up);
        self.registry.record_link(interface, up);
        up
    }

    /// Makes `targets` the ones told of changes from now on, and tells each the state of its
    /// interface now (a router just added, or one whose driver is new, agrees at once).
    pub(super) async fn commit(&self, targets: HashMap<String, Vec<LinkTarget>>) {
        // An interface not seen yet is read now (`is_up` remembers what it read).
        for name in targets.keys() {
            let known = self.shared.lock().await.up.contains_key(name);
            if !known {
                self.is_up(name).await;
            }
        }
        let mut s = self.shared.lock().await;
        for (name, to) in &targets {
            let up = s.up.get(name).copied().unwrap_or(true);
            for t in to {
                t.tell(up).await;
            }
        }
        s.targets = targets;
    }
}
