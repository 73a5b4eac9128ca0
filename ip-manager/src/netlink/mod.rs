//! [`NetlinkManager`]: virtual addresses through rtnetlink (what `ip addr add/del` does), and
//! the [`Announcer`] that tells the segment where they moved. Its [`IpManager::watch`] follows
//! the kernel's address and link notifications (`watch.rs`), so that a failover's reconciler
//! sees an address deleted behind its back the moment it goes.

mod announce;
mod link;
mod probe;
mod sockaddr;
mod virtual_mac;
mod watch;

use std::net::IpAddr;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, new_connection};

pub use announce::{AnnounceConfig, AnnounceStats, Announcer, gratuitous_arp, unsolicited_na};
pub use link::{LinkMonitor, LinkState};
pub use probe::{OwnerAnswer, OwnerProbe};
pub use virtual_mac::{VirtualMac, virtual_mac_name, virtual_router_mac};

use crate::{Changes, Error, IpManager, Reconcile, Vip};

const EPERM: i32 = 1;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// Adds and removes addresses with rtnetlink in the network namespace of the calling thread.
/// IPv6 addresses are added with `nodad`, so they are usable at once (no 1-2 s of tentative
/// state while the Master is already supposed to answer).
///
/// ```no_run
/// use ip_manager::{IpManager, NetlinkManager, Vip};
///
/// # async fn demo() -> Result<(), ip_manager::Error> {
/// let ips = NetlinkManager::new()?;
/// let vip = Vip::parse("10.99.0.200/24", "eth0")?;
/// ips.add(&vip).await?;      // idempotent: adding twice is fine
/// assert!(ips.owns(&vip).await?);
/// ips.remove(&vip).await?;   // and so is removing what is gone
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct NetlinkManager {
    handle: Handle,
}

impl NetlinkManager {
    /// Opens a netlink socket and spawns its connection task on the current tokio runtime
    /// (outside one, this is an error, not a panic).
    pub fn new() -> Result<NetlinkManager, Error> {
        let connected = connect(
            "starting the netlink connection",
            "create the NetlinkManager",
            None,
        )?;
        Ok(NetlinkManager {
            handle: connected.handle,
        })
    }

    /// The index of interface `name`.
    pub async fn interface_index(&self, name: &str) -> Result<u32, Error> {
        Ok(self.link(name).await?.header.index)
    }

    /// Whether interface `name` can carry traffic now (see [`LinkState::up`]). Follow the
    /// changes with a [`LinkMonitor`].
    pub async fn link_state(&self, name: &str) -> Result<LinkState, Error> {
        let link = self.link(name).await?;
        LinkState::of(&link, false).ok_or_else(|| Error::Netlink {
            operation: format!("reading the state of {name}"),
            message: "the kernel's answer has no interface name".into(),
        })
    }

    /// The first IPv4 address of `interface`: what VRRP advertises from (its primary
    /// address, RFC 5798 §5.1.1.1) unless told otherwise.
    pub async fn first_ipv4(&self, interface: &str) -> Result<std::net::Ipv4Addr, Error> {
        self.list(interface)
            .await?
            .iter()
            .find_map(|v| match v.address {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| Error::NoSourceAddress {
                interface: interface.to_owned(),
                family: "IPv4",
            })
    }

    /// The IPv6 link-local address of `interface`: what VRRP over IPv6 advertises from
    /// (RFC 5798 §5.1.2.1).
    pub async fn link_local_ipv6(&self, interface: &str) -> Result<std::net::Ipv6Addr, Error> {
        self.list(interface)
            .await?
            .iter()
            .find_map(|v| match v.address {
                IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Some(a),
                _ => None,
            })
            .ok_or_else(|| Error::NoSourceAddress {
                interface: interface.to_owned(),
                family: "IPv6 link-local",
            })
    }

    /// The MAC the kernel's neighbour table has for `ip` on `interface` (what `ip neigh`
    /// shows), if it has a usable one (not failed or incomplete).
    pub async fn neighbour_mac(
        &self,
        interface: &str,
        ip: IpAddr,
    ) -> Result<Option<[u8; 6]>, Error> {
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourState,
        };
        let index = self.interface_index(interface).await?;
        let mut entries = self.handle.neighbours().get().execute();
        while let Some(n) = entries
            .try_next()
            .await
            .map_err(|e| netlink_error(format!("reading the neighbour table of {interface}"), e))?
        {
            if n.header.ifindex != index
                || matches!(
                    n.header.state,
                    NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
                )
            {
                continue;
            }
            let here = n.attributes.iter().any(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    IpAddr::V4(*v4) == ip
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    IpAddr::V6(*v6) == ip
                }
                _ => false,
            });
            if !here {
                continue;
            }
            return Ok(n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLocalAddress(mac) => {
                    <[u8; 6]>::try_from(mac.as_slice()).ok()
                }
                _ => None,
            }));
        }
        Ok(None)
    }

    /// The hardware (MAC) address of interface `name`.
    pub async fn interface_mac(&self, name: &str) -> Result<[u8; 6], Error> {
        let link = self.link(name).await?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| Error::Netlink {
                operation: format!("reading the MAC address of {name}"),
                message: "the interface has no 6-byte hardware address".into(),
            })
    }

    /// The link called `name`, or with index `name` when it is all digits (`"3"`), so that a
    /// [`Vip`] can name its interface either way.
    async fn link(&self, name: &str) -> Result<rtnetlink::packet_route::link::LinkMessage, Error> {
        let request = self.handle.link().get();
        let request = match name.parse::<u32>() {
            Ok(index) => request.match_index(index),
            Err(_) => request.match_name(name.to_owned()),
        };
        let mut links = request.execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(Error::UnknownInterface {
                name: name.to_owned(),
            }),
            Err(e) if errno(&e) == Some(ENODEV) => Err(Error::UnknownInterface {
                name: name.to_owned(),
            }),
            Err(e) => Err(netlink_error(format!("looking up interface {name}"), e)),
        }
    }

    /// The kernel's address messages for `address` on interface `index`.
    async fn find(&self, index: u32, address: IpAddr) -> Result<Vec<AddressMessage>, Error> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(address)
            .execute()
            .try_collect()
            .await
            .map_err(|e| netlink_error(format!("listing addresses of interface {index}"), e))
    }
}

