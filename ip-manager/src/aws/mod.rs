//! [`AwsManager`]: the virtual address moves in a VPC, where ARP does not move anything: the
//! EC2 API does (feature `aws`).
//!
//! | [`AwsMode`] | on `add` (becoming Master) | on `remove` (demotion) |
//! |---|---|---|
//! | `ElasticIp` | `AssociateAddress` to this ENI, `AllowReassociation` | nothing: the next Master re-associates |
//! | `SecondaryIp` | `AssignPrivateIpAddresses` to this ENI, `AllowReassignment` | `UnassignPrivateIpAddresses` from this ENI |
//! | `RouteTable` | `ReplaceRoute` (or `CreateRoute`) VIP/32 → this ENI | nothing: the next Master replaces it |
//!
//! For `SecondaryIp` the address must also be on the interface: pair this manager with
//! [`NetlinkManager`](crate::NetlinkManager).

mod client;
mod credentials;
mod imds;
mod xml;

use std::net::IpAddr;

use async_trait::async_trait;

pub use client::{EC2_API_VERSION, QueryClient};
pub use credentials::Credentials;
pub use imds::{Imds, InstanceIdentity};

use crate::{Error, IpManager, Vip};

/// What moving the address means in the VPC.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl AwsManager {
    /// A manager acting for network interface `eni` (`eni-...`). `private_ip` is the ENI's
    /// address an Elastic IP is associated with (its primary address when `None`).
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
        }
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
                let mut p = vec![
                    ("AllocationId", allocation_id.as_str()),
                    ("NetworkInterfaceId", self.eni.as_str()),
                    ("AllowReassociation", "true"),
                ];
                if let Some(ip) = &self.private_ip {
                    p.push(("PrivateIpAddress", ip.as_str()));
                }
                self.ec2.call("AssociateAddress", &p).await?;
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
        if self.mode == AwsMode::SecondaryIp && self.owns(vip).await? {
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

    async fn owns(&self, vip: &Vip) -> Result<bool, Error> {
        match &self.mode {
            AwsMode::ElasticIp { allocation_id } => {
                let body = self
                    .ec2
                    .call("DescribeAddresses", &[("AllocationId.1", allocation_id)])
                    .await?;
                Ok(xml::text(&body, "networkInterfaceId") == Some(self.eni.as_str()))
            }
            AwsMode::SecondaryIp => Ok(self
                .list(&vip.interface)
                .await?
                .iter()
                .any(|v| v.address == vip.address)),
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
