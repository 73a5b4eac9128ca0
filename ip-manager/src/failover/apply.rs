//! [`VipApplier`]: a VRRP router's events applied to its virtual addresses, on any
//! [`IpManager`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vrrp_core::driver::{DriverEvent, DriverEvents, DriverExit};
use vrrp_core::{Event, Reason, State};

use super::FailoverEvent;
use super::reconcile::{ReconcileCounters, Reconciler};
use crate::{Announcer, IpManager, NetlinkManager, Vip};

/// Where a [`VipApplier`]'s input comes from: a spawned driver's [`DriverEvents`], or any
/// other source of router events (a test's channel).
#[async_trait::async_trait]
pub trait EventSource: Send {
    /// The next event; `None` once the source has ended.
    async fn recv(&mut self) -> Option<DriverEvent>;
    /// How the source ended (called after `recv` returned `None`).
    async fn exit(&mut self) -> DriverExit;
}

#[async_trait::async_trait]
impl EventSource for DriverEvents {
    async fn recv(&mut self) -> Option<DriverEvent> {
        DriverEvents::recv(self).await
    }

    async fn exit(&mut self) -> DriverExit {
        DriverEvents::exit(self).await
    }
}

/// Applies one router's events to its virtual addresses, as keepalived does: on becoming
/// Master it adds them, then announces them (the announcements run on their own tasks); on
/// leaving Master it stops announcing and removes them. When its event source ends
/// ([`run`](Self::run)) it removes them whatever the last state was: a driver that failed,
/// panicked or was dropped never leaves a silent Master holding the addresses.
///
/// ```
/// use ip_manager::failover::VipApplier;
/// use ip_manager::{IpManager, MemoryManager, Vip};
/// use std::sync::Arc;
/// use vrrp_core::{Event, Reason, State};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ip_manager::Error> {
/// let ips = Arc::new(MemoryManager::new());
/// let vip = Vip::parse("10.99.0.200/24", "eth0")?;
/// let mut applier = VipApplier::new(ips.clone(), vec![vip.clone()]);
/// let to = |from, to| Event::StateChanged { from, to, reason: Reason::MasterDown };
/// applier.apply(to(State::Backup, State::Master)).await;
/// assert!(ips.owns(&vip).await?);
/// applier.apply(to(State::Master, State::Backup)).await;
/// assert!(!ips.owns(&vip).await?);
/// # Ok(()) }
/// ```
pub struct VipApplier {
    manager: Arc<dyn IpManager>,
    vips: Vec<Vip>,
    announcer: Option<Arc<Announcer>>,
    announcing: Vec<JoinHandle<()>>,
    reports: Option<mpsc::Sender<FailoverEvent>>,
    missed: Arc<AtomicU64>,
    state: watch::Sender<State>,
    /// Where to look up a preempting peer's MAC for [`hand_off`](Self::hand_off).
    hand_off: Option<NetlinkManager>,
    /// Whether the addresses were added (since the last release): only then is a removal
    /// news worth a report.
    holding: bool,
    /// Desired versus actual, when [`reconcile`](Self::reconcile) started it.
    reconciler: Option<Reconciler>,
}