#[async_trait]
impl IpManager for NetlinkManager {
    async fn link_up(&self, vip: &Vip) -> Option<bool> {
        self.link_state(&vip.interface).await.ok().map(|l| l.up)
    }

    async fn add(&self, vip: &Vip) -> Result<(), Error> {
        let index = self.interface_index(&vip.interface).await?;
        let mut request = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len);
        let msg = request.message_mut();
        if vip.address.is_ipv6() {
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        if let Some(label) = &vip.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(netlink_error(format!("adding {vip}"), e)),
        }
    }

    async fn remove(&self, vip: &Vip) -> Result<(), Error> {
        let index = self.interface_index(&vip.interface).await?;
        for msg in self.find(index, vip.address).await? {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EADDRNOTAVAIL) => {}
                Err(e) => return Err(netlink_error(format!("removing {vip}"), e)),
            }
        }
        Ok(())
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, Error> {
        let index = self.interface_index(interface).await?;
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| netlink_error(format!("listing addresses of {interface}"), e))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let address = message_address(&m)?;
                let label = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Label(l) if l != interface => Some(l.clone()),
                    _ => None,
                });
                Some(Vip {
                    address,
                    prefix_len: m.header.prefix_len,
                    interface: interface.to_owned(),
                    label,
                })
            })
            .collect())
    }

    /// Notified: rtnetlink address and link notifications ([`IpManager::watch`]).
    fn reconcile(&self) -> Reconcile {
        Reconcile::notified()
    }

    /// A socket subscribed to the address notifications of both families and to link
    /// notifications, in the network namespace of the calling thread.
    fn watch(&self) -> Result<Option<Changes>, Error> {
        watch::watch().map(Some)
    }
}

/// The link named `name`, if there is one.
async fn link_named(
    handle: &Handle,
    name: &str,
) -> Result<Option<rtnetlink::packet_route::link::LinkMessage>, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    links.try_next().await
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn netlink_error(operation: String, e: rtnetlink::Error) -> Error {
    match errno(&e) {
        Some(EPERM) => Error::PermissionDenied {
            operation,
            capability: "CAP_NET_ADMIN",
        },
        Some(code) => Error::Netlink {
            operation,
            message: std::io::Error::from_raw_os_error(code).to_string(),
        },
        None => Error::Netlink {
            operation,
            message: e.to_string(),
        },
    }
}

/// The address an address message is about: `IFA_LOCAL` for IPv4 (the address itself;
/// `IFA_ADDRESS` is the peer on point-to-point links), `IFA_ADDRESS` for IPv6 (it has no
/// `IFA_LOCAL`).
fn message_address(m: &AddressMessage) -> Option<std::net::IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// Notifications read from a netlink socket.
type Messages =
    futures_channel::mpsc::UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A netlink connection whose task runs on the current tokio runtime.
struct Connected {
    runtime: tokio::runtime::Handle,
    /// The connection's task.
    task: tokio::task::JoinHandle<()>,
    handle: Handle,
    messages: Messages,
}

/// Opens a netlink socket, subscribed to the notifications `groups` (`(bind mask, what they
/// are)`) if any, and spawns its connection task on the current tokio runtime. Outside one,
/// an error for `operation` that tells to `fix` (e.g. "create the LinkMonitor") from within
/// one.
fn connect(operation: &str, fix: &str, groups: Option<(u32, &str)>) -> Result<Connected, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Netlink {
        operation: operation.into(),
        message: format!("no tokio runtime: {fix} from within one"),
    })?;
    let (mut connection, handle, messages) =
        new_connection().map_err(|e| Error::io("opening a netlink socket", e))?;
    if let Some((mask, what)) = groups {
        connection
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, mask))
            .map_err(|e| Error::io(format!("subscribing to {what} notifications"), e))?;
    }
    let task = runtime.spawn(connection);
    Ok(Connected {
        runtime,
        task,
        handle,
        messages,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_outside_a_runtime_is_an_error_not_a_panic() {
        let err = super::NetlinkManager::new().unwrap_err();
        assert!(err.to_string().contains("no tokio runtime"), "{err}");
    }
}
