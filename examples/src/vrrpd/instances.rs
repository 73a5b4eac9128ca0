//! [`Instances`]: the running set — one driver per interface and address family, the routers
//! on them, the tracked checks — and how a configuration becomes it, at start (a plan from
//! nothing) and on every reload ([`super::reload`]).
//!
//! Every change is prepared first (addresses looked up, routers and sockets made, monitors
//! started) and applied only if all of it worked, so that a reload either happens whole or
//! not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use ip_manager::guard::{HOLD_DOWN_TRACKER, HOLD_DOWN_WEIGHT};
use ip_manager::{AnnounceConfig, Announcer, NetlinkManager, OwnerProbe, Vip, VirtualMac};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use vrrp_core::driver::{
    DEFAULT_EVENT_CAPACITY, Driver, DriverEvent, DriverExit, DriverHandle, TrackerHandle,
    VrrpSocket,
};
use vrrp_core::packet::{AddressFamily, Vrid};
use vrrp_core::router::Tracker;
use vrrp_core::{Event, Reason, Router, State};

use super::config::{Config, Instance, SyncGroup};
use super::daemon::{self, Error, Live};
use super::links::{LinkTarget, Links};
use super::registry::Registry;
use super::reload::Plan;
use super::tracking::{self, Target, Tracking};
use super::vip_backend;

/// Which driver an instance runs on: its interface and address family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct DriverKey {
    pub(super) interface: String,
    pub(super) ipv6: bool,
}

impl DriverKey {
    pub(super) fn of(i: &Instance) -> DriverKey {
        DriverKey {
            interface: i.runs_on(),
            ipv6: i.is_ipv6(),
        }
    }

    fn family(&self) -> AddressFamily {
        if self.ipv6 {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        }
    }
}

impl fmt::Display for DriverKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.ipv6 { "IPv6" } else { "IPv4" };
        write!(f, "{} {family}", self.interface)
    }
}

/// A driver's event, with the driver it came from.
pub(super) type Routed = (DriverKey, DriverEvent);

/// An instance ready to start: its router (not started) and what the event handler needs.
struct Starting {
    key: DriverKey,
    router: Router,
    live: Live,
    /// Its macvlan, with `virtual_mac`.
    vmac: Option<VirtualMac>,
}

/// The running set. See the [module](self) docs.
pub(super) struct Instances {
    netlink: Arc<NetlinkManager>,
    registry: Registry,
    tracking: Tracking,
    links: Links,
    /// The instances running, as configured.
    running: Vec<Instance>,
    /// The sync groups, as configured.
    sync_groups: Vec<SyncGroup>,
    drivers: BTreeMap<DriverKey, DriverHandle>,
    /// Drivers stopped at exit, still delivering their last events.
    stopping: Vec<(DriverKey, DriverHandle)>,
    /// By instance name.
    live: HashMap<String, Arc<Live>>,
    /// (driver, VRID) → instance name.
    slots: HashMap<(DriverKey, u8), String>,
    /// Routers removed whose last event (`StateChanged` to Initialize) has not arrived yet,
    /// oldest first: their events are theirs, not those of a new router on the same VRID.
    retiring: HashMap<(DriverKey, u8), VecDeque<Arc<Live>>>,
    /// Where the drivers' events go (`None` once stopping).
    events: Option<mpsc::UnboundedSender<Routed>>,
    /// The macvlans of `virtual_mac` instances, by device name: removed at exit (an instance
    /// a reload removed leaves its device until then; a new run reuses it).
    vmacs: BTreeMap<String, VirtualMac>,
    /// Told of every state change.
    on_event: Option<daemon::OnEvent>,
    /// `[alerts]`, for every instance that does not opt out.
    alerts: Option<Arc<ip_manager::alert::Alerts>>,
    /// The crash guard every new instance registers with (`crash_guard`).
    pub(super) guard: Option<ip_manager::guard::Guard>,
    /// The instances that start held down (`crash_hold_down`): set for the first plan only.
    pub(super) hold_down: HashSet<String>,
}

impl Instances {
    /// Nothing running yet; the drivers' events will go to `events`.
    pub(super) fn new(
        netlink: Arc<NetlinkManager>,
        registry: Registry,
        links: Links,
        events: mpsc::UnboundedSender<Routed>,
        on_event: Option<daemon::OnEvent>,
    ) -> Instances {
        Instances {
            netlink,
            registry,
            tracking: Tracking::default(),
            links,
            running: Vec::new(),
            sync_groups: Vec::new(),
            drivers: BTreeMap::new(),
            stopping: Vec::new(),
            live: HashMap::new(),
            slots: HashMap::new(),
            retiring: HashMap::new(),
            events: Some(events),
            vmacs: BTreeMap::new(),
            on_event,
            alerts: None,
            guard: None,
            hold_down: HashSet::new(),
        }
    }

