//! The running daemon: one driver per interface and address family, the virtual addresses
//! added and announced on Master and removed on leaving it, notify scripts, tracked checks,
//! the status socket and metrics endpoint, and SIGHUP reloads ([`super::reload`]). The
//! running set itself is kept by the private `instances` module.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ip_manager::alert::{Alert, Alerts};
use ip_manager::failover::{
    FailoverEvent, ReconcileCounters, SecondOwnerHandle, SecondOwnerWatch, VipApplier,
};
use ip_manager::guard::{Guard, GuardSlot, HOLD_DOWN_TRACKER};
use ip_manager::{Announcer, ExecHook, IpManager, NetlinkManager, OwnerProbe, Vip};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use vrrp_core::packet::{
    AddressFamily, AdvertInterval, Authentication, DropReason, Password, Priority, Vrid,
};
use vrrp_core::{Event, State};

use super::config::{self, Instance};
use super::instances::Instances;
use super::links::Links;
use super::registry::Registry;
use super::{instances, metrics, reload, status_socket};

/// Any error that stops the daemon (logged by the binary).
pub type Error = Box<dyn std::error::Error>;

/// How long a stopping daemon waits for its last alerts to be delivered.
pub const ALERTS_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the event handler needs per instance.
pub(super) struct Live {
    pub(super) instance: Instance,
    pub(super) vips: Vec<Vip>,
    /// Where the addresses go: the interface, the EC2 API or scripts (`vip_backend`).
    pub(super) backend: Arc<dyn IpManager>,
    /// Gratuitous ARP / unsolicited NA after a takeover: netlink only (a VPC ignores ARP, a
    /// script knows what its address needs). Its tally is shown in the status.
    pub(super) announcer: Option<Arc<Announcer>>,
    notify: Option<ExecHook>,
    notify_backup: Option<ExecHook>,
    notify_fault: Option<ExecHook>,
    /// Told of every event (an embedding daemon's hook).
    pub(super) on_event: Option<OnEvent>,
    /// `[alerts]`, unless the instance says `alerts = false`.
    pub(super) alerts: Option<Arc<Alerts>>,
    /// The applier's reconciliation (restored on the Master, removed elsewhere), whose tally
    /// is shown in the status; `None` for a backend that observes nothing (`exec`).
    pub(super) reconciled: Option<Arc<ReconcileCounters>>,
    /// The probes for a second holder of the addresses while Master (its counters are in
    /// the status); shared with the instance's next version on an in-place update.
    pub(super) second_owner: Option<Arc<SecondOwnerHandle>>,
    /// The library's event → address glue (add and announce on Master, stop announcing and
    /// remove on leaving it): shared with the instance's next version on an in-place update,
    /// so that the announcements in progress stay stoppable.
    applier: Arc<tokio::sync::Mutex<VipApplier>>,
    /// Its slot with the crash guard (`crash_guard`), marked around each state change; shared
    /// with the instance's next version like the applier.
    pub(super) guard: Option<Arc<GuardSlot>>,
}

impl Live {
    /// With the embedding daemon's hook and `[alerts]` (the pair after `hand_off`).
    pub(super) fn new(
        instance: Instance,
        vips: Vec<Vip>,
        backend: Arc<dyn IpManager>,
        announcer: Option<Arc<Announcer>>,
        hand_off: Option<NetlinkManager>,
        (on_event, alerts): (Option<OnEvent>, Option<Arc<Alerts>>),
        probe: Option<OwnerProbe>,
    ) -> Live {
        let (reports, mut read) = mpsc::channel(64);
        let name = instance.name.clone();
        let instance_alerts = instance.alerts;
        // The applier's failures, the reconciler's repairs and the second holders found,
        // logged (its other reports repeat what `handle` logs).
        tokio::spawn(async move {
            while let Some(report) = read.recv().await {
                match report {
                    FailoverEvent::Failed { vip, error } => {
                        error!(instance = %name, %vip, "{error}")
                    }
                    e @ (FailoverEvent::Restored(_) | FailoverEvent::StaleRemoved(_)) => {
                        warn!(instance = %name, "{e}");
                    }
                    e @ (FailoverEvent::SecondOwner { .. }
                    | FailoverEvent::SecondOwnerGone { .. }) => warn!(instance = %name, "{e}"),
                    _ => {}
                }
            }
        });
        let mut applier = VipApplier::new(backend.clone(), vips.clone()).reports(reports.clone());
        if let Some(netlink) = hand_off {
            applier = applier.hand_off(netlink);
        }
        applier.set_announcer(announcer.clone());
        let second_owner = probe.map(|probe| {
            let interval = instance.advert_interval.max(Duration::from_millis(100));
            Arc::new(
                SecondOwnerWatch::new(probe, &vips)
                    .interval(interval)
                    .spawn(applier.state(), reports),
            )
        });
        Live {
            notify: instance.notify_master.clone().map(ExecHook::shell),
            notify_backup: instance.notify_backup.clone().map(ExecHook::shell),
            notify_fault: instance.notify_fault.clone().map(ExecHook::shell),
            instance,
            vips,
            backend,
            announcer,
            on_event,
            alerts: alerts.filter(|_| instance_alerts),
            reconciled: None,
            second_owner,
            applier: Arc::new(tokio::sync::Mutex::new(applier)),
            guard: None,
        }
    }

