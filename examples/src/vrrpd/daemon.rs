//! The running daemon: one driver per interface and address family, the virtual addresses
//! added and announced on Master and removed on leaving it, notify scripts, tracked checks,
//! the status socket and metrics endpoint, and SIGHUP reloads ([`super::reload`]). The
//! running set itself is kept by the private `instances` module.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ip_manager::{Announcer, ExecHook, IpManager, NetlinkManager, Vip};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use vrrp_core::packet::{AddressFamily, AdvertInterval, Authentication, Password, Priority, Vrid};
use vrrp_core::{Event, State};

use super::config::{self, Instance};
use super::instances::Instances;
use super::links::Links;
use super::registry::Registry;
use super::{metrics, reload, status_socket};

/// Any error that stops the daemon (logged by the binary).
pub type Error = Box<dyn std::error::Error>;

/// What the event handler needs per instance.
pub(super) struct Live {
    pub(super) instance: Instance,
    pub(super) vips: Vec<Vip>,
    /// Where the addresses go: the interface, the EC2 API or scripts (`vip_backend`).
    pub(super) backend: Arc<dyn IpManager>,
    /// Gratuitous ARP / unsolicited NA after a takeover: netlink only (a VPC ignores ARP, a
    /// script knows what its address needs).
    pub(super) announcer: Option<Arc<Announcer>>,
    notify: Option<ExecHook>,
    notify_backup: Option<ExecHook>,
    notify_fault: Option<ExecHook>,
    /// The announcements in progress (a burst now, another after `garp.delay`): stopped when
    /// the instance leaves Master, so that it never announces an address it gave up.
    announcing: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Live {
    pub(super) fn new(
        instance: Instance,
        vips: Vec<Vip>,
        backend: Arc<dyn IpManager>,
        announcer: Option<Arc<Announcer>>,
    ) -> Live {
        Live {
            notify: instance.notify_master.clone().map(ExecHook::shell),
            notify_backup: instance.notify_backup.clone().map(ExecHook::shell),
            notify_fault: instance.notify_fault.clone().map(ExecHook::shell),
            instance,
            vips,
            backend,
            announcer,
            announcing: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Takes over `old`'s announcements in progress (an instance updated in place).
    pub(super) fn take_announcing(&self, old: &Live) {
        let tasks: Vec<_> = old
            .announcing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        self.announcing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
    }
}

/// How the daemon was started, besides the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file: read again on SIGHUP.
    pub config_file: PathBuf,
    /// Overrides the file's `status_socket`.
    pub status_socket: Option<PathBuf>,
}

/// Runs the daemon on a checked configuration until SIGTERM / SIGINT, then stops gracefully;
/// SIGHUP reloads `options.config_file` ([`super::reload`]).
pub async fn run(config: config::Config, options: Options) -> Result<(), Error> {
    // First of all: SIGHUP's default action ends the process.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let netlink = Arc::new(NetlinkManager::new()?);
    let registry = Registry::new(options.config_file.display().to_string(), netlink.clone());
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let links = Links::start(netlink.clone(), registry.clone())?;
    let mut instances = Instances::new(netlink, registry.clone(), links, events_tx);
    instances.apply(&config).await.map_err(|e| e.join("; "))?;
    let path = options
        .status_socket
        .as_ref()
        .unwrap_or(&config.status_socket);
    let _status = match status_socket::serve(path, registry.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("no status socket, vrrpd runs on without it: {e}");
            None
        }
    };
    let _metrics = match config.metrics {
        None => None,
        Some(bind) => match metrics::serve(bind, registry.clone()).await {
            Ok(m) => Some(m),
            Err(e) => {
                error!("no metrics endpoint, vrrpd runs on without it: {e}");
                None
            }
        },
    };
    let mut running = config;
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = term.recv(), if !stopping => {
                info!("SIGTERM: stopping gracefully");
                stopping = true;
                instances.stop();
            }
            _ = tokio::signal::ctrl_c(), if !stopping => {
                info!("SIGINT: stopping gracefully");
                stopping = true;
                instances.stop();
            }
            _ = hup.recv(), if !stopping => {
                if let Some(new) = reload::reload(&options.config_file, &running, &mut instances, &registry).await {
                    running = new;
                }
            }
            e = events.recv() => match e {
                Some(e) => instances.event(e).await,
                None => break,
            },
        }
    }
    instances.finish().await;
    Ok(())
}

pub(super) async fn handle(l: &Live, event: Event) {
    let name = &l.instance.name;
    match event {
        Event::StateChanged { from, to, reason } => {
            info!(instance = %name, ?from, ?to, ?reason, "state changed");
            if to == State::Master {
                for v in &l.vips {
                    if let Err(e) = l.backend.add(v).await {
                        error!(instance = %name, vip = %v, "adding the virtual address failed: {e}");
                    }
                }
                if let Some(announcer) = &l.announcer {
                    let mut announcing = l.announcing.lock().unwrap_or_else(|p| p.into_inner());
                    for v in l.vips.clone() {
                        let a = announcer.clone();
                        announcing.push(tokio::spawn(async move {
                            if let Err(e) = a.announce(&v).await {
                                warn!(vip = %v, "announcing failed: {e}");
                            }
                        }));
                    }
                }
            } else if from == State::Master {
                for task in l
                    .announcing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain(..)
                {
                    task.abort();
                }
                for v in &l.vips {
                    if let Err(e) = l.backend.remove(v).await {
                        error!(instance = %name, vip = %v, "removing the virtual address failed: {e}");
                    }
                }
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
            "dropped an advert: {detail}"
        ),
        other => info!(instance = %name, event = ?other, "event"),
    }
}

/// The interface's first IPv4 address, or its IPv6 link-local address.
pub(super) async fn primary_address(
    netlink: &NetlinkManager,
    interface: &str,
    family: AddressFamily,
) -> Result<IpAddr, Error> {
    let addrs = netlink.list(interface).await?;
    addrs
        .iter()
        .map(|v| v.address)
        .find(|a| match (family, a) {
            (AddressFamily::Ipv4, IpAddr::V4(_)) => true,
            (AddressFamily::Ipv6, IpAddr::V6(v6)) => v6.segments()[0] & 0xffc0 == 0xfe80,
            _ => false,
        })
        .ok_or_else(|| {
            format!(
                "{interface} has no {} address to send adverts from: set unicast_source",
                if family == AddressFamily::Ipv4 {
                    "IPv4"
                } else {
                    "IPv6 link-local"
                }
            )
            .into()
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
        .map(|(name, weight)| vrrp_core::router::Tracker {
            name: name.clone(),
            weight: *weight,
        })
        .collect();
    if let Some(p) = &inst.auth_pass {
        c.authentication = Authentication::SimpleText(Password::new(p)?);
    }
    Ok(c)
}
