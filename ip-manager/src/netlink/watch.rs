//! [`NetlinkManager`](super::NetlinkManager)'s [`Changes`]: rtnetlink address and link
//! notifications (what `ip monitor address link` prints), so that an address deleted behind
//! the daemon's back (`ip addr del`, a DHCP client or NetworkManager flushing the interface)
//! is seen the moment the kernel removes it.

use futures_util::StreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::AddressMessage;

use crate::Error;
use crate::reconcile::{Change, Changes};

/// `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR` as a bind mask
/// (`1 << (group - 1)`: 1, 5 and 9).
const GROUPS: u32 = 1 | (1 << 4) | (1 << 8);

/// Opens a netlink socket subscribed to address and link notifications, and spawns its
/// connection and a task that turns its messages into [`Change`]s, on the current tokio
/// runtime (outside one, an error).
pub(super) fn watch() -> Result<Changes, Error> {
    let super::Connected {
        runtime,
        task: connection,
        mut messages,
        ..
    } = super::connect(
        "starting the netlink address watch",
        "start the watch",
        Some((GROUPS, "address and link")),
    )?;
    let (sender, changes) = Changes::channel();
    let forward = runtime.spawn(async move {
        while let Some((message, _)) = messages.next().await {
            let change = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                    address(&a).map(|(address, index)| Change::Added { address, index })
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => {
                    address(&a).map(|(address, index)| Change::Removed { address, index })
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l),
                ) => Some(Change::Link {
                    index: l.header.index,
                }),
                NetlinkPayload::Overrun(_) => Some(Change::Lost),
                _ => None,
            };
            if let Some(change) = change
                && sender.send(change).is_err()
            {
                return;
            }
        }
    });
    Ok(changes
        .fed_by(connection.abort_handle())
        .fed_by(forward.abort_handle()))
}

/// The address of an address message and its interface: `IFA_LOCAL` for IPv4 (the address
/// itself; `IFA_ADDRESS` is the peer on point-to-point links), `IFA_ADDRESS` for IPv6.
fn address(m: &AddressMessage) -> Option<(std::net::IpAddr, u32)> {
    Some((super::message_address(m)?, m.header.index))
}