    /// Starts the desired-versus-actual reconciliation of the addresses (a VIP deleted behind
    /// the Master's back comes back at once; one found here while not Master goes): once the
    /// instance is part of the running set, not while a reload that may yet fail prepares it.
    pub(super) async fn reconcile(&mut self) {
        let mut applier = self.applier.lock().await;
        match applier.reconcile() {
            Ok(()) => self.reconciled = applier.reconcile_counters(),
            Err(e) => error!(
                instance = %self.instance.name,
                "the virtual addresses will not be reconciled: {e}"
            ),
        }
    }

    /// The new version of `old` (only `notify` or `garp` changed): its addresses, backend and
    /// applier (announcements in progress included) carry over; `announcer` from now on.
    pub(super) async fn updated(
        instance: Instance,
        old: &Live,
        announcer: Option<Arc<Announcer>>,
    ) -> Live {
        old.applier.lock().await.set_announcer(announcer.clone());
        Live {
            notify: instance.notify_master.clone().map(ExecHook::shell),
            notify_backup: instance.notify_backup.clone().map(ExecHook::shell),
            notify_fault: instance.notify_fault.clone().map(ExecHook::shell),
            instance,
            vips: old.vips.clone(),
            backend: old.backend.clone(),
            announcer,
            on_event: old.on_event.clone(),
            alerts: old.alerts.clone(),
            reconciled: old.reconciled.clone(),
            second_owner: old.second_owner.clone(),
            applier: old.applier.clone(),
            guard: old.guard.clone(),
        }
    }
}

/// How the daemon was started, besides the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file: read again on SIGHUP.
    pub config_file: PathBuf,
    /// Overrides the file's `status_socket`.
    pub status_socket: Option<PathBuf>,
    /// The daemon's name, as alerts give it (`vrrpd`, `hald`).
    pub program: String,
}

/// The `main` of vrrpd and hald (`program`): their shared arguments
/// ([`crate::cli::DaemonArgs`]), `--status`, the file read and checked by `parse` (`--check`
/// stops there), the capabilities checked, then `run` on a current-thread runtime.
pub fn main<C, F, E>(
    program: &str,
    usage: &str,
    parse: impl FnOnce(&str, &str) -> Result<C, Vec<crate::diagnostics::ConfigError>>,
    run: impl FnOnce(C, Options) -> F,
) -> std::process::ExitCode
where
    C: crate::cli::Checked,
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    crate::cli::init_logging();
    let args = match crate::cli::DaemonArgs::parse(program, usage, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (path, socket) = (args.config, args.status_socket);
    if args.status {
        return status_socket::print(program, path.as_deref(), socket);
    }
    let (path, config) = match crate::cli::load_config(program, path, args.check_only, parse) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(e) = super::capabilities::check() {
        eprintln!("{e}");
        return std::process::ExitCode::from(1);
    }
    let options = Options {
        config_file: PathBuf::from(path),
        status_socket: socket,
        program: program.to_owned(),
    };
    crate::cli::run_current_thread(program, run(config, options))
}

/// What a daemon that embeds vrrpd (hald) is told besides the logs: called with every event of
/// every instance (its name and the event; a state change once its addresses have moved), on
/// the event loop (keep it short).
pub type OnEvent = Arc<dyn Fn(&str, &Event) + Send + Sync>;

/// One driver event on its way to [`Vrrpd::handle`].
#[derive(Debug)]
pub struct DaemonEvent(instances::Routed);

