//! [`VirtualMac`]: the VRRP virtual router MAC address (RFC 5798 §7.3) on a macvlan device of
//! its own, keepalived's `use_vmac` and what FRR requires.
//!
//! With it the virtual addresses live on the macvlan, and adverts and announcements leave from
//! it, so the address and the MAC move together: a client's ARP entry for the VIP never
//! changes (`00:00:5e:00:01:VRID`), and a switch learns the new port from the new Master's
//! first advert. The device is made on every host, Master or Backup; two settings keep a
//! Backup's copy silent: `arp_ignore = 1` on it and on its parent (answer ARP only for an
//! address of the interface asked on: the parent never answers for the VIP with its own MAC,
//! the macvlan never for the host's own addresses with the virtual one), `arp_announce = 2` on
//! both (the host's own ARP requests never name the VIP as their sender: traffic from the VIP
//! leaves through the parent, whose route comes first), and no IPv6 address
//! of its own (an IPv4 router's macvlan gets none at all; an IPv6 router's gets the parent's
//! link-local address, without duplicate address detection, to send its adverts from).

use std::net::IpAddr;

use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::{LinkMacVlan, LinkUnspec};

use super::{ENODEV, NetlinkManager, errno, netlink_error};
use crate::{Error, IpManager, Vip};

/// The virtual router MAC of `vrid`: `00:00:5e:00:01:VRID` (IPv4), `00:00:5e:00:02:VRID` (IPv6).
pub fn virtual_router_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// The name of the macvlan device of `vrrp`: `vrrp.VRID` (IPv4) or `vrrp6.VRID` (IPv6), as
/// keepalived names it; [`NetlinkManager::add_virtual_mac`] makes it under this name.
pub fn virtual_mac_name(vrid: u8, ipv6: bool) -> String {
    format!("vrrp{}.{vrid}", if ipv6 { "6" } else { "" })
}

/// A macvlan device carrying a virtual router MAC, made by
/// [`NetlinkManager::add_virtual_mac`]. Removed by [`remove`](Self::remove) (not on drop:
/// that needs the netlink connection, an `async` call).
///
/// ```no_run
/// use ip_manager::{IpManager, NetlinkManager, Vip};
///
/// # async fn demo() -> Result<(), ip_manager::Error> {
/// let netlink = NetlinkManager::new()?;
/// let vmac = netlink.add_virtual_mac("eth0", 51, false).await?; // vrrp.51, 00:00:5e:00:01:33
/// // The VIP goes on the macvlan, adverts and gratuitous ARPs leave from it.
/// netlink.add(&Vip::parse("10.99.0.200/24", vmac.name())?).await?;
/// vmac.remove(&netlink).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the device stays until `remove`"]
pub struct VirtualMac {
    name: String,
    parent: String,
    mac: [u8; 6],
}

impl VirtualMac {
    /// The device's name: `vrrp.VRID` (IPv4) or `vrrp6.VRID` (IPv6), as keepalived names it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface it sits on.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// The virtual router MAC it carries.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Deletes the device (and with it any address on it). Gone already is success.
    pub async fn remove(self, netlink: &NetlinkManager) -> Result<(), Error> {
        netlink.delete_link(&self.name).await
    }
}

impl NetlinkManager {
    /// Makes the macvlan device of virtual router `vrid` on `parent` (one that exists, left
    /// by an earlier run or used by a router being replaced, is kept and set again): mode
    /// private, the virtual router MAC, `arp_ignore = 1` and `arp_announce = 2` on it and on
    /// `parent`, no IPv6
    /// address of its own (`ipv6`: the parent's link-local one, for adverts), then up.
    /// Needs CAP_NET_ADMIN, and a writable `/proc/sys` of this network namespace.
    pub async fn add_virtual_mac(
        &self,
        parent: &str,
        vrid: u8,
        ipv6: bool,
    ) -> Result<VirtualMac, Error> {
        let name = virtual_mac_name(vrid, ipv6);
        let mac = virtual_router_mac(vrid, ipv6);
        let parent_index = self.interface_index(parent).await?;
        if self.interface_index(&name).await.is_err() {
            let make = format!("making {name} on {parent}");
            self.handle
                .link()
                .add(
                    LinkMacVlan::new(&name, parent_index, MacVlanMode::Private)
                        .address(mac.to_vec())
                        .down()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| netlink_error(make, e))?;
        }
        for dev in [parent, name.as_str()] {
            sysctl(&format!("ipv4/conf/{dev}/arp_ignore"), "1")?;
            // Replies from the VIP leave through the parent (its route comes first): its own ARP
            // requests must not name the VIP as their sender, or clients learn the VIP at the
            // parent's MAC.
            sysctl(&format!("ipv4/conf/{dev}/arp_announce"), "2")?;
        }
        // Its own link-local address would be made from the virtual MAC, the same on every
        // host: none, and for IPv6 adverts the parent's own.
        sysctl(&format!("ipv6/conf/{name}/addr_gen_mode"), "1")?;
        if !ipv6 {
            sysctl(&format!("ipv6/conf/{name}/disable_ipv6"), "1")?;
        }
        let index = self.interface_index(&name).await?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(mac.to_vec())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| netlink_error(format!("bringing {name} up"), e))?;
        if ipv6 {
            let link_local = self.link_local_ipv6(parent).await?;
            self.add(&Vip::new(IpAddr::V6(link_local), 64, name.clone())?)
                .await?;
        }
        Ok(VirtualMac {
            name,
            parent: parent.to_owned(),
            mac,
        })
    }

    /// Deletes link `name`; one that does not exist is success.
    async fn delete_link(&self, name: &str) -> Result<(), Error> {
        let index = match super::link_named(&self.handle, name).await {
            Ok(Some(link)) => link.header.index,
            Ok(None) => return Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => return Ok(()),
            Err(e) => return Err(netlink_error(format!("looking up {name}"), e)),
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            Err(e) => Err(netlink_error(format!("deleting {name}"), e)),
        }
    }
}

/// Writes `value` to `/proc/sys/net/{key}`, the network namespace's own.
fn sysctl(key: &str, value: &str) -> Result<(), Error> {
    let path = format!("/proc/sys/net/{key}");
    std::fs::write(&path, value).map_err(|e| Error::io(format!("setting {path} to {value}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_router_mac_is_rfc_5798_s() {
        assert_eq!(virtual_router_mac(51, false), [0, 0, 0x5e, 0, 1, 0x33]);
        assert_eq!(virtual_router_mac(255, true), [0, 0, 0x5e, 0, 2, 0xff]);
        assert_eq!(
            (virtual_mac_name(51, false), virtual_mac_name(51, true)),
            ("vrrp.51".to_owned(), "vrrp6.51".to_owned())
        );
    }
}
