//! [`AwsManager`]: the virtual address moves in a VPC, where ARP does not move anything: the
//! EC2 API does (feature `aws`).
//!
//! | [`AwsMode`] | on `add` (becoming Master) | on `remove` (demotion) |
//! |---|---|---|
//! | `ElasticIp` | `AssociateAddress` to this ENI, `AllowReassociation` | nothing: the next Master re-associates |
//! | `SecondaryIp` | `AssignPrivateIpAddresses` to this ENI, `AllowReassignment` | `UnassignPrivateIpAddresses` from this ENI |
//! | `RouteTable` | `ReplaceRoute` (or `CreateRoute`) VIP/32 → this ENI | nothing: the next Master replaces it |
//! | `ElasticIpOnSecondary` | `AssignPrivateIpAddresses` of the VIP to this ENI, `AllowReassignment`; then `AssociateAddress` of the Elastic IP to this ENI's VIP, `AllowReassociation` | the Elastic IP still on this ENI: nothing; otherwise `UnassignPrivateIpAddresses` of the VIP if this ENI still holds it |
//!
//! For `SecondaryIp` and `ElasticIpOnSecondary` the address must also be on the interface
//! (EC2 does not configure a secondary address on the host): pair this manager with
//! [`NetlinkManager`](crate::NetlinkManager), add to the VPC first, remove from the interface
//! first.
//!
//! `ElasticIpOnSecondary` is keepalived's usual EC2 pattern: the VIP is a secondary private
//! address that moves between the two hosts, and the Elastic IP (the public address) is
//! associated with that private address. Reassigning the secondary address moves the Elastic IP
//! with it (EC2 keeps the association); `AssociateAddress` then makes sure of it (the first
//! takeover, or an Elastic IP found elsewhere). Leaving Master keeps the VPC side while the
//! Elastic IP is still on this ENI: EC2 disassociates the Elastic IP of a private address that is
//! unassigned, so unassigning there would leave the public address with no holder until the next
//! Master, and a Master that stops or crashes would need an API call to succeed. The next Master
//! takes both in its own calls. A copy left on this ENI once another ENI holds the Elastic IP is
//! unassigned.
//!
//! Reconciliation ([`IpManager::reconcile`]): EC2 notifies nothing, so a reconciler re-reads
//! `owns` every [`AwsManager::reconcile_every`] (default 10 s) and right after each takeover;
//! a Master whose Elastic IP, route or secondary address was moved away (by hand, by another
//! tool) takes it back. Only `SecondaryIp` is exclusive: in the other modes a Backup still
//! holding the address is the design above, not a leftover.

mod client;
mod credentials;
mod imds;
mod xml;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

pub use client::{EC2_API_VERSION, QueryClient};
pub use credentials::Credentials;
pub use imds::{Imds, InstanceIdentity};

use crate::{Error, IpManager, Reconcile, Vip};

/// How often [`AwsManager`] asks a reconciler to re-read the association by default.
pub const DEFAULT_RECONCILE_PERIOD: Duration = Duration::from_secs(10);

/// What moving the address means in the VPC.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsMode {
    /// Re-associate this Elastic IP (`eipalloc-...`) with the ENI's private address.
    ElasticIp {
        /// The Elastic IP's allocation id.
        allocation_id: String,
    },
    /// Move the VIP as a secondary private address of the ENI.
    SecondaryIp,
    /// Point the VIP's /32 route in this route table (`rtb-...`) at the ENI.
    RouteTable {
        /// The route table id.
        route_table_id: String,
    },
    /// Move the VIP as a secondary private address of the ENI, with this Elastic IP
    /// (`eipalloc-...`) associated with it: the public address follows the private one.
    ElasticIpOnSecondary {
        /// The Elastic IP's allocation id.
        allocation_id: String,
    },
}

/// Moves VIPs with the EC2 API. Every call is signed SigV4 and retried on throttling.
///
/// ```no_run
/// use ip_manager::{AwsManager, AwsMode, Credentials, IpManager, QueryClient, Vip};
///
/// # async fn demo() -> Result<(), ip_manager::Error> {
/// // Environment or ~/.aws/credentials; AWS_ENDPOINT_URL points it at an emulator.
/// let ec2 = QueryClient::ec2("eu-west-1", Credentials::from_environment()?)?;
/// let mode = AwsMode::ElasticIp { allocation_id: "eipalloc-0123456789abcdef0".into() };
/// let ips = AwsManager::new(ec2, mode, "eni-0123456789abcdef0", Some("10.0.1.11".into()));
/// let vip = Vip::parse("10.0.1.50/32", "eth0")?;
/// ips.add(&vip).await?;            // AssociateAddress, AllowReassociation: the takeover
/// assert!(ips.owns(&vip).await?);  // DescribeAddresses
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AwsManager {
    ec2: QueryClient,
    mode: AwsMode,
    eni: String,
    private_ip: Option<String>,
    reconcile_period: Duration,
}