/// The running VRRP half of a daemon: drivers, virtual addresses, notify scripts, tracked
/// checks, the status socket and metrics endpoint. [`run`] is vrrpd's whole life; a daemon
/// that embeds it (hald) drives it with [`event`](Self::event) and [`handle`](Self::handle)
/// beside its own work.
pub struct Vrrpd {
    instances: Instances,
    /// `[alerts]`: the last state changes are delivered before exiting.
    alerts: Option<Arc<Alerts>>,
    registry: Registry,
    events: mpsc::UnboundedReceiver<instances::Routed>,
    running: config::Config,
    _status: Option<status_socket::StatusSocket>,
    metrics: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Vrrpd {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.abort();
        }
    }
}

impl std::fmt::Debug for Vrrpd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vrrpd")
            .field("instances", &self.running.instances.len())
            .finish_non_exhaustive()
    }
}

impl Vrrpd {
    /// Starts every instance of `config` (with `on_event` told of their events), the status
    /// socket and the metrics endpoint.
    pub async fn start(
        config: config::Config,
        options: &Options,
        on_event: Option<OnEvent>,
    ) -> Result<Vrrpd, Error> {
        let netlink = Arc::new(NetlinkManager::new()?);
        let registry = Registry::new(options.config_file.display().to_string(), netlink.clone());
        let (events_tx, events) = mpsc::unbounded_channel();
        let links = Links::start(netlink.clone(), registry.clone())?;
        let alerts = config.alerts.as_ref().map(|a| a.start(&options.program));
        let path = options
            .status_socket
            .as_ref()
            .unwrap_or(&config.status_socket);
        let guard = start_guard(&config, path);
        let mut instances = Instances::new(netlink, registry.clone(), links, events_tx, on_event);
        instances.set_alerts(alerts.clone());
        instances.guard = guard.clone();
        if let Some(g) = &guard
            && !config.crash_hold_down.is_zero()
        {
            instances.hold_down = config
                .instances
                .iter()
                .filter(|i| g.was_master(i.vrid, i.is_ipv6(), &i.runs_on()))
                .map(|i| i.name.clone())
                .collect();
        }
        instances.apply(&config).await.map_err(|e| e.join("; "))?;
        for name in std::mem::take(&mut instances.hold_down) {
            let Some(tracker) = instances.tracker(&name, HOLD_DOWN_TRACKER) else {
                continue;
            };
            let hold = config.crash_hold_down;
            warn!(instance = %name, ?hold, "it was Master when the last run died: held at priority 1 (Backup while a peer is Master) for crash_hold_down");
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                info!(instance = %name, "crash hold-down over: back to its priority");
                let _ = tracker.set(true).await;
            });
        }
        let status = match status_socket::serve(path, registry.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("no status socket, the daemon runs on without it: {e}");
                None
            }
        };
        let metrics = match config.metrics {
            None => None,
            Some(bind) => match metrics::serve(bind, registry.clone()).await {
                Ok(m) => Some(m),
                Err(e) => {
                    error!("no metrics endpoint, the daemon runs on without it: {e}");
                    None
                }
            },
        };
        Ok(Vrrpd {
            instances,
            alerts,
            registry,
            events,
            running: config,
            _status: status,
            metrics,
        })
    }

    /// The next driver event, to give to [`handle`](Self::handle); `None` once every driver
    /// has ended after [`stop`](Self::stop). Cancel-safe (a `select!` branch loses nothing),
    /// unlike the handling, which must not be cut short: an event half handled can leave a
    /// virtual address behind.
    pub async fn event(&mut self) -> Option<DaemonEvent> {
        self.events.recv().await.map(DaemonEvent)
    }

    /// Acts on `event`: the virtual addresses, notify scripts, the status record. Run it to
    /// its end (not as a `select!` branch that another may cancel).
    pub async fn handle(&mut self, event: DaemonEvent) {
        self.instances.event(event.0).await;
    }

    /// Reads `path` again and applies it (SIGHUP); on any error the running configuration
    /// stays (each error logged and shown in the status).
    pub async fn reload_file(&mut self, path: &std::path::Path) {
        if let Some(new) =
            reload::reload(path, &self.running, &mut self.instances, &self.registry).await
        {
            self.running = new;
        }
    }

    /// Applies `new`, already read and checked; on any error the running configuration stays.
    /// True when it was applied.
    pub async fn reload(&mut self, new: config::Config) -> bool {
        match reload::apply(new, &self.running, &mut self.instances, &self.registry).await {
            Some(new) => {
                self.running = new;
                true
            }
            None => false,
        }
    }

    /// The configuration running.
    pub fn config(&self) -> &config::Config {
        &self.running
    }

    /// The tracked object `tracker` of instance `instance`, to set from outside (hald's
    /// listener health); `None` when the instance does not run.
    pub fn tracker(
        &self,
        instance: &str,
        tracker: &str,
    ) -> Option<vrrp_core::driver::TrackerHandle> {
        self.instances.tracker(instance, tracker)
    }

    /// Instance `instance` steps down on purpose if it is Master (priority 0 out, addresses
    /// released, Backup: [`vrrp_core::Router::resign`]), for a preempting peer that asked
    /// first (hald's drained preemption). True when it was Master; an error when the
    /// instance does not run.
    pub async fn resign(&self, instance: &str) -> Result<bool, Error> {
        match self.instances.resign(instance).await {
            Some(r) => Ok(r?),
            None => Err(format!("no instance named {instance:?} runs").into()),
        }
    }

    /// The status JSON (what `--status` prints), as a value.
    pub async fn status(&self) -> super::status::Status {
        self.registry.status().await
    }

    /// Stops every instance gracefully (a Master sends priority 0 and removes its addresses);
    /// [`event`](Self::event) delivers their last events, then `None`.
    pub fn stop(&mut self) {
        self.instances.stop();
    }

    /// Waits for the stopped drivers to end and removes the virtual MAC devices; then gives
    /// the alerts of the last state changes [`ALERTS_AT_EXIT`] to go out.
    pub async fn finish(mut self) {
        let alerts = self.alerts.take();
        self.instances.finish().await;
        crate::alerts::flush(alerts, ALERTS_AT_EXIT).await;
    }
}

