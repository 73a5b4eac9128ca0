//! VRRP failover for a service of one's own (feature `vrrp`): [`vrrp_core`]'s router and
//! driver, with its events applied to virtual addresses.
//!
//! - [`Failover`]: the whole thing from one builder: one virtual router on one interface,
//!   its addresses added and announced on Master and removed on leaving it, the interface's
//!   link followed (down: Fault), tracked objects set by name, a clean stop. The service's own
//!   health goes in through [`Failover::tracker`] (or `health-check`'s `vrrp` feature).
//! - [`handover`]: a preemption that drains first: the preempting Backup asks the Master to
//!   finish its connections and [`resign`](Failover::resign).
//! - [`SecondOwnerWatch`]: split brain seen on the wire: a Master's addresses probed for a
//!   second holder (the router itself reports another Master it hears:
//!   [`vrrp_core::Event::SplitBrain`]).
//! - [`VipApplier`]: just the event → address part, on any [`IpManager`](crate::IpManager),
//!   for an owner that runs its own drivers (the `vrrpd` example daemon).
//!
//! Whatever ends the driver (a stop, a socket or timer error, a panic, the [`Failover`]
//! dropped), the addresses are released and the last event says why
//! ([`FailoverEvent::Released`]): no silent Master keeps them. Whatever ends the whole
//! process without that (SIGKILL, the OOM killer, an abort) is the crash guard's:
//! [`FailoverBuilder::crash_guard`] (feature `guard`) starts one, and the router's
//! priority 0 goes out and its addresses go even then.
//!
//! What the addresses should be and what they are is reconciled
//! ([`VipApplier::reconcile`], on in every [`Failover`]): someone runs `ip addr del` on the
//! VIP, or a DHCP client or NetworkManager flushes the interface, and the Master puts it back
//! and announces it again within milliseconds ([`FailoverEvent::Restored`], counted in
//! [`Failover::reconcile_stats`]); a VIP found on a node that is not Master (left by a crash)
//! is removed ([`FailoverEvent::StaleRemoved`]). How a change is noticed is the backend's
//! ([`IpManager::reconcile`](crate::IpManager::reconcile)): netlink notifications, a cloud
//! API re-read on a period, nothing for scripts.
//!
//! A service that holds 10.99.0.200 while its own `/healthz` answers (the complete program
//! is `examples/src/bin/embedded_failover.rs`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use health_check::{HttpCheck, Monitor, MonitorConfig};
//! use ip_manager::failover::Failover;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut failover = Failover::builder("eth0", 51)
//!         .virtual_address("10.99.0.200/24")
//!         .priority(101)
//!         .track("healthz", 0) // weight 0: Fault (address released) while it fails
//!         .start()
//!         .await?;
//!     let healthz = HttpCheck::new("127.0.0.1:8080".parse()?).path("/healthz");
//!     let monitor = Monitor::spawn(Arc::new(healthz), MonitorConfig::default())?;
//!     health_check::vrrp::track(&monitor, failover.tracker("healthz")?);
//!     loop {
//!         tokio::select! {
//!             Some(event) = failover.next_event() => println!("{event}"),
//!             _ = tokio::signal::ctrl_c() => break,
//!         }
//!     }
//!     failover.stop().await; // priority 0: the peer takes over now; the address goes
//!     Ok(())
//! }
//! ```

mod apply;
mod builder;
mod event;
pub mod handover;
mod reconcile;
mod second_owner;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vrrp_core::State;
use vrrp_core::driver::{DriverError, DriverEvents, DriverExit, DriverHandle, TrackerHandle};
use vrrp_core::packet::Vrid;

pub use apply::{EventSource, VipApplier};
pub use builder::FailoverBuilder;
pub use event::FailoverEvent;
pub use reconcile::{ReconcileCounters, ReconcileStats, STALE_GRACE};
pub use second_owner::{SecondOwnerHandle, SecondOwnerStats, SecondOwnerWatch};

use crate::{LinkMonitor, NetlinkManager, VirtualMac};

