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
#![deny(unsafe_code)] // allowed in small functions: a sockaddr_ll, killpg, a reactor registration
#![deny(missing_docs)]

#[cfg(feature = "aws")]
mod aws;
mod error;
#[cfg(feature = "exec")]
mod exec;
#[cfg(feature = "vrrp")]
pub mod failover;
mod memory;
#[cfg(feature = "netlink")]
mod netlink;
mod vip;

use async_trait::async_trait;

#[cfg(feature = "aws")]
pub use aws::{
    AwsManager, AwsMode, Credentials, EC2_API_VERSION, Imds, InstanceIdentity, QueryClient,
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
}

/// Whether `m` lists `vip`'s address on its interface (the default [`IpManager::owns`]).
pub(crate) async fn listed<M: IpManager + ?Sized>(m: &M, vip: &Vip) -> Result<bool, Error> {
    Ok(m.list(&vip.interface)
        .await?
        .iter()
        .any(|v| v.address == vip.address))
}