/// The crash guard of `config`, its file beside the status socket `socket`
/// (`vrrpd.sock` → `vrrpd.guard`); `None` when it is off, or could not start (logged: the
/// daemon runs on without it, as it does without a status socket).
fn start_guard(config: &config::Config, socket: &std::path::Path) -> Option<Guard> {
    if !config.crash_guard {
        return None;
    }
    let path = socket.with_extension("guard");
    match Guard::start(&path) {
        Ok(g) => {
            info!(pid = g.pid(), file = %path.display(), "crash guard started");
            for p in g.previous_masters() {
                warn!(instance = %p.name, vrid = p.vrid, guard_acted = p.guard_acted, "the last run died while this instance was Master");
            }
            Some(g)
        }
        Err(e) => {
            error!("no crash guard, the daemon runs on without it: {e}");
            None
        }
    }
}

/// Runs the daemon on a checked configuration until SIGTERM / SIGINT, then stops gracefully;
/// SIGHUP reloads `options.config_file` ([`super::reload`]).
pub async fn run(config: config::Config, options: Options) -> Result<(), Error> {
    // First of all: SIGHUP's default action ends the process.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut vrrpd = Vrrpd::start(config, &options, None).await?;
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = term.recv(), if !stopping => {
                info!("SIGTERM: stopping gracefully");
                stopping = true;
                vrrpd.stop();
            }
            _ = tokio::signal::ctrl_c(), if !stopping => {
                info!("SIGINT: stopping gracefully");
                stopping = true;
                vrrpd.stop();
            }
            _ = hup.recv(), if !stopping => vrrpd.reload_file(&options.config_file).await,
            e = vrrpd.event() => match e {
                Some(e) => vrrpd.handle(e).await,
                None => break,
            },
        }
    }
    vrrpd.finish().await;
    Ok(())
}

pub(super) async fn handle(l: &Live, event: Event) {
    let name = &l.instance.name;
    let told = l.on_event.as_ref().map(|hook| (hook, event.clone()));
    act(l, event).await;
    if let Some((hook, event)) = told {
        hook(name, &event);
    }
}