impl AwsManager {
    /// A manager acting for network interface `eni` (`eni-...`). `private_ip` is the ENI's
    /// address an Elastic IP is associated with in [`AwsMode::ElasticIp`] (its primary address
    /// when `None`); [`AwsMode::ElasticIpOnSecondary`] associates it with the VIP instead.
    pub fn new(
        ec2: QueryClient,
        mode: AwsMode,
        eni: impl Into<String>,
        private_ip: Option<String>,
    ) -> AwsManager {
        AwsManager {
            ec2,
            mode,
            eni: eni.into(),
            private_ip,
            reconcile_period: DEFAULT_RECONCILE_PERIOD,
        }
    }

    /// How often a reconciler re-reads the association (`owns`: one Describe call) while
    /// this node is Master, and whether the address belongs here: default
    /// [`DEFAULT_RECONCILE_PERIOD`]. It is also re-read right after every takeover.
    #[must_use]
    pub fn reconcile_every(mut self, period: Duration) -> AwsManager {
        self.reconcile_period = period;
        self
    }

    /// `AssignPrivateIpAddresses` or `UnassignPrivateIpAddresses` of `vip` on the ENI (an
    /// assignment may take it from another ENI: `AllowReassignment`).
    async fn private_ip_call(&self, vip: &Vip, action: &str, assign: bool) -> Result<(), Error> {
        let ip = Self::ipv4(vip)?;
        let mut p = vec![
            ("NetworkInterfaceId", self.eni.as_str()),
            ("PrivateIpAddress.1", ip.as_str()),
        ];
        if assign {
            p.push(("AllowReassignment", "true"));
        }
        self.ec2.call(action, &p).await.map(drop)
    }

    /// `AssociateAddress` of the Elastic IP `allocation_id` with this ENI's `private_ip` (its
    /// primary address when `None`), taking it from wherever it is (`AllowReassociation`).
    async fn associate(&self, allocation_id: &str, private_ip: Option<&str>) -> Result<(), Error> {
        let p = associate_params(allocation_id, &self.eni, private_ip);
        self.ec2.call("AssociateAddress", &p).await.map(drop)
    }

    /// Whether the Elastic IP `allocation_id` is associated with this ENI (`DescribeAddresses`).
    async fn eip_here(&self, allocation_id: &str) -> Result<bool, Error> {
        let body = self
            .ec2
            .call("DescribeAddresses", &[("AllocationId.1", allocation_id)])
            .await?;
        Ok(xml::text(&body, "networkInterfaceId") == Some(self.eni.as_str()))
    }

    /// Whether this ENI holds `vip` as one of its private addresses.
    async fn holds(&self, vip: &Vip) -> Result<bool, Error> {
        crate::listed(self, vip).await
    }

    fn ipv4(vip: &Vip) -> Result<String, Error> {
        match vip.address {
            IpAddr::V4(a) => Ok(a.to_string()),
            IpAddr::V6(_) => Err(Error::InvalidVip {
                vip: vip.to_string(),
                reason: "the AWS backend moves IPv4 addresses only".into(),
            }),
        }
    }
}

