//! [`Registry`]: what the running daemon records for its status page (instances, drivers,
//! checks, transitions, reloads), shared with the status socket and the metrics endpoint,
//! and the [`Status`] taken from it on demand.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use ip_manager::failover::ReconcileCounters;
use ip_manager::failover::SecondOwnerHandle;
use ip_manager::{Announcer, IpManager, NetlinkManager, Vip};
use tokio::sync::watch;
use vrrp_core::driver::{DriverHandle, DriverSnapshot};
use vrrp_core::{Reason, State};

use super::config::{self, Instance};
use super::instances::DriverKey;
use super::status::{self, LastReload, Reloads, Status, Transition};

/// How long a driver may take to answer a snapshot (it answers between two inputs: at once).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// The daemon's shared record; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Registry {
    shared: Arc<Mutex<Shared>>,
    netlink: Arc<NetlinkManager>,
}

#[derive(Debug)]
struct Shared {
    started: SystemTime,
    config_file: String,
    reloads: Reloads,
    /// By name.
    instances: BTreeMap<String, Entry>,
    drivers: BTreeMap<DriverKey, DriverHandle>,
    checks: Vec<(config::Check, watch::Receiver<health_check::Status>)>,
    /// Link states by interface name, as reported by [`Registry::record_link`].
    links: BTreeMap<String, bool>,
}

#[derive(Debug, Clone)]
struct Entry {
    instance: Instance,
    last: Option<Transition>,
    /// Its announcer, whose tally the status shows.
    announcer: Option<Arc<Announcer>>,
    /// Its reconciler's counters, shown likewise.
    reconciled: Option<Arc<ReconcileCounters>>,
    /// Its probes for a second holder of the addresses, whose counters the status shows.
    second_owner: Option<Arc<SecondOwnerHandle>>,
}

/// An instance's announcer and reconciler counters, by instance name.
pub(super) type Tallies = HashMap<String, (Option<Arc<Announcer>>, Option<Arc<ReconcileCounters>>)>;