/// Why a [`Failover`] could not start, or a tracker could not be had.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// VRID 0.
    #[error("VRID 0 is not a virtual router id: use 1..=255")]
    Vrid,
    /// No virtual address given.
    #[error("no virtual address: add one with `virtual_address(\"10.0.0.1/24\")`")]
    NoAddress,
    /// The router's configuration is not valid.
    #[error("{0}")]
    Config(#[from] vrrp_core::router::ConfigError),
    /// The advertisement interval cannot be encoded.
    #[error("advertisement interval: {0}")]
    AdvertInterval(#[from] vrrp_core::packet::FieldError),
    /// The VRRP socket could not be opened.
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// An address, the interface, netlink or the announcer failed.
    #[error("{0}")]
    Address(#[from] crate::Error),
    /// The crash guard could not start, or the router not be registered with it.
    #[cfg(feature = "guard")]
    #[error("{0}")]
    Guard(#[from] crate::guard::GuardError),
    /// [`Failover::tracker`] with a name that was not given to
    /// [`FailoverBuilder::track`].
    #[error(
        "no tracked object named {name:?} (tracked: {known:?}): add it with `track(name, weight)`"
    )]
    UnknownTracker {
        /// The name asked for.
        name: String,
        /// The names tracked.
        known: Vec<String>,
    },
}

/// One virtual router with its addresses: see the [module](self) docs.
///
/// Dropping it stops the driver gracefully (a Master sends priority 0) and releases the
/// addresses on a task of its own; [`stop`](Self::stop) does the same and waits for it. A
/// process that ends without either leaves its addresses behind until the next start removes
/// them (as keepalived does).
#[derive(Debug)]
#[must_use = "dropping the failover stops it and releases its addresses"]
pub struct Failover {
    driver: DriverHandle,
    vrid: Vrid,
    trackers: Vec<String>,
    state: watch::Receiver<State>,
    events: mpsc::Receiver<FailoverEvent>,
    missed: Arc<AtomicU64>,
    reconciled: Option<Arc<ReconcileCounters>>,
    applier: Option<JoinHandle<DriverExit>>,
    links: JoinHandle<()>,
    second_owner: Option<SecondOwnerHandle>,
}

/// The router's slot with the crash guard, if it has one (feature `guard`).
#[cfg(feature = "guard")]
type GuardSlot = Option<crate::guard::GuardSlot>;
/// Without feature `guard`: nothing.
#[cfg(not(feature = "guard"))]
type GuardSlot = ();

impl Failover {
    /// A builder for VRID `vrid` on `interface`.
    pub fn builder(interface: &str, vrid: u8) -> FailoverBuilder {
        FailoverBuilder::new(interface, vrid)
    }

    /// Runs `applier` over `driver_events` (through the crash guard's slot, when there is
    /// one) on a task of its own; once it has released the addresses, removes the virtual
    /// MAC's macvlan (`vmac`) they were on.
    fn spawn_applier(
        applier: VipApplier,
        driver_events: DriverEvents,
        vmac: Option<(VirtualMac, NetlinkManager)>,
        guard: GuardSlot,
    ) -> JoinHandle<DriverExit> {
        tokio::spawn(async move {
            #[cfg(feature = "guard")]
            let exit = match guard {
                Some(slot) => {
                    applier
                        .run(crate::guard::GuardedEvents::new(driver_events, slot))
                        .await
                }
                None => applier.run(driver_events).await,
            };
            #[cfg(not(feature = "guard"))]
            let () = guard;
            #[cfg(not(feature = "guard"))]
            let exit = applier.run(driver_events).await;
            if let Some((vmac, netlink)) = vmac {
                let _ = vmac.remove(&netlink).await;
            }
            exit
        })
    }

    /// Tells `driver` of every change of `interface`'s link that `links` sees, on a task of
    /// its own that ends with either.
    fn follow_link(
        driver: DriverHandle,
        mut links: LinkMonitor,
        interface: String,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::select! {
                    _ = driver.closed() => return,
                    link = links.next() => match link {
                        Some(l) if l.name == interface && last != Some(l.up) => {
                            last = Some(l.up);
                            if driver.set_link(l.up).await.is_err() {
                                return;
                            }
                        }
                        Some(_) => {}
                        None => return,
                    },
                }
            }
        })
    }

    /// The counters of the probes for a second holder of the addresses (`None` when off:
    /// [`FailoverBuilder::second_owner_probe`]).
    pub fn second_owner_stats(&self) -> Option<SecondOwnerStats> {
        self.second_owner.as_ref().map(SecondOwnerHandle::stats)
    }

    /// The handle on tracked object `name` (given to [`FailoverBuilder::track`]), for the
    /// task that watches it; it starts up.
    pub fn tracker(&self, name: &str) -> Result<TrackerHandle, StartError> {
        if !self.trackers.iter().any(|t| t == name) {
            return Err(StartError::UnknownTracker {
                name: name.to_owned(),
                known: self.trackers.clone(),
            });
        }
        Ok(self.driver.tracker(self.vrid, name))
    }

    /// The next thing that happened, `None` after [`FailoverEvent::Released`].
    pub async fn next_event(&mut self) -> Option<FailoverEvent> {
        self.events.recv().await
    }

    /// The router's state as of the last event applied.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Waits until the state is `state` (e.g. Master), or the failover ended.
    pub async fn wait_for(&self, state: State) -> Result<(), DriverExit> {
        let mut watch = self.state.clone();
        tokio::select! {
            result = watch.wait_for(|s| *s == state) => result.map(drop).map_err(|_| DriverExit::Cancelled),
            exit = self.driver.closed() => Err(exit),
        }
    }

    /// Events the stream lost because nobody read it in time.
    pub fn missed_events(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// What the reconciliation of the addresses did so far (restored on this Master, removed
    /// while not Master); `None` for a backend that observes nothing (scripts).
    pub fn reconcile_stats(&self) -> Option<ReconcileStats> {
        self.reconciled.as_ref().map(|c| c.stats())
    }

    /// The driver, for snapshots and commands beyond the tracker.
    pub fn driver(&self) -> &DriverHandle {
        &self.driver
    }

    /// Steps down on purpose if Master ([`vrrp_core::Router::resign`]): priority 0 goes out,
    /// the addresses are released, and the preempting peer takes over after Skew_Time; this
    /// router stays a Backup. Call it once the service has finished its connections (see
    /// [`handover`]). True when it was Master.
    pub async fn resign(&self) -> Result<bool, vrrp_core::driver::CommandError> {
        self.driver.resign(self.vrid).await
    }

    /// Stops gracefully (a Master sends priority 0: the peer takes over after Skew_Time),
    /// releases the addresses, and returns how the driver ended (`Stopped`, or the failure
    /// that had ended it before).
    pub async fn stop(mut self) -> DriverExit {
        self.driver.shutdown();
        let exit = self.driver.closed().await;
        if let Some(applier) = self.applier.take() {
            let _ = applier.await;
        }
        exit
    }
}

impl Drop for Failover {
    fn drop(&mut self) {
        // The applier task runs on: it releases the addresses once the driver has ended.
        self.driver.shutdown();
        self.links.abort();
    }
}
