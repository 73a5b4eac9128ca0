//! [`FailoverBuilder`]: one virtual router on one interface, its addresses moved by netlink
//! (or another [`IpManager`]), announced, and its interface's link followed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use vrrp_core::driver::{DEFAULT_EVENT_CAPACITY, Driver, VrrpSocket};
use vrrp_core::packet::{AddressFamily, AdvertInterval, Priority, Vrid};
use vrrp_core::router::Tracker;
use vrrp_core::{Config, Router};

use super::SecondOwnerWatch;
use super::{Failover, StartError, VipApplier};
use crate::{AnnounceConfig, Announcer, IpManager, LinkMonitor, NetlinkManager, OwnerProbe, Vip};

/// Sets up a [`Failover`]: what keepalived's `vrrp_instance` says, in builder form. Every
/// setting has keepalived's or the RFC's default; [`start`](Self::start) checks them all.
#[must_use = "a builder does nothing until `start`"]
pub struct FailoverBuilder {
    interface: String,
    vrid: u8,
    addresses: Vec<String>,
    priority: u8,
    advert_interval: Duration,
    trackers: Vec<Tracker>,
    primary: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    announce: Option<AnnounceConfig>,
    manager: Option<Arc<dyn IpManager>>,
    socket: Option<VrrpSocket>,
    virtual_mac: bool,
    second_owner_probe: bool,
    event_capacity: usize,
    tune: Option<Tune>,
    #[cfg(feature = "guard")]
    guard: Option<GuardChoice>,
    #[cfg(feature = "guard")]
    hold_down: Duration,
}

/// [`FailoverBuilder::crash_guard`] or [`FailoverBuilder::guard`].
#[cfg(feature = "guard")]
enum GuardChoice {
    Start(std::path::PathBuf),
    Shared(crate::guard::Guard),
}

/// [`FailoverBuilder::configure`]'s closure.
type Tune = Box<dyn FnOnce(&mut Config) + Send>;

impl std::fmt::Debug for FailoverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverBuilder")
            .field("interface", &self.interface)
            .field("vrid", &self.vrid)
            .field("addresses", &self.addresses)
            .field("priority", &self.priority)
            .field("advert_interval", &self.advert_interval)
            .field("trackers", &self.trackers)
            .field("primary", &self.primary)
            .field("unicast_peers", &self.unicast_peers)
            .field("announce", &self.announce)
            .field("manager", &self.manager.is_some())
            .field("socket", &self.socket)
            .field("virtual_mac", &self.virtual_mac)
            .field("second_owner_probe", &self.second_owner_probe)
            .field("event_capacity", &self.event_capacity)
            .field("configure", &self.tune.is_some())
            .finish_non_exhaustive()
    }
}

impl FailoverBuilder {
    pub(super) fn new(interface: &str, vrid: u8) -> FailoverBuilder {
        FailoverBuilder {
            interface: interface.to_owned(),
            vrid,
            addresses: Vec::new(),
            priority: Priority::DEFAULT.get(),
            advert_interval: AdvertInterval::DEFAULT.as_duration(),
            trackers: Vec::new(),
            primary: None,
            unicast_peers: Vec::new(),
            announce: Some(AnnounceConfig::default()),
            manager: None,
            socket: None,
            virtual_mac: false,
            second_owner_probe: true,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            tune: None,
            #[cfg(feature = "guard")]
            guard: None,
            #[cfg(feature = "guard")]
            hold_down: crate::guard::DEFAULT_HOLD_DOWN,
        }
    }

    /// A virtual address, `10.99.0.200/24` or `fd99::200/64` (without a prefix: /32, /128).
    /// At least one; all of one family.
    pub fn virtual_address(mut self, address: &str) -> FailoverBuilder {
        self.addresses.push(address.to_owned());
        self
    }

    /// The priority, 1..=255 (255: the address owner); default 100.
    pub fn priority(mut self, priority: u8) -> FailoverBuilder {
        self.priority = priority;
        self
    }

