//! Where an instance's virtual addresses go on a takeover: `vip_backend = { kind = ... }`.
//!
//! | `kind` | on becoming Master | on leaving Master | announced |
//! |---|---|---|---|
//! | `netlink` (default) | the addresses are added to the interface | removed | gratuitous ARP / unsolicited NA |
//! | `aws`, `mode = "elastic-ip"` | `AssociateAddress` of the Elastic IP to this ENI, `AllowReassociation` | nothing | no |
//! | `aws`, `mode = "secondary-ip"` | `AssignPrivateIpAddresses` to this ENI, then added to the interface | removed from the interface, then unassigned | no |
//! | `aws`, `mode = "elastic-ip-on-secondary"` | `AssignPrivateIpAddresses` to this ENI, `AllowReassignment`; `AssociateAddress` of the Elastic IP to that address, `AllowReassociation`; then added to the interface | removed from the interface; unassigned only if the Elastic IP is no longer on this ENI | no |
//! | `aws`, `mode = "route-table"` | the VIP's /32 route points at this ENI (`ReplaceRoute`, or `CreateRoute`) | nothing | no |
//! | `exec` | `add` runs with `ADDRESS/PREFIX INTERFACE` appended | `remove` runs, same arguments | no |
//!
//! Elastic IP and route table: leaving Master does nothing on purpose. There is no
//! "unassociated" state to pass through: the next Master re-associates the address (or
//! replaces the route) in one call, so the address is never without a holder, and a Master that
//! stops or crashes needs no API call to succeed for the takeover to happen. Until then the
//! address keeps pointing at the old holder.
//!
//! `elastic-ip-on-secondary` (keepalived's usual EC2 setup: the virtual address is a private
//! address of the subnet, the Elastic IP its public face) follows the same reasoning: EC2
//! disassociates the Elastic IP of a private address that is unassigned, so leaving Master
//! keeps the VPC side while the Elastic IP is still on this ENI; the next Master's reassignment
//! takes the address with its Elastic IP (and its association makes sure of it). The address
//! leaves the interface first, so the old host stops answering whatever the API says. A copy
//! still on this ENI once the Elastic IP has moved is unassigned.
//!
//! Nothing is announced on the wire for `aws` (a VPC ignores ARP: the API moves the address)
//! or `exec` (the script knows what the address needs).
//!
//! Reconciliation (an address changed behind the daemon's back, see
//! `ip_manager::failover::VipApplier::reconcile`): `netlink` follows the kernel's address and
//! link notifications (a VIP deleted on the Master is back and announced within milliseconds;
//! one found on a Backup goes); `aws` re-reads the association every 10 s and right after each
//! takeover, and takes it back if it moved away while Master (`secondary-ip` and
//! `elastic-ip-on-secondary` also follow the interface's notifications); `exec` cannot be
//! observed: nothing is reconciled.

mod check;
mod start;

use std::net::Ipv4Addr;
use std::time::Duration;

pub(crate) use check::{Around, VipBackendToml, check};
pub use start::StartError;
pub(crate) use start::start;

/// An instance's `vip_backend`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VipBackend {
    /// The addresses go on the interface (rtnetlink) and are announced with gratuitous ARP /
    /// unsolicited NA, as keepalived does.
    #[default]
    Netlink,
    /// The EC2 API moves the address (IPv4 only).
    Aws(AwsBackend),
    /// Operator scripts move the address.
    Exec(ExecBackend),
}

impl VipBackend {
    /// Whether vrrpd sends gratuitous ARPs / unsolicited NAs after a takeover (netlink only).
    pub fn announces(&self) -> bool {
        matches!(self, VipBackend::Netlink)
    }
}

/// `vip_backend = { kind = "aws", ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsBackend {
    /// `mode` with its id: `elastic-ip` + `allocation_id`, `secondary-ip`,
    /// `elastic-ip-on-secondary` + `allocation_id`, or `route-table` + `route_table_id`.
    pub mode: ip_manager::AwsMode,
    /// `network_interface_id` (`eni-...`): the ENI that takes the address. Default: the
    /// instance's primary ENI, from the instance metadata service (IMDSv2).
    pub network_interface_id: Option<String>,
    /// `private_ip`: the ENI's private address an Elastic IP is associated with in
    /// `elastic-ip` mode. Default: its primary address.
    pub private_ip: Option<Ipv4Addr>,
    /// `region`. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, then the instance metadata.
    pub region: Option<String>,
    /// `endpoint`: the EC2 API's URL (a VPC endpoint, or an emulator in tests). Default:
    /// `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, then the region's public endpoint.
    pub endpoint: Option<String>,
}

/// `vip_backend = { kind = "exec", add = "...", remove = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecBackend {
    /// `add`: a command line (run by `/bin/sh`, the address and interface appended as `$1 $2`).
    pub add: String,
    /// `remove`: the same for leaving Master.
    pub remove: String,
    /// `timeout`: how long a script may run before its process group is killed (default 10s).
    pub timeout: Duration,
}