async fn act(l: &Live, event: Event) {
    let name = &l.instance.name;
    match event {
        Event::StateChanged { from, to, reason } => {
            info!(instance = %name, ?from, ?to, ?reason, "state changed");
            if let Some(g) = &l.guard {
                g.changing(from, to);
            }
            if let Some(alerts) = &l.alerts {
                let priority = l.instance.priority;
                alerts.send(Alert::transition(name, from, to, &reason).field("priority", priority));
            }
            l.applier
                .lock()
                .await
                .apply(Event::StateChanged {
                    from,
                    to,
                    reason: reason.clone(),
                })
                .await;
            if let Some(g) = &l.guard {
                g.changed(to);
            }
            let (hook, word) = match to {
                State::Master => (&l.notify, "MASTER"),
                State::Backup => (&l.notify_backup, "BACKUP"),
                State::Fault => (&l.notify_fault, "FAULT"),
                State::Initialize => (&None, "STOP"),
            };
            if let Some(h) = hook.clone() {
                let name = name.clone();
                let priority = l.instance.priority;
                tokio::spawn(async move {
                    if let Err(e) = h.notify(&name, word, priority).await {
                        warn!(instance = %name, "notify script failed: {e}");
                    }
                });
            }
        }
        Event::PacketDropped {
            reason,
            source,
            detail,
            suppressed,
        } => warn!(
            instance = %name,
            %source,
            reason = reason.as_str(),
            suppressed,
            "dropped an advert: {detail}{}",
            config_hint(&l.instance, reason, &detail)
        ),
        Event::SplitBrain { peer, priority } => warn!(
            instance = %name,
            %peer,
            peer_priority = priority.get(),
            "split brain: {peer} advertises as master with priority {priority}, which loses to \
             ours, and does not step down: it does not hear this master"
        ),
        Event::SplitBrainEnded {
            peer,
            adverts,
            duration,
            end,
            ..
        } => warn!(
            instance = %name,
            %peer,
            adverts,
            duration_seconds = duration.as_secs_f64(),
            "split brain with {peer} over after {duration:.3?} ({adverts} adverts heard): {end}"
        ),
        other => info!(instance = %name, event = ?other, "event"),
    }
}

/// The vrrpd setting that fixes a dropped advert, in the file's words (the library speaks
/// its own: checksum modes, versions).
fn config_hint(i: &Instance, reason: DropReason, detail: &str) -> String {
    match reason {
        DropReason::Checksum if detail.contains("checksum mode") => {
            let other = if i.checksum == "rfc9568" {
                "pseudo-header"
            } else {
                "rfc9568"
            };
            format!(" (set `checksum = \"{other}\"` or `checksum = \"accept-either\"`)")
        }
        DropReason::Version => format!(" (set `version = {}`)", if i.version == 2 { 3 } else { 2 }),
        DropReason::Authentication => " (check `auth_pass` on both hosts)".to_owned(),
        _ => String::new(),
    }
}

/// The interface's first IPv4 address, or its IPv6 link-local address.
pub(super) async fn primary_address(
    netlink: &NetlinkManager,
    interface: &str,
    family: AddressFamily,
) -> Result<IpAddr, Error> {
    Ok(match family {
        AddressFamily::Ipv4 => IpAddr::V4(netlink.first_ipv4(interface).await?),
        AddressFamily::Ipv6 => IpAddr::V6(netlink.link_local_ipv6(interface).await?),
    })
}

pub(super) fn router_config(inst: &Instance, primary: IpAddr) -> Result<vrrp_core::Config, Error> {
    let vrid = Vrid::new(inst.vrid).ok_or("VRID 0")?;
    let mut c = vrrp_core::Config::new(
        vrid,
        primary,
        inst.virtual_addresses.iter().map(|(a, _)| *a).collect(),
    );
    c.version = if inst.version == 2 {
        vrrp_core::packet::Version::V2
    } else {
        vrrp_core::packet::Version::V3
    };
    c.priority = Priority::new(inst.priority);
    c.advert_interval = AdvertInterval::try_from(inst.advert_interval)?;
    c.preempt = inst.preempt;
    c.preempt_delay = inst.preempt_delay;
    c.preempt_on_lower_advert = inst.preempt_on_lower_advert;
    c.unicast_peers = inst.unicast_peers.clone();
    c.checksum = inst.checksum.parse()?;
    c.trackers = inst
        .track
        .iter()
        .chain(&inst.track_interfaces)
        .map(|(name, weight)| vrrp_core::router::Tracker::new(name.clone(), *weight))
        .collect();
    if let Some(p) = &inst.auth_pass {
        c.authentication = Authentication::SimpleText(Password::new(p)?);
    }
    Ok(c)
}