    /// The advertisement interval; default 1 s (VRRPv3: 10 ms steps).
    pub fn advert_interval(mut self, interval: Duration) -> FailoverBuilder {
        self.advert_interval = interval;
        self
    }

    /// A tracked object, set later through [`Failover::tracker`] (or fed by a health-check
    /// monitor). keepalived's weights: positive is added while it is up, negative while it is
    /// down, 0 puts the router in Fault (addresses released) while it is down. It starts up.
    pub fn track(mut self, name: &str, weight: i16) -> FailoverBuilder {
        self.trackers.push(Tracker::new(name, weight));
        self
    }

    /// Adverts unicast from `source` to `peers` (keepalived's `unicast_src_ip` /
    /// `unicast_peer`), e.g. where the network drops multicast.
    pub fn unicast(mut self, source: IpAddr, peers: Vec<IpAddr>) -> FailoverBuilder {
        self.primary = Some(source);
        self.unicast_peers = peers;
        self
    }

    /// The announcements after a takeover; default keepalived's (5 now, 5 more after 5 s).
    /// `None`: no announcements (a cloud API or a script moves the traffic).
    pub fn announce(mut self, config: Option<AnnounceConfig>) -> FailoverBuilder {
        self.announce = config;
        self
    }

    /// Moves the addresses with `manager` (an `AwsManager`, an `ExecManager`, ...) instead of
    /// netlink; no announcements unless [`announce`](Self::announce) is set after this.
    pub fn manager(mut self, manager: Arc<dyn IpManager>) -> FailoverBuilder {
        self.manager = Some(manager);
        self.announce = None;
        self
    }

    /// Runs on `socket` instead of opening one: a socket opened while the process still had
    /// `CAP_NET_RAW` ([`VrrpSocket::open`], or [`VrrpSocket::from_socket`] for one passed down
    /// by a supervisor). Its interface and family must be the failover's.
    pub fn socket(mut self, socket: VrrpSocket) -> FailoverBuilder {
        self.socket = Some(socket);
        self
    }

    /// Runs on the virtual router MAC (RFC 5798 §7.3, keepalived's `use_vmac`): a macvlan
    /// device `vrrp.VRID` (`vrrp6.VRID`) with `00:00:5e:00:01:VRID` (`:02:` for IPv6) is made
    /// on the interface, the addresses go on it and the adverts and announcements leave from
    /// it, so a takeover needs no ARP update at the clients; the device goes when the failover
    /// ends (see [`NetlinkManager::add_virtual_mac`]). Default off (the interface's own MAC).
    pub fn virtual_mac(mut self, on: bool) -> FailoverBuilder {
        self.virtual_mac = on;
        self
    }

    /// Whether the Master probes its addresses for a second holder once per advert interval
    /// (100 ms at the least), reporting [`FailoverEvent::SecondOwner`](super::FailoverEvent)
    /// and its end: the split brain VRRP cannot see when its adverts are blocked both ways
    /// (see [`SecondOwnerWatch`](super::SecondOwnerWatch)). Default on; only with the netlink
    /// manager and announcements (a cloud API or a script has no segment to ask).
    pub fn second_owner_probe(mut self, on: bool) -> FailoverBuilder {
        self.second_owner_probe = on;
        self
    }

