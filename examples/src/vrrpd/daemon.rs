//! The running daemon: one driver per interface and address family, the virtual addresses
//! added and announced on Master and removed on leaving it, notify scripts, tracked checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ip_manager::{AnnounceConfig, Announcer, ExecHook, IpManager, NetlinkManager, Vip};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use vrrp_core::driver::{Command, Driver, DriverEvent, VrrpSocket};
use vrrp_core::packet::{AddressFamily, AdvertInterval, Authentication, Password, Priority, Vrid};
use vrrp_core::{Event, Router, State};

use super::config::{self, Instance};
use super::{tracking, vip_backend};

/// Any error that stops the daemon (logged by the binary).
pub type Error = Box<dyn std::error::Error>;

/// What the event handler needs per instance.
struct Live {
    instance: Instance,
    vips: Vec<Vip>,
    /// Where the addresses go: the interface, the EC2 API or scripts (`vip_backend`).
    backend: Arc<dyn IpManager>,
    /// Gratuitous ARP / unsolicited NA after a takeover: netlink only (a VPC ignores ARP, a
    /// script knows what its address needs).
    announcer: Option<Arc<Announcer>>,
    notify: Option<ExecHook>,
    notify_backup: Option<ExecHook>,
    notify_fault: Option<ExecHook>,
    /// The announcements in progress (a burst now, another after `garp.delay`): stopped when
    /// the instance leaves Master, so that it never announces an address it gave up.
    announcing: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Runs the daemon on a checked configuration until SIGTERM / SIGINT, then stops gracefully.
pub async fn run(config: config::Config) -> Result<(), Error> {
    let netlink = Arc::new(NetlinkManager::new()?);
    // Instances grouped by (interface, family): one socket and one driver each.
    let mut groups: HashMap<(String, bool), Vec<usize>> = HashMap::new();
    let mut live = Vec::new();
    let mut routers = Vec::new();
    for (i, inst) in config.instances.iter().enumerate() {
        let family = if inst.is_ipv6() {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        };
        let primary = match inst.unicast_source {
            Some(a) => a,
            None => primary_address(&netlink, &inst.interface, family).await?,
        };
        let vips = inst
            .virtual_addresses
            .iter()
            .map(|(a, len)| Vip::new(*a, *len, inst.interface.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let backend = vip_backend::start(&inst.name, &inst.vip_backend, &netlink).await?;
        // Addresses left by a crashed earlier run go before the instance enters Backup.
        for v in &vips {
            match backend.owns(v).await {
                Ok(true) => {
                    warn!(instance = %inst.name, vip = %v, "removing a virtual address left by an earlier run");
                    backend.remove(v).await?;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(instance = %inst.name, vip = %v, "cannot tell whether an earlier run left this address: {e}")
                }
            }
        }
        let announcer = if inst.vip_backend.announces() {
            let announce = AnnounceConfig {
                repeat: inst.garp_repeat,
                refresh_delay: Some(inst.garp_delay),
                ..AnnounceConfig::default()
            };
            Some(Arc::new(
                Announcer::new(&netlink, &inst.interface, announce).await?,
            ))
        } else {
            None
        };
        routers.push((i, router_config(inst, primary)?));
        groups
            .entry((inst.interface.clone(), inst.is_ipv6()))
            .or_default()
            .push(i);
        live.push(Live {
            instance: inst.clone(),
            vips,
            backend,
            announcer,
            notify: inst.notify_master.clone().map(ExecHook::shell),
            notify_backup: inst.notify_backup.clone().map(ExecHook::shell),
            notify_fault: inst.notify_fault.clone().map(ExecHook::shell),
            announcing: std::sync::Mutex::new(Vec::new()),
        });
    }
    let (events_tx, mut events) = mpsc::unbounded_channel::<(Vec<usize>, DriverEvent)>();
    let mut stops = Vec::new();
    let mut drivers = Vec::new();
    // Where each instance runs: its driver's command channel and its position there.
    let mut placement: HashMap<usize, (mpsc::UnboundedSender<Command>, usize)> = HashMap::new();
    let mut configs: HashMap<usize, vrrp_core::Config> = routers.into_iter().collect();
    for ((interface, ipv6), members) in groups {
        let family = if ipv6 {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        };
        let source = configs
            .get(&members[0])
            .map(|c| c.primary_address)
            .ok_or("internal: no router")?;
        let socket = VrrpSocket::open(&interface, family, source)?;
        let mut rs = Vec::new();
        for m in &members {
            let c = configs.remove(m).ok_or("internal: router used twice")?;
            rs.push(Router::new(c)?);
        }
        let (stop, commands) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::unbounded_channel::<DriverEvent>();
        let forward = events_tx.clone();
        let members2 = members.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let _ = forward.send((members2.clone(), e));
            }
        });
        for (pos, m) in members.iter().enumerate() {
            placement.insert(*m, (stop.clone(), pos));
        }
        stops.push(stop);
        drivers.push(tokio::spawn(Driver::new(socket, rs).run(commands, tx)));
        info!(%interface, instances = members.len(), "driver started");
    }
    drop(events_tx);
    let _monitors = tracking::start(&config, &placement)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = term.recv(), if !stopping => {
                info!("SIGTERM: stopping gracefully");
                stopping = true;
                for s in &stops { let _ = s.send(Command::Stop); }
            }
            _ = tokio::signal::ctrl_c(), if !stopping => {
                info!("SIGINT: stopping gracefully");
                stopping = true;
                for s in &stops { let _ = s.send(Command::Stop); }
            }
            e = events.recv() => match e {
                Some((members, e)) => {
                    let Some(&index) = members.get(e.router) else { continue };
                    if let Some(l) = live.get(index) {
                        handle(l, e.event).await;
                    }
                }
                None => break,
            },
        }
    }
    for d in drivers {
        match d.await {
            Ok(Ok(stats)) => info!(?stats, "driver stopped"),
            Ok(Err(e)) => error!("driver failed: {e}"),
            Err(e) => error!("driver task: {e}"),
        }
    }
    Ok(())
}

async fn handle(l: &Live, event: Event) {
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
        other => info!(instance = %name, event = ?other, "event"),
    }
}

/// The interface's first IPv4 address, or its IPv6 link-local address.
async fn primary_address(
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

fn router_config(inst: &Instance, primary: IpAddr) -> Result<vrrp_core::Config, Error> {
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
    c.unicast_peers = inst.unicast_peers.clone();
    c.checksum = inst.checksum.parse()?;
    c.trackers = inst
        .track
        .iter()
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
