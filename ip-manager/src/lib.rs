//! # ip-manager
//!
//! Virtual IP management behind one async trait, [`IpManager`]: add, remove, list, owns. All
//! operations are idempotent (adding what exists or removing what is gone succeeds), so a
//! daemon can replay its intent after a restart without special cases.
//!
//! Backends:
//! - [`NetlinkManager`] (feature `netlink`, default): rtnetlink, IPv6 with `nodad`, labels;
//!   its [`Announcer`] sends gratuitous ARP / unsolicited NA as keepalived does, and a
//!   [`LinkMonitor`] follows interfaces going down and up (rtnetlink link notifications); its
//!   [`OwnerProbe`] asks the segment who else holds an address (ARP probe / neighbour
//!   solicitation): a second holder of a Master's address is a split brain.
//! - [`ExecManager`] (feature `exec`, default): operator scripts; [`ExecHook`] also runs
//!   keepalived-style notify scripts (no shell unless asked, timeout kills the process group).
//! - [`MemoryManager`]: an in-memory double for the unit tests of code that uses the trait.
//!
//! Each backend also says how an address changed behind the daemon's back is noticed
//! ([`IpManager::reconcile`], [`IpManager::watch`]: netlink notifications, a cloud API re-read
//! on a period, or nothing for scripts), which the reconciler of the `failover` module
//! (feature `vrrp`) uses to put back an address deleted on the Master and remove one left on a
//! Backup (module [`reconcile`]).
//!
//! With feature `guard`, [`guard`] is the crash guard: a tiny process forked at start that,
//! when the daemon dies without its clean stop (SIGKILL, OOM, segfault), sends the priority-0
//! advertisement of every router it was Master of and removes their addresses.
//!
//! ```
//! use ip_manager::{IpManager, MemoryManager, Vip};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ip_manager::Error> {
//! // Code written against the trait runs unchanged on NetlinkManager::new()?.
//! async fn become_master(ips: &dyn IpManager, vips: &[Vip]) -> Result<(), ip_manager::Error> {
//!     for vip in vips {
//!         ips.add(vip).await?;
//!     }
//!     Ok(())
//! }
//! let ips = MemoryManager::new();
//! let vip = Vip::parse("10.99.0.200/24", "eth0")?;
//! become_master(&ips, &[vip.clone()]).await?;
//! become_master(&ips, &[vip.clone()]).await?; // idempotent
//! assert!(ips.owns(&vip).await?);
//! # Ok(()) }
//! ```
//!
//! - `AwsManager` (feature `aws`): Elastic IP re-association, secondary private IP move (with
//!   or without an Elastic IP associated with it) or route-table replacement through the EC2
//!   API, signed with the official SigV4 signer.
//!
//! Beside the backends: [`failover`] (feature `vrrp`) applies VRRP to addresses, and
//! [`alert`] (feature `alerts`) mails or posts every state change in the background.
#![deny(unsafe_code)]
// allowed in small functions: a sockaddr_ll, killpg, a reactor registration, the crash guard's syscalls (guard/sys.rs)
#![deny(missing_docs)]

#[cfg(feature = "alerts")]
pub mod alert;
#[cfg(feature = "aws")]
mod aws;
mod error;
#[cfg(feature = "exec")]
mod exec;
#[cfg(feature = "vrrp")]
pub mod failover;
#[cfg(feature = "guard")]
pub mod guard;
mod memory;
#[cfg(feature = "netlink")]
mod netlink;
pub mod reconcile;
mod vip;

use async_trait::async_trait;

#[cfg(feature = "aws")]
pub use aws::{
    AwsManager, AwsMode, Credentials, DEFAULT_RECONCILE_PERIOD, EC2_API_VERSION, Imds,
    InstanceIdentity, QueryClient,
};
pub use error::Error;
#[cfg(feature = "exec")]
pub use exec::{DEFAULT_TIMEOUT, ExecHook, ExecManager, ExecOutcome};
pub use memory::MemoryManager;
#[cfg(feature = "netlink")]
pub use netlink::{
    AnnounceConfig, AnnounceStats, Announcer, LinkMonitor, LinkState, NetlinkManager, OwnerAnswer,
    OwnerProbe, VirtualMac, gratuitous_arp, unsolicited_na, virtual_mac_name, virtual_router_mac,
};
pub use reconcile::{Change, Changes, Reconcile};
pub use vip::Vip;

/// Moves virtual addresses. Every operation is idempotent.
#[async_trait]
pub trait IpManager: Send + Sync {
    /// Adds `vip`; success if it is already there.
    async fn add(&self, vip: &Vip) -> Result<(), Error>;
    /// Removes `vip`; success if it is not there.
    async fn remove(&self, vip: &Vip) -> Result<(), Error>;
    /// The addresses on `interface`.
    async fn list(&self, interface: &str) -> Result<Vec<Vip>, Error>;
    /// Whether `vip`'s address is on its interface.
    async fn owns(&self, vip: &Vip) -> Result<bool, Error> {
        listed(self, vip).await
    }
    /// Whether `vip` is in place as a Master needs it: every part of it, for a backend of
    /// several (an address in a VPC and on the interface). What the reconciler re-reads on a
    /// Master; [`owns`](Self::owns) is what it re-reads elsewhere. Default: `owns`.
    async fn in_place(&self, vip: &Vip) -> Result<bool, Error> {
        self.owns(vip).await
    }
    /// Whether the link `vip` lives on is up, where the backend can tell (`None`: it cannot,
    /// or the address lives elsewhere). An address the kernel dropped with its link (IPv6
    /// addresses go when a link goes down) is not put back by the reconciler: the link's
    /// loss makes the router leave Master. Default: `None`.
    async fn link_up(&self, vip: &Vip) -> Option<bool> {
        let _ = vip;
        None
    }
    /// How changes made behind the daemon's back are noticed, and whether the address
    /// belongs on the Master only (see the [`reconcile` module](crate::reconcile)). Default: nothing is
    /// observed ([`Reconcile::unobservable`]).
    fn reconcile(&self) -> Reconcile {
        Reconcile::unobservable()
    }
    /// Notifications of changes, for a backend whose [`reconcile`](Self::reconcile) says
    /// `notified`; `None` otherwise. Subscribe before reading the state: a change in between
    /// is then seen. Needs a tokio runtime for a backend that spawns a task.
    fn watch(&self) -> Result<Option<Changes>, Error> {
        Ok(None)
    }
}

/// Whether `m` lists `vip`'s address on its interface (the default [`IpManager::owns`]).
pub(crate) async fn listed<M: IpManager + ?Sized>(m: &M, vip: &Vip) -> Result<bool, Error> {
    Ok(m.list(&vip.interface)
        .await?
        .iter()
        .any(|v| v.address == vip.address))
}
