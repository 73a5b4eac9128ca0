//! [`LinkMonitor`]: interface link state from rtnetlink's link notifications (what
//! `ip monitor link` prints), so a VRRP instance enters Fault the moment its interface goes
//! down instead of when adverts stop arriving.

use futures_util::StreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::netlink_error;
use crate::Error;

/// `RTNLGRP_LINK` as a bind mask: `1 << (group - 1)`.
const RTMGRP_LINK: u32 = 1;

/// One interface's state, as of a notification or a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// Whether it can carry traffic: administratively up (`IFF_UP`) and running (`IFF_RUNNING`:
    /// carrier present, operationally up), keepalived's test. False once it is deleted.
    pub up: bool,
}

impl LinkState {
    pub(super) fn of(message: &LinkMessage, deleted: bool) -> Option<LinkState> {
        let name = message.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })?;
        let flags = message.header.flags;
        Some(LinkState {
            index: message.header.index,
            name,
            up: !deleted && flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
        })
    }
}

/// Link notifications of the network namespace of the calling thread.
///
/// Subscribe first, then read the current state with [`state`](Self::state): a change that
/// happens in between is then seen as a notification rather than lost.
///
/// ```no_run
/// use ip_manager::LinkMonitor;
///
/// # async fn demo() -> Result<(), ip_manager::Error> {
/// let mut links = LinkMonitor::new()?;
/// println!("eth0 up: {}", links.state("eth0").await?.up);
/// while let Some(link) = links.next().await {
///     println!("{} is now {}", link.name, if link.up { "up" } else { "down" });
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a link monitor reports nothing until read"]
pub struct LinkMonitor {
    handle: Handle,
    messages: super::Messages,
}

impl LinkMonitor {
    /// Opens a netlink socket subscribed to link notifications and spawns its connection task
    /// on the current tokio runtime (outside one, this is an error, not a panic).
    pub fn new() -> Result<LinkMonitor, Error> {
        let connected = super::connect(
            "starting the netlink link monitor",
            "create the LinkMonitor",
            Some((RTMGRP_LINK, "link")),
        )?;
        Ok(LinkMonitor {
            handle: connected.handle,
            messages: connected.messages,
        })
    }

    /// The current state of interface `name`.
    pub async fn state(&self, name: &str) -> Result<LinkState, Error> {
        match super::link_named(&self.handle, name).await {
            Ok(Some(link)) => LinkState::of(&link, false).ok_or_else(|| Error::Netlink {
                operation: format!("reading the state of {name}"),
                message: "the kernel's answer has no interface name".into(),
            }),
            Ok(None) => Err(Error::UnknownInterface {
                name: name.to_owned(),
            }),
            Err(e) if super::errno(&e) == Some(super::ENODEV) => Err(Error::UnknownInterface {
                name: name.to_owned(),
            }),
            Err(e) => Err(netlink_error(format!("reading the state of {name}"), e)),
        }
    }

    /// The next link notification (every change of flags, addresses or statistics the
    /// kernel reports, so the same state may come twice: compare with the last one). `None`
    /// when the netlink connection ended.
    pub async fn next(&mut self) -> Option<LinkState> {
        while let Some((message, _)) = self.messages.next().await {
            let state = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    LinkState::of(&link, false)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    LinkState::of(&link, true)
                }
                _ => None,
            };
            if state.is_some() {
                return state;
            }
        }
        None
    }
}