impl Registry {
    /// An empty record for the daemon running `config_file`.
    pub(super) fn new(config_file: String, netlink: Arc<NetlinkManager>) -> Registry {
        Registry {
            shared: Arc::new(Mutex::new(Shared {
                started: SystemTime::now(),
                config_file,
                reloads: Reloads::default(),
                instances: BTreeMap::new(),
                drivers: BTreeMap::new(),
                checks: Vec::new(),
                links: BTreeMap::new(),
            })),
            netlink,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running set after a start or a reload. The instances named in `same_router` keep
    /// their last transition; the others start without one. `tallies` by instance name.
    pub(super) fn set_running(
        &self,
        instances: &[Instance],
        same_router: &[String],
        tallies: &Tallies,
        drivers: BTreeMap<DriverKey, DriverHandle>,
        checks: Vec<(config::Check, watch::Receiver<health_check::Status>)>,
    ) {
        let mut s = self.lock();
        let mut old = std::mem::take(&mut s.instances);
        for i in instances {
            let last = old
                .remove(&i.name)
                .filter(|_| same_router.contains(&i.name))
                .and_then(|e| e.last);
            s.instances.insert(
                i.name.clone(),
                Entry {
                    instance: i.clone(),
                    last,
                    announcer: tallies.get(&i.name).and_then(|t| t.0.clone()),
                    reconciled: tallies.get(&i.name).and_then(|t| t.1.clone()),
                    second_owner: None,
                },
            );
        }
        s.drivers = drivers;
        s.checks = checks;
    }

    /// Instance `name` changed state at `at`.
    pub(super) fn record_transition(
        &self,
        name: &str,
        from: State,
        to: State,
        reason: &Reason,
        at: SystemTime,
    ) {
        if let Some(e) = self.lock().instances.get_mut(name) {
            e.last = Some(Transition {
                from,
                to,
                reason: reason.clone(),
                at,
            });
        }
    }

    /// Instance `name` probes for a second holder of its addresses with `watch`.
    pub(super) fn record_second_owner(&self, name: &str, watch: Option<Arc<SecondOwnerHandle>>) {
        if let Some(e) = self.lock().instances.get_mut(name) {
            e.second_owner = watch;
        }
    }

    /// The link of `interface` went up or down (shown for the instances that track it).
    pub(super) fn record_link(&self, interface: &str, up: bool) {
        self.lock().links.insert(interface.to_owned(), up);
    }

    /// A reload was applied (`errors` empty) or refused.
    pub(super) fn record_reload(&self, errors: Vec<String>) {
        let mut s = self.lock();
        let ok = errors.is_empty();
        if ok {
            s.reloads.succeeded += 1;
        } else {
            s.reloads.failed += 1;
        }
        s.reloads.last = Some(LastReload {
            ok,
            unix_time: status::unix(SystemTime::now()),
            errors,
        });
    }

    /// The status now: asks every driver for a snapshot and the kernel which virtual
    /// addresses are on their interfaces.
    pub(super) async fn status(&self) -> Status {
        let (started, config_file, reloads, entries, drivers, checks, links) = {
            let s = self.lock();
            (
                s.started,
                s.config_file.clone(),
                s.reloads.clone(),
                s.instances.values().cloned().collect::<Vec<_>>(),
                s.drivers.clone(),
                s.checks.clone(),
                s.links.clone(),
            )
        };
        // Every driver asked at once: they answer concurrently.
        let mut pending = tokio::task::JoinSet::new();
        for (key, driver) in &drivers {
            let (key, driver) = (key.clone(), driver.clone());
            pending.spawn(async move {
                (
                    key,
                    tokio::time::timeout(SNAPSHOT_TIMEOUT, driver.snapshot()).await,
                )
            });
        }
        let mut snapshots: BTreeMap<DriverKey, DriverSnapshot> = BTreeMap::new();
        while let Some(answer) = pending.join_next().await {
            if let Ok((key, Ok(Ok(s)))) = answer {
                snapshots.insert(key, s);
            }
        }
        let now = SystemTime::now();
        let mut instances = Vec::new();
        for e in &entries {
            let i = &e.instance;
            let key = DriverKey::of(i);
            let router = snapshots
                .get(&key)
                .and_then(|d| d.routers.iter().find(|r| r.vrid.get() == i.vrid));
            let held = self.held(i).await;
            let live = status::Live {
                router,
                held: held.as_deref(),
                last: e.last.as_ref(),
                links: Some(&links),
                announced: e.announcer.as_ref().map(|a| a.stats()),
                reconciled: e.reconciled.as_ref().map(|r| r.stats()),
                second_owner: e.second_owner.as_ref().map(|w| w.stats()),
            };
            instances.push(status::instance(i, &live, now));
        }
        let drivers = drivers
            .keys()
            .map(|key| {
                let snapshot = snapshots.get(key);
                status::driver(
                    &key.interface,
                    key.ipv6,
                    snapshot.map_or_else(Vec::new, |s| {
                        s.routers.iter().map(|r| r.vrid.get()).collect()
                    }),
                    snapshot.map(|s| s.stats),
                )
            })
            .collect();
        let checks = checks
            .iter()
            .map(|(c, s)| status::check(c, &s.borrow()))
            .collect();
        Status {
            pid: std::process::id(),
            config_file,
            started_unix: status::unix(started),
            uptime_seconds: now
                .duration_since(started)
                .unwrap_or_default()
                .as_secs_f64(),
            reloads,
            instances,
            drivers,
            checks,
        }
    }

    /// Whether each virtual address of `i` is on its interface (`None` on a netlink error).
    async fn held(&self, i: &Instance) -> Option<Vec<bool>> {
        let mut out = Vec::new();
        for (a, len) in &i.virtual_addresses {
            let vip = Vip::new(*a, *len, i.runs_on()).ok()?;
            out.push(self.netlink.owns(&vip).await.ok()?);
        }
        Some(out)
    }
}