    /// The alerts every instance started from now on sends its state changes to.
    pub(super) fn set_alerts(&mut self, alerts: Option<Arc<ip_manager::alert::Alerts>>) {
        self.alerts = alerts;
    }

    /// The tracked object `tracker` of the running instance `instance`.
    pub(super) fn tracker(&self, instance: &str, tracker: &str) -> Option<TrackerHandle> {
        let inst = self.running.iter().find(|i| i.name == instance)?;
        let (d, vrid) = self.driver_of(inst)?;
        Some(d.tracker(vrid, tracker))
    }

    /// Instance `instance` resigns if Master (see [`daemon::Vrrpd::resign`]); `None` when it
    /// does not run.
    pub(super) async fn resign(
        &self,
        instance: &str,
    ) -> Option<Result<bool, vrrp_core::driver::CommandError>> {
        let inst = self.running.iter().find(|i| i.name == instance)?;
        let (d, vrid) = self.driver_of(inst)?;
        Some(d.resign(vrid).await)
    }

    /// Makes `config` the running set (see [`Plan`]). On any error nothing changes and every
    /// error is returned.
    pub(super) async fn apply(&mut self, config: &Config) -> Result<Plan, Vec<String>> {
        let plan = Plan::new(&self.running, &config.instances);
        let by_name = |name: &str| config.instances.iter().find(|i| i.name == name);
        let mut errors = Vec::new();

        // ---- prepare: nothing running is touched --------------------------------------
        let checks = match self.tracking.prepare(&config.checks) {
            Ok(c) => c,
            Err(e) => {
                errors.push(format!("starting the checks: {e}"));
                Vec::new()
            }
        };
        let mut starting = Vec::new();
        for name in plan.rebuild.iter().chain(&plan.start) {
            let Some(inst) = by_name(name) else { continue };
            match self.prepare(inst, &checks).await {
                Ok(s) => starting.push(s),
                Err(e) => errors.push(format!("instance {name:?}: {e}")),
            }
        }
        let mut updated = Vec::new();
        for name in &plan.update {
            let (Some(inst), Some(old)) = (by_name(name), self.live.get(name)) else {
                continue;
            };
            match self.update(inst, old).await {
                Ok(live) => updated.push(live),
                Err(e) => errors.push(format!("instance {name:?}: {e}")),
            }
        }
        let needed: BTreeSet<DriverKey> = config.instances.iter().map(DriverKey::of).collect();
        let mut sockets = BTreeMap::new();
        for s in &starting {
            if self.drivers.contains_key(&s.key) || sockets.contains_key(&s.key) {
                continue;
            }
            let source = s.router.config().primary_address;
            match VrrpSocket::open(&s.key.interface, s.key.family(), source) {
                Ok(socket) => {
                    sockets.insert(s.key.clone(), socket);
                }
                Err(e) => errors.push(format!("driver on {}: {e}", s.key)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // ---- apply ------------------------------------------------------------------------
        for name in plan.stop.iter().chain(&plan.rebuild) {
            self.retire(name, &needed).await;
        }
        for key in self.drivers.keys().cloned().collect::<Vec<_>>() {
            if !needed.contains(&key)
                && let Some(d) = self.drivers.remove(&key)
            {
                // Its routers shut down gracefully; their events still arrive.
                d.shutdown();
                info!(driver = %key, "driver stopping: no instance left on it");
            }
        }
        for live in updated {
            // The announcements in progress stay with the instance (its applier carries over).
            self.live.insert(live.instance.name.clone(), Arc::new(live));
        }
        self.remove_leftovers(&starting).await;
        let mut new_drivers: BTreeMap<DriverKey, Vec<Router>> = BTreeMap::new();
        for mut s in starting {
            s.live.reconcile().await;
            if let Some(v) = s.vmac {
                self.vmacs.insert(v.name().to_owned(), v);
            }
            let name = s.live.instance.name.clone();
            let vrid = s.router.config().vrid.get();
            self.slots.insert((s.key.clone(), vrid), name.clone());
            self.live.insert(name, Arc::new(s.live));
            match self.drivers.get(&s.key) {
                Some(d) => {
                    if let Err(e) = d.add(s.router).await {
                        error!(driver = %s.key, "adding a router: {e}");
                    }
                }
                None => new_drivers.entry(s.key).or_default().push(s.router),
            }
        }
        for (key, routers) in new_drivers {
            if let Some(socket) = sockets.remove(&key) {
                self.spawn_driver(key, socket, routers);
            }
        }
        self.running = config.instances.clone();
        self.sync_groups = config.sync_groups.clone();
        self.tracking
            .commit(&config.checks, checks, self.targets(&config.instances))
            .await;
        self.links
            .commit(self.link_targets(&config.instances))
            .await;
        let same_router: Vec<String> = plan.keep.iter().chain(&plan.update).cloned().collect();
        let announcers = self
            .live
            .iter()
            .map(|(name, l)| (name.clone(), (l.announcer.clone(), l.reconciled.clone())))
            .collect();
        self.registry.set_running(
            &self.running,
            &same_router,
            &announcers,
            self.drivers.clone(),
            self.tracking.statuses(),
        );
        for (name, l) in &self.live {
            self.registry
                .record_second_owner(name, l.second_owner.clone());
        }
        Ok(plan)
    }

    /// Sets up a new instance (or the new version of a changed one): its primary address,
    /// virtual addresses, announcer and router, its trackers told the checks' current state.
    async fn prepare(
        &self,
        inst: &Instance,
        checks: &[tracking::Prepared],
    ) -> Result<Starting, Error> {
        let key = DriverKey::of(inst);
        let primary = match inst.unicast_source {
            Some(a) => a,
            None => daemon::primary_address(&self.netlink, &inst.interface, key.family()).await?,
        };
        // With `virtual_mac`, what follows runs on the instance's macvlan (`runs_on`).
        let vmac = if inst.virtual_mac {
            let ipv6 = inst.is_ipv6();
            Some(
                self.netlink
                    .add_virtual_mac(&inst.interface, inst.vrid, ipv6)
                    .await?,
            )
        } else {
            None
        };

        let vips = vips(inst)?;
        let backend = vip_backend::start(&inst.name, &inst.vip_backend, &self.netlink).await?;
        let announcer = if inst.vip_backend.announces() {
            Some(self.announcer(inst).await?)
        } else {
            None
        };
        // From the interface itself (with a virtual MAC too: the macvlan answers the others'
        // questions, and would not hear its own).
        let probe = if inst.vip_backend.announces() && inst.second_owner_probe {
            let addresses: Vec<_> = vips.iter().map(|v| v.address).collect();
            Some(OwnerProbe::new(&self.netlink, &inst.interface, &addresses).await?)
        } else {
            None
        };
        let mut config = daemon::router_config(inst, primary)?;
        let held = self.hold_down.contains(&inst.name);
        if held {
            config
                .trackers
                .push(Tracker::new(HOLD_DOWN_TRACKER, HOLD_DOWN_WEIGHT));
        }
        let mut router = Router::new(config)?;
        let now = std::time::Instant::now();
        if held {
            router.set_tracker(now, router.config().trackers.len() - 1, false);
        }
        for (k, (check, _)) in inst.track.iter().enumerate() {
            if !self.tracking.is_up(check, checks) {
                router.set_tracker(now, k, false);
            }
        }
        // The links as they are now, so that the router starts in the right state.
        if !self.links.is_up(&inst.interface).await {
            router.set_link(now, false);
        }
        for (k, (interface, _)) in inst.track_interfaces.iter().enumerate() {
            if !self.links.is_up(interface).await {
                router.set_tracker(now, inst.track.len() + k, false);
            }
        }
        // The guard deletes addresses on the interface: netlink's only (a cloud API or a
        // script cannot be called from it); the priority-0 advert goes out for all.
        let guarded: &[Vip] = if inst.vip_backend.announces() {
            &vips
        } else {
            &[]
        };
        let slot = match &self.guard {
            Some(g) => match g.register(&inst.name, router.config(), &inst.runs_on(), guarded) {
                Ok(slot) => Some(Arc::new(slot)),
                Err(e) => {
                    warn!(instance = %inst.name, "not guarded: {e}");
                    None
                }
            },
            None => None,
        };
        // A peer that preempts us may announce nothing (FRR): hand the addresses over at its
        // MAC. Not with a virtual MAC, which the peers share.
        let mut live = Live::new(
            inst.clone(),
            vips,
            backend,
            announcer,
            (!inst.virtual_mac).then(|| (*self.netlink).clone()),
            (self.on_event.clone(), self.alerts.clone()),
            probe,
        );
        live.guard = slot;
        Ok(Starting {
            key,
            router,
            live,
            vmac,
        })
    }

    /// The new version of an instance whose router stays (only `notify` or `garp` changed).
    async fn update(&self, inst: &Instance, old: &Live) -> Result<Live, Error> {
        let announcer = if (inst.garp_repeat, inst.garp_delay)
            == (old.instance.garp_repeat, old.instance.garp_delay)
        {
            old.announcer.clone()
        } else if inst.vip_backend.announces() {
            Some(self.announcer(inst).await?)
        } else {
            None
        };
        Ok(Live::updated(inst.clone(), old, announcer).await)
    }

    async fn announcer(&self, inst: &Instance) -> Result<Arc<Announcer>, Error> {
        let announce = AnnounceConfig {
            repeat: inst.garp_repeat,
            refresh_delay: Some(inst.garp_delay),
            ..AnnounceConfig::default()
        };
        Ok(Arc::new(
            Announcer::new(&self.netlink, &inst.runs_on(), announce).await?,
        ))
    }

    /// Takes instance `name` out of the running set: its router is removed gracefully (by its
    /// driver, or by the driver's stop when no instance is left on it), and its events from
    /// here on are its own.
    async fn retire(&mut self, name: &str, needed: &BTreeSet<DriverKey>) {
        let Some(live) = self.live.remove(name) else {
            return;
        };
        let key = DriverKey::of(&live.instance);
        let vrid = live.instance.vrid;
        self.slots.remove(&(key.clone(), vrid));
        self.retiring
            .entry((key.clone(), vrid))
            .or_default()
            .push_back(live);
        if needed.contains(&key)
            && let Some(d) = self.drivers.get(&key)
            && let Some(vrid) = Vrid::new(vrid)
            && let Err(e) = d.remove(vrid).await
        {
            error!(driver = %key, "removing a router: {e}");
        }
        info!(instance = %name, "instance stopping");
    }

    /// Addresses left by a crashed earlier run go before an instance enters Backup; those of
    /// a running or retiring instance are theirs to remove.
    async fn remove_leftovers(&self, starting: &[Starting]) {
        let owned: HashSet<&Vip> = self
            .live
            .values()
            .chain(self.retiring.values().flatten())
            .flat_map(|l| &l.vips)
            .collect();
        for s in starting {
            for v in &s.live.vips {
                if owned.contains(v) {
                    continue;
                }
                match s.live.backend.owns(v).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        warn!(instance = %s.live.instance.name, vip = %v, "cannot tell whether an earlier run left this address: {e}");
                        continue;
                    }
                }
                warn!(instance = %s.live.instance.name, vip = %v, "removing a virtual address left by an earlier run");
                if let Err(e) = s.live.backend.remove(v).await {
                    error!(instance = %s.live.instance.name, vip = %v, "removing the leftover address failed: {e}");
                }
            }
        }
    }

    fn spawn_driver(&mut self, key: DriverKey, socket: VrrpSocket, routers: Vec<Router>) {
        info!(driver = %key, instances = routers.len(), "driver started");
        let (driver, mut events) = Driver::new(socket, routers).spawn(DEFAULT_EVENT_CAPACITY);
        let forward = self.events.clone();
        let name = key.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Some(forward) = &forward {
                    let _ = forward.send((name.clone(), e));
                }
            }
            match events.exit().await {
                DriverExit::Stopped => info!(driver = %name, "driver stopped"),
                how => error!(driver = %name, "driver {how}"),
            }
        });
        self.drivers.insert(key, driver);
    }

    /// The driver `inst` runs on and its VRID, if it runs.
    fn driver_of(&self, inst: &Instance) -> Option<(&DriverHandle, Vrid)> {
        Some((
            self.drivers.get(&DriverKey::of(inst))?,
            Vrid::new(inst.vrid)?,
        ))
    }

    /// The instances that run, each with its driver and VRID.
    fn placed<'a>(
        &'a self,
        instances: &'a [Instance],
    ) -> impl Iterator<Item = (&'a Instance, &'a DriverHandle, Vrid)> {
        instances
            .iter()
            .filter_map(|inst| self.driver_of(inst).map(|(d, vrid)| (inst, d, vrid)))
    }

    /// Where each check's state goes: every (driver, router, tracker) that tracks it.
    fn targets(&self, instances: &[Instance]) -> HashMap<String, Vec<Target>> {
        let mut out: HashMap<String, Vec<Target>> = HashMap::new();
        for (inst, d, vrid) in self.placed(instances) {
            for (check, _) in &inst.track {
                out.entry(check.clone())
                    .or_default()
                    .push(d.tracker(vrid, check));
            }
        }
        out
    }

    /// Where each interface's link state goes: the driver running on it, and every router
    /// that tracks it (its tracked interfaces come after its tracked checks).
    fn link_targets(&self, instances: &[Instance]) -> HashMap<String, Vec<LinkTarget>> {
        let mut out: HashMap<String, Vec<LinkTarget>> = HashMap::new();
        for (key, d) in &self.drivers {
            out.entry(key.interface.clone())
                .or_default()
                .push(LinkTarget::Driver(d.clone()));
        }
        for (inst, d, vrid) in self.placed(instances) {
            for (interface, _) in &inst.track_interfaces {
                out.entry(interface.clone())
                    .or_default()
                    .push(LinkTarget::Tracker(d.tracker(vrid, interface)));
            }
        }
        out
    }

    /// Acts on one driver event: the virtual addresses, notify scripts, the status record.
    pub(super) async fn event(&mut self, (key, e): Routed) {
        let slot = (key, e.vrid.get());
        if let Some(queue) = self.retiring.get_mut(&slot)
            && let Some(live) = queue.front().cloned()
        {
            if matches!(
                e.event,
                Event::StateChanged {
                    to: State::Initialize,
                    ..
                }
            ) {
                queue.pop_front();
                if queue.is_empty() {
                    self.retiring.remove(&slot);
                }
            }
            daemon::handle(&live, e.event).await;
            return;
        }
        let Some(live) = self
            .slots
            .get(&slot)
            .and_then(|n| self.live.get(n))
            .cloned()
        else {
            return;
        };
        if let Event::StateChanged { from, to, reason } = &e.event {
            let at = SystemTime::now()
                .checked_sub(e.at.elapsed())
                .unwrap_or_else(SystemTime::now);
            self.registry
                .record_transition(&live.instance.name, *from, *to, reason, at);
            // The sync group follows before the addresses move, so that its members' adverts
            // and addresses go together.
            let own = !matches!(reason, Reason::SyncGroup { .. } | Reason::Shutdown);
            if own && *to != State::Initialize {
                self.follow(&live.instance.name, *to).await;
            }
        }
        daemon::handle(&live, e.event).await;
    }

    /// Tells the other members of `name`'s sync groups to follow it into `to` (keepalived's
    /// `vrrp_sync_group`; see [`vrrp_core::SyncGroup`] for the rule). The members may run
    /// in other drivers (other interfaces), so this is done here rather than in one driver.
    async fn follow(&self, name: &str, to: State) {
        for group in self
            .sync_groups
            .iter()
            .filter(|g| g.instances.iter().any(|m| m == name))
        {
            for member in group.instances.iter().filter(|m| *m != name) {
                let Some(inst) = self.running.iter().find(|i| &i.name == member) else {
                    continue; // named but not configured: warned about at load
                };
                let Some((d, vrid)) = self.driver_of(inst) else {
                    continue;
                };
                info!(group = %group.name, %member, leader = %name, ?to, "sync group follows");
                if let Err(e) = d.follow(vrid, to, name).await {
                    warn!(group = %group.name, %member, "not followed: {e}");
                }
            }
        }
    }

    /// Stops every driver gracefully (a Master sends priority 0); their last events still
    /// arrive, and the event channel closes after them.
    pub(super) fn stop(&mut self) {
        for (key, d) in std::mem::take(&mut self.drivers) {
            d.shutdown();
            self.stopping.push((key, d));
        }
        self.events = None;
    }

    /// Waits for every stopped driver to end (each logs how, see `spawn_driver`).
    pub(super) async fn finish(&mut self) {
        for (_, d) in self.stopping.drain(..) {
            d.closed().await;
        }
        for (name, vmac) in std::mem::take(&mut self.vmacs) {
            if let Err(e) = vmac.remove(&self.netlink).await {
                warn!(device = %name, "removing the virtual MAC device: {e}");
            }
        }
    }
}

fn vips(inst: &Instance) -> Result<Vec<Vip>, Error> {
    Ok(inst
        .virtual_addresses
        .iter()
        .map(|(a, len)| Vip::new(*a, *len, inst.runs_on()))
        .collect::<Result<Vec<_>, _>>()?)
}