impl std::fmt::Debug for VipApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VipApplier")
            .field("vips", &self.vips)
            .field("announcer", &self.announcer)
            .field("announcing", &self.announcing.len())
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl VipApplier {
    /// An applier for `vips` on `manager`, without announcements and without reports.
    pub fn new(manager: Arc<dyn IpManager>, vips: Vec<Vip>) -> VipApplier {
        VipApplier {
            manager,
            vips,
            announcer: None,
            announcing: Vec::new(),
            reports: None,
            missed: Arc::default(),
            state: watch::Sender::new(State::Initialize),
            hand_off: None,
            holding: false,
            reconciler: None,
        }
    }

    /// Keeps the addresses as the router's state wants them, whatever else touches them. On a
    /// Master an address deleted behind its back (`ip addr del`, an interface flushed by a DHCP
    /// client or NetworkManager) is added again and announced once more, within a millisecond
    /// on netlink ([`FailoverEvent::Restored`]). Elsewhere an address found held (left by a
    /// crash, added by hand) is removed once it has stayed [`STALE_GRACE`](super::STALE_GRACE)
    /// (then twice as long each time it comes back, up to a minute;
    /// [`FailoverEvent::StaleRemoved`]), unless the backend says its address is active on
    /// every node by design ([`Reconcile::shared`](crate::Reconcile::shared)). Changes are noticed as the backend says
    /// ([`IpManager::reconcile`]): netlink notifications, a cloud API re-read on a period and
    /// after each takeover, or nothing (scripts: then this does nothing). The applier's own
    /// changes and the checks take turns, so a check never undoes a demotion. Call it after
    /// [`reports`](Self::reports) (its reports go there), within a tokio runtime. On an error
    /// (the backend's watch could not be opened) the applier works on without it.
    pub fn reconcile(&mut self) -> Result<(), crate::Error> {
        self.reconciler = Reconciler::start(
            self.manager.clone(),
            self.vips.clone(),
            self.reports.clone(),
            self.missed.clone(),
        )?;
        Ok(())
    }

    /// The reconciler's counters (addresses restored, stale ones removed, ...), if
    /// [`reconcile`](Self::reconcile) started one.
    pub fn reconcile_counters(&self) -> Option<Arc<ReconcileCounters>> {
        self.reconciler.as_ref().map(Reconciler::counters)
    }

    /// Announces the addresses with `announcer` after adding them (gratuitous ARP /
    /// unsolicited NA: netlink addresses on a LAN; a cloud API or a script needs none).
    #[must_use]
    pub fn announcer(mut self, announcer: Arc<Announcer>) -> VipApplier {
        self.announcer = Some(announcer);
        self
    }

    /// When a higher-priority peer preempts this Master, announces the addresses at that
    /// peer's MAC (gratuitous ARPs; for IPv6 unsolicited NAs), as the neighbour table of
    /// `netlink` knows it from the peer's own address (IPv6: its link-local), with the
    /// announcer. For peers that announce nothing when they take an address
    /// back (FRR keeps its virtual MAC's device holding it all along, in its own view never
    /// having left Master): without it, clients keep this host's MAC until their ARP entry
    /// expires. The peer's host accepts the traffic on its own MAC (Linux's weak host model);
    /// its own announcement, if it makes one, supersedes this. Needs the announcer; no use with
    /// a virtual MAC (the peers share it).
    #[must_use]
    pub fn hand_off(mut self, netlink: NetlinkManager) -> VipApplier {
        self.hand_off = Some(netlink);
        self
    }

    /// Replaces the announcer (`None`: no announcements) from the next takeover on; the
    /// announcements in progress run on.
    pub fn set_announcer(&mut self, announcer: Option<Arc<Announcer>>) {
        self.announcer = announcer;
    }

    /// The addresses it moves.
    pub fn vips(&self) -> &[Vip] {
        &self.vips
    }

    /// Reports what it does on `reports`. A full channel loses the report, never holds up
    /// the addresses (the reader is a log; the addresses are the service).
    #[must_use]
    pub fn reports(mut self, reports: mpsc::Sender<FailoverEvent>) -> VipApplier {
        self.reports = Some(reports);
        self
    }

    /// How many reports a full channel lost so far.
    pub fn missed_reports(&self) -> Arc<AtomicU64> {
        self.missed.clone()
    }

    /// The router's state as of the last event applied.
    pub fn state(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    fn report(&self, event: FailoverEvent) {
        report(self.reports.as_ref(), &self.missed, event);
    }

    /// Applies one router event.
    pub async fn apply(&mut self, event: Event) {
        let Event::StateChanged { from, to, reason } = event else {
            self.report(FailoverEvent::Router(event));
            return;
        };
        self.state.send_replace(to);
        self.report(FailoverEvent::StateChanged {
            from,
            to,
            reason: reason.clone(),
        });
        if to == State::Master {
            self.add().await;
        } else if from == State::Master {
            self.release().await;
            if let Reason::Preempted { by, .. } = reason {
                self.hand_over(by);
            }
        }
    }

    async fn add(&mut self) {
        // The reconciler's checks wait until the addresses are in.
        let _turn = match &self.reconciler {
            Some(r) => Some(r.hold(true, self.announcer.clone()).await),
            None => None,
        };
        self.holding = true;
        for vip in &self.vips {
            match self.manager.add(vip).await {
                Ok(()) => self.report(FailoverEvent::Added(vip.clone())),
                Err(error) => self.report(FailoverEvent::Failed {
                    vip: vip.clone(),
                    error,
                }),
            }
        }
        if let Some(announcer) = &self.announcer {
            for vip in self.vips.clone() {
                let announcer = announcer.clone();
                let reports = self.reports.clone();
                let missed = self.missed.clone();
                self.announcing.push(tokio::spawn(async move {
                    if let Err(error) = announcer.announce(&vip).await {
                        report(
                            reports.as_ref(),
                            &missed,
                            FailoverEvent::Failed { vip, error },
                        );
                    }
                }));
            }
        }
    }

    /// Announces the addresses at the MAC of `peer`, if hand-off is on and its MAC is known.
    fn hand_over(&mut self, peer: std::net::IpAddr) {
        let (Some(netlink), Some(announcer)) = (self.hand_off.clone(), self.announcer.clone())
        else {
            return;
        };
        let vips = self.vips.clone();
        let reports = self.reports.clone();
        let missed = self.missed.clone();
        self.announcing.push(tokio::spawn(async move {
            let mac = match peer_mac(&netlink, announcer.interface(), peer).await {
                Ok(Some(mac)) => mac,
                Ok(None) => return,
                Err(error) => {
                    if let Some(vip) = vips.first().cloned() {
                        report(
                            reports.as_ref(),
                            &missed,
                            FailoverEvent::Failed { vip, error },
                        );
                    }
                    return;
                }
            };
            for vip in vips {
                if let Err(error) = announcer.announce_for(&vip, mac).await {
                    report(
                        reports.as_ref(),
                        &missed,
                        FailoverEvent::Failed { vip, error },
                    );
                }
            }
        }));
    }

    /// Stops announcing and removes every address (idempotent: what is gone stays gone;
    /// [`FailoverEvent::Removed`] is reported for the addresses it had added).
    pub async fn release(&mut self) {
        // From here on the reconciler removes what it finds, instead of restoring it.
        let _turn = match &self.reconciler {
            Some(r) => Some(r.hold(false, None).await),
            None => None,
        };
        for task in self.announcing.drain(..) {
            task.abort();
        }
        let held = std::mem::take(&mut self.holding);
        for vip in &self.vips {
            match self.manager.remove(vip).await {
                Ok(()) if held => self.report(FailoverEvent::Removed(vip.clone())),
                Ok(()) => {}
                Err(error) => self.report(FailoverEvent::Failed {
                    vip: vip.clone(),
                    error,
                }),
            }
        }
    }

    /// Applies every event of `source` until it ends, then releases the addresses and
    /// reports [`FailoverEvent::Released`] with how it ended. Returns that.
    pub async fn run(mut self, mut source: impl EventSource) -> DriverExit {
        while let Some(e) = source.recv().await {
            self.apply(e.event).await;
        }
        let exit = source.exit().await;
        self.release().await;
        self.state.send_replace(State::Initialize);
        self.report(FailoverEvent::Released(exit.clone()));
        exit
    }
}

/// `peer`'s MAC from the neighbour table of `interface`. Adverts are multicast, so the table
/// may not know the peer yet: then one empty UDP datagram to its discard port makes the kernel
/// resolve it (ARP, or neighbour solicitation), and the table is read again for up to 300 ms.
async fn peer_mac(
    netlink: &NetlinkManager,
    interface: &str,
    peer: std::net::IpAddr,
) -> Result<Option<[u8; 6]>, crate::Error> {
    if let Some(mac) = netlink.neighbour_mac(interface, peer).await? {
        return Ok(Some(mac));
    }
    let any: std::net::SocketAddr = if peer.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let to: std::net::SocketAddr = match peer {
        std::net::IpAddr::V4(_) => (peer, 9).into(),
        // An IPv6 peer is its link-local address, which needs the interface as its scope.
        std::net::IpAddr::V6(v6) => {
            let scope = netlink.interface_index(interface).await?;
            std::net::SocketAddrV6::new(v6, 9, 0, scope).into()
        }
    };
    if let Ok(probe) = tokio::net::UdpSocket::bind(any).await {
        let _ = probe.send_to(&[], to).await;
    }
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if let Some(mac) = netlink.neighbour_mac(interface, peer).await? {
            return Ok(Some(mac));
        }
    }
    Ok(None)
}

impl Drop for VipApplier {
    /// Stops the announcements in progress: nobody is left to stop them on leaving Master.
    fn drop(&mut self) {
        for task in &self.announcing {
            task.abort();
        }
    }
}

pub(super) fn report(
    to: Option<&mpsc::Sender<FailoverEvent>>,
    missed: &AtomicU64,
    event: FailoverEvent,
) {
    if let Some(to) = to
        && let Err(mpsc::error::TrySendError::Full(_)) = to.try_send(event)
    {
        missed.fetch_add(1, Ordering::Relaxed);
    }
}