    /// Capacity of the event stream read by [`Failover::next_event`]; default 64. A full
    /// stream loses reports (counted in [`Failover::missed_events`]), never holds up the
    /// addresses.
    pub fn event_capacity(mut self, capacity: usize) -> FailoverBuilder {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Any other setting of the router (version 2, authentication, preemption, checksum
    /// form, ...), applied to its [`Config`] last.
    pub fn configure(mut self, tune: impl FnOnce(&mut Config) + Send + 'static) -> FailoverBuilder {
        self.tune = Some(Box::new(tune));
        self
    }

    /// Starts a crash guard (feature `guard`, see [`crate::guard`]) with its file at `path`
    /// (one per process: give each failover of a process the same [`Guard`](crate::guard::Guard)
    /// through [`guard`](Self::guard) instead): if the process dies without stopping the
    /// failover (SIGKILL, the OOM killer, a panic that aborts), the guard sends this router's
    /// priority-0 advertisement if it was Master and removes its addresses (netlink's only:
    /// with another [`manager`](Self::manager), just the advertisement). Off by default.
    #[cfg(feature = "guard")]
    pub fn crash_guard(mut self, path: impl Into<std::path::PathBuf>) -> FailoverBuilder {
        self.guard = Some(GuardChoice::Start(path.into()));
        self
    }

    /// Registers the router with a running crash guard (see [`crash_guard`](Self::crash_guard)).
    #[cfg(feature = "guard")]
    pub fn guard(mut self, guard: crate::guard::Guard) -> FailoverBuilder {
        self.guard = Some(GuardChoice::Shared(guard));
        self
    }

    /// With a crash guard: when this router was Master as the previous run died, it starts at
    /// priority 1 for `hold_down` (Backup while a peer is Master), so that a crash and a
    /// supervisor's restart move the addresses once, not back again at once. Default
    /// [`DEFAULT_HOLD_DOWN`](crate::guard::DEFAULT_HOLD_DOWN); zero: none.
    #[cfg(feature = "guard")]
    pub fn crash_hold_down(mut self, hold_down: Duration) -> FailoverBuilder {
        self.hold_down = hold_down;
        self
    }

    /// Starts it: looks up the interface's primary address, opens the VRRP socket (needs
    /// CAP_NET_RAW) and the announcer, removes the virtual addresses if a previous run left
    /// them (keepalived does the same), follows the interface's link (down: Fault), and
    /// starts the router as Backup (or Master, for the address owner). From then on the
    /// addresses are reconciled ([`VipApplier::reconcile`]): a VIP deleted behind the Master's
    /// back is put back and announced within milliseconds
    /// ([`FailoverEvent::Restored`](super::FailoverEvent::Restored)).
    /// Must be called within a tokio runtime.
    pub async fn start(self) -> Result<Failover, StartError> {
        let vrid = Vrid::new(self.vrid).ok_or(StartError::Vrid)?;
        if self.addresses.is_empty() {
            return Err(StartError::NoAddress);
        }
        let mut vips = self
            .addresses
            .iter()
            .map(|a| Vip::parse(a, &self.interface))
            .collect::<Result<Vec<_>, _>>()?;
        let family = if vips[0].address.is_ipv6() {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        };
        let netlink = NetlinkManager::new()?;
        let primary = match self.primary {
            Some(a) => a,
            None if family == AddressFamily::Ipv4 => {
                IpAddr::V4(netlink.first_ipv4(&self.interface).await?)
            }
            None => IpAddr::V6(netlink.link_local_ipv6(&self.interface).await?),
        };
        // With a virtual MAC, everything but the link state happens on the macvlan.
        let vmac = if self.virtual_mac {
            let ipv6 = family == AddressFamily::Ipv6;
            let vmac = netlink
                .add_virtual_mac(&self.interface, self.vrid, ipv6)
                .await?;
            for v in &mut vips {
                v.interface = vmac.name().to_owned();
            }
            Some(vmac)
        } else {
            None
        };
        let on = vmac.as_ref().map_or(self.interface.as_str(), |v| v.name());
        let mut config = Config::new(vrid, primary, vips.iter().map(|v| v.address).collect());
        config.priority = Priority::new(self.priority);
        config.advert_interval = AdvertInterval::try_from(self.advert_interval)?;
        config.trackers = self.trackers;
        config.unicast_peers = self.unicast_peers;
        if let Some(tune) = self.tune {
            tune(&mut config);
        }
        #[cfg(feature = "guard")]
        let guard = match self.guard {
            Some(GuardChoice::Start(path)) => Some(crate::guard::Guard::start(path)?),
            Some(GuardChoice::Shared(g)) => Some(g),
            None => None,
        };
        #[cfg(feature = "guard")]
        let held = guard.as_ref().is_some_and(|g| {
            !self.hold_down.is_zero() && g.was_master(self.vrid, family == AddressFamily::Ipv6, on)
        });
        #[cfg(feature = "guard")]
        if held {
            config.trackers.push(Tracker::new(
                crate::guard::HOLD_DOWN_TRACKER,
                crate::guard::HOLD_DOWN_WEIGHT,
            ));
        }
        let mut router = Router::new(config)?;
        #[cfg(feature = "guard")]
        if held {
            let last = router.config().trackers.len() - 1;
            router.set_tracker(std::time::Instant::now(), last, false);
        }
        #[cfg(feature = "guard")]
        let guard = match guard {
            Some(g) => {
                let netlink_vips: &[Vip] = if self.manager.is_none() { &vips } else { &[] };
                let name = format!("VRID {} on {on}", self.vrid);
                Some(g.register(&name, router.config(), on, netlink_vips)?)
            }
            None => None,
        };
        let links = LinkMonitor::new()?;
        if !links.state(&self.interface).await?.up {
            router.set_link(std::time::Instant::now(), false);
        }
        let socket = match self.socket {
            Some(s) => s,
            None => VrrpSocket::open(on, family, primary)?,
        };
        let on_netlink = self.manager.is_none();
        let manager: Arc<dyn IpManager> = match self.manager {
            Some(m) => m,
            None => Arc::new(netlink.clone()),
        };
        let exclusive = manager.reconcile().exclusive;
        let probe = if self.second_owner_probe && self.announce.is_some() && on_netlink {
            let addresses: Vec<IpAddr> = vips.iter().map(|v| v.address).collect();
            let probe = OwnerProbe::new(&netlink, &self.interface, &addresses).await?;
            let interval = self.advert_interval.max(Duration::from_millis(100));
            Some(SecondOwnerWatch::new(probe, &vips).interval(interval))
        } else {
            None
        };
        let mut applier = VipApplier::new(manager, vips);
        if let Some(announce) = self.announce {
            applier = applier.announcer(Arc::new(Announcer::new(&netlink, on, announce).await?));
            // A peer that preempts us may announce nothing (FRR): hand the addresses over at
            // its MAC. Not with a virtual MAC, which the peers share.
            if vmac.is_none() {
                applier = applier.hand_off(netlink.clone());
            }
        }
        let (reports, events) = mpsc::channel(self.event_capacity);
        let second_owner = probe.map(|w| w.spawn(applier.state(), reports.clone()));
        // Desired versus actual from now on: a VIP deleted behind the Master's back comes
        // back and is announced again; one found here while not Master goes.
        let mut applier = applier.reports(reports);
        applier.reconcile()?;
        // Not Master yet: whatever a previous run left must go (unless the backend's address
        // is active on every node by design).
        if exclusive {
            applier.release().await;
        }
        let trackers = router
            .config()
            .trackers
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let (driver, driver_events) =
            Driver::new(socket, vec![router]).spawn(DEFAULT_EVENT_CAPACITY);
        let (state, missed) = (applier.state(), applier.missed_reports());
        let reconciled = applier.reconcile_counters();
        let vmac = vmac.map(|v| (v, netlink));
        // Held down after a crash while Master: back to its priority when the time is up.
        #[cfg(feature = "guard")]
        if held {
            let tracker = driver.tracker(vrid, crate::guard::HOLD_DOWN_TRACKER);
            let hold = self.hold_down;
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                let _ = tracker.set(true).await;
            });
        }
        #[cfg(not(feature = "guard"))]
        let guard = ();
        Ok(Failover {
            applier: Some(Failover::spawn_applier(applier, driver_events, vmac, guard)),
            links: Failover::follow_link(driver.clone(), links, self.interface),
            driver,
            vrid,
            trackers,
            state,
            events,
            missed,
            reconciled,
            second_owner,
        })
    }
}