#[async_trait]
impl IpManager for AwsManager {
    async fn add(&self, vip: &Vip) -> Result<(), Error> {
        match &self.mode {
            AwsMode::ElasticIp { allocation_id } => {
                self.associate(allocation_id, self.private_ip.as_deref())
                    .await?;
            }
            AwsMode::ElasticIpOnSecondary { allocation_id } => {
                // The secondary address first: the association names it, and it must be the
                // ENI's by then. The reassignment already brings the Elastic IP along (EC2
                // keeps the association of a moved address); the association is for the first
                // takeover, or an Elastic IP found elsewhere.
                self.private_ip_call(vip, "AssignPrivateIpAddresses", true)
                    .await?;
                self.associate(allocation_id, Some(Self::ipv4(vip)?.as_str()))
                    .await?;
            }
            AwsMode::SecondaryIp => {
                self.private_ip_call(vip, "AssignPrivateIpAddresses", true)
                    .await?;
            }
            AwsMode::RouteTable { route_table_id } => {
                let cidr = format!("{}/32", Self::ipv4(vip)?);
                let p = [
                    ("RouteTableId", route_table_id.as_str()),
                    ("DestinationCidrBlock", cidr.as_str()),
                    ("NetworkInterfaceId", self.eni.as_str()),
                ];
                match self.ec2.call("ReplaceRoute", &p).await {
                    // EC2 answers a replace of a missing route with InvalidParameterValue
                    // "There is no route defined ... Use CreateRoute instead."
                    Err(Error::Aws { code, message, .. })
                        if code == "InvalidRoute.NotFound"
                            || (code == "InvalidParameterValue"
                                && message.contains("CreateRoute")) =>
                    {
                        self.ec2.call("CreateRoute", &p).await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn remove(&self, vip: &Vip) -> Result<(), Error> {
        let unassign = match &self.mode {
            AwsMode::SecondaryIp => self.holds(vip).await?,
            // While the Elastic IP is here, unassigning would disassociate it: it stays until
            // the next Master takes both. A copy left behind once it has moved goes.
            AwsMode::ElasticIpOnSecondary { allocation_id } => {
                !self.eip_here(allocation_id).await? && self.holds(vip).await?
            }
            AwsMode::ElasticIp { .. } | AwsMode::RouteTable { .. } => false,
        };
        if unassign {
            self.private_ip_call(vip, "UnassignPrivateIpAddresses", false)
                .await?;
        }
        Ok(())
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, Error> {
        // What this ENI holds in the VPC, reported on `interface`.
        let body = self
            .ec2
            .call(
                "DescribeNetworkInterfaces",
                &[("NetworkInterfaceId.1", &self.eni)],
            )
            .await?;
        Ok(xml::all(&body, "privateIpAddress")
            .into_iter()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|a| Vip::new(a, 32, interface).ok())
            .collect())
    }

    /// Re-read every period (EC2 sends no notifications). Exclusive in `SecondaryIp` mode only:
    /// an Elastic IP or a route stays with its last holder until the next Master takes it, on
    /// purpose, so a Backup holding it is no leftover to remove.
    fn reconcile(&self) -> Reconcile {
        let polled = Reconcile::polled(self.reconcile_period);
        match self.mode {
            AwsMode::SecondaryIp => polled,
            _ => polled.shared(),
        }
    }

    async fn owns(&self, vip: &Vip) -> Result<bool, Error> {
        match &self.mode {
            AwsMode::ElasticIp { allocation_id } => self.eip_here(allocation_id).await,
            AwsMode::SecondaryIp => self.holds(vip).await,
            // Both halves: the public address reaches this ENI, and the ENI holds the VIP.
            // (Which of the ENI's addresses the association names is not compared: moto
            // records the primary one whatever PrivateIpAddress said.)
            AwsMode::ElasticIpOnSecondary { allocation_id } => {
                Ok(self.eip_here(allocation_id).await? && self.holds(vip).await?)
            }
            AwsMode::RouteTable { route_table_id } => {
                let body = self
                    .ec2
                    .call("DescribeRouteTables", &[("RouteTableId.1", route_table_id)])
                    .await?;
                let cidr = format!("{}/32", Self::ipv4(vip)?);
                Ok(body.split("<item>").any(|route| {
                    xml::text(route, "destinationCidrBlock") == Some(cidr.as_str())
                        && xml::text(route, "networkInterfaceId") == Some(self.eni.as_str())
                }))
            }
        }
    }
}

/// The parameters of `AssociateAddress`: the Elastic IP to `eni`'s `private_ip` (its primary
/// address when `None`), taken from any other holder.
fn associate_params<'a>(
    allocation_id: &'a str,
    eni: &'a str,
    private_ip: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut p = vec![
        ("AllocationId", allocation_id),
        ("NetworkInterfaceId", eni),
        ("AllowReassociation", "true"),
    ];
    if let Some(ip) = private_ip {
        p.push(("PrivateIpAddress", ip));
    }
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_association_names_the_private_address_when_given() {
        // moto ignores PrivateIpAddress (it records the ENI's primary address), so the
        // parameter is checked here rather than against the emulator.
        assert_eq!(
            super::associate_params("eipalloc-1", "eni-2", Some("10.0.1.50")),
            [
                ("AllocationId", "eipalloc-1"),
                ("NetworkInterfaceId", "eni-2"),
                ("AllowReassociation", "true"),
                ("PrivateIpAddress", "10.0.1.50"),
            ]
        );
        assert_eq!(
            super::associate_params("eipalloc-1", "eni-2", None).len(),
            3
        );
    }
}
