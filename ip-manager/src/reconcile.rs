//! What a backend can tell about its addresses changing behind the daemon's back, for the
//! desired-versus-actual reconciliation of the `failover` module (the reconciler
//! itself is `failover::VipApplier::reconcile`, feature `vrrp`).
//!
//! Each backend says, through [`IpManager::reconcile`](crate::IpManager::reconcile), how a
//! change is noticed and whether the address belongs on the Master only:
//!
//! | backend | noticed by | a node that is not Master holding it |
//! |---|---|---|
//! | [`NetlinkManager`](crate::NetlinkManager) | rtnetlink address and link notifications ([`Changes`]): an `ip addr del`, a flush by a DHCP client or NetworkManager, a deleted interface | removed (left by a crash) |
//! | `AwsManager` | the association re-read every period ([`Reconcile::poll`]) and right after becoming Master | removed in `SecondaryIp` mode; by design in the others (the address stays with its last holder until the next Master takes it) |
//! | [`ExecManager`](crate::ExecManager) | nothing: what a script did cannot be observed | (not checked) |
//! | [`MemoryManager`](crate::MemoryManager) | its own calls, as notifications | removed |
//!
//! A backend whose address is active on every node by design (an announced route whose
//! metric says who wins) says [`Reconcile::shared`]: it is never "removed from a Backup".

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;

/// How changes to a backend's addresses are noticed, and whether they belong on the Master
/// only. Made with [`Reconcile::unobservable`], [`Reconcile::notified`] or
/// [`Reconcile::polled`], then [`shared`](Self::shared) for a backend active everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconcile {
    /// Changes are pushed by [`IpManager::watch`](crate::IpManager::watch) (netlink).
    pub notified: bool,
    /// The actual state is re-read every period (a cloud API), and right after becoming
    /// Master.
    pub poll: Option<Duration>,
    /// The address belongs on the Master only: a node that is not Master and holds it (left
    /// by a crash) removes it. False for a backend whose address is active on every node by
    /// design, or stays with its last holder until the next Master takes it.
    pub exclusive: bool,
}

impl Default for Reconcile {
    /// [`Reconcile::unobservable`].
    fn default() -> Reconcile {
        Reconcile::unobservable()
    }
}

impl Reconcile {
    /// Nothing can be observed (scripts): nothing is reconciled after the start.
    pub const fn unobservable() -> Reconcile {
        Reconcile {
            notified: false,
            poll: None,
            exclusive: true,
        }
    }

    /// Changes are notified through [`IpManager::watch`](crate::IpManager::watch).
    pub const fn notified() -> Reconcile {
        Reconcile {
            notified: true,
            poll: None,
            exclusive: true,
        }
    }

    /// The actual state is re-read every `period`.
    pub const fn polled(period: Duration) -> Reconcile {
        Reconcile {
            notified: false,
            poll: Some(period),
            exclusive: true,
        }
    }

    /// Also re-read every `period` (a backend of two parts: an interface that notifies and
    /// a cloud API that does not).
    #[must_use]
    pub const fn and_polled(mut self, period: Duration) -> Reconcile {
        self.poll = Some(period);
        self
    }

    /// Also notified.
    #[must_use]
    pub const fn and_notified(mut self) -> Reconcile {
        self.notified = true;
        self
    }

    /// Active on every node by design (or left with its last holder on purpose): never
    /// removed from a node that is not Master.
    #[must_use]
    pub const fn shared(mut self) -> Reconcile {
        self.exclusive = false;
        self
    }

    /// Whether anything is observed after the start.
    pub const fn observes(&self) -> bool {
        self.notified || self.poll.is_some()
    }
}

/// Something that may have changed a backend's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// An address appeared on interface `index`.
    Added {
        /// The address.
        address: IpAddr,
        /// The interface index.
        index: u32,
    },
    /// An address left interface `index`.
    Removed {
        /// The address.
        address: IpAddr,
        /// The interface index.
        index: u32,
    },
    /// Interface `index` changed (up, down, renamed, deleted): its addresses may have too.
    Link {
        /// The interface index.
        index: u32,
    },
    /// Notifications were lost (the socket's buffer overflowed): anything may have changed.
    Lost,
}

impl Change {
    /// Whether this change may concern an address of `addresses`.
    pub fn may_concern(&self, addresses: &[IpAddr]) -> bool {
        match self {
            Change::Added { address, .. } | Change::Removed { address, .. } => {
                addresses.contains(address)
            }
            Change::Link { .. } | Change::Lost => true,
        }
    }
}

/// A stream of [`Change`]s from a backend ([`IpManager::watch`](crate::IpManager::watch)).
/// Dropping it stops what feeds it.
#[derive(Debug)]
#[must_use = "a watch reports nothing until read"]
pub struct Changes {
    receiver: mpsc::UnboundedReceiver<Change>,
    /// The tasks that feed it, stopped on drop.
    feeding: Vec<tokio::task::AbortHandle>,
}

impl Changes {
    /// A stream fed through the returned sender: for a backend's own `watch`.
    pub fn channel() -> (mpsc::UnboundedSender<Change>, Changes) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            sender,
            Changes {
                receiver,
                feeding: Vec::new(),
            },
        )
    }

    /// Stops `task` when the stream is dropped (the task that feeds it).
    pub fn fed_by(mut self, task: tokio::task::AbortHandle) -> Changes {
        self.feeding.push(task);
        self
    }

    /// The next change; `None` once nothing feeds the stream any more.
    pub async fn next(&mut self) -> Option<Change> {
        self.receiver.recv().await
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        for task in &self.feeding {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_change_or_lost_notifications_concern_every_address() {
        let vip: IpAddr = "10.99.0.200".parse().unwrap();
        let other: IpAddr = "10.99.0.11".parse().unwrap();
        let removed = |address| Change::Removed { address, index: 2 };
        assert!(removed(vip).may_concern(&[vip]));
        assert!(!removed(other).may_concern(&[vip]));
        assert!(Change::Link { index: 2 }.may_concern(&[vip]));
        assert!(Change::Lost.may_concern(&[vip]));
    }

    #[test]
    fn the_default_observes_nothing_and_is_exclusive() {
        let r = Reconcile::default();
        assert!(!r.observes() && r.exclusive);
        let route = Reconcile::notified().shared();
        assert!(route.observes() && !route.exclusive);
        let both = Reconcile::notified().and_polled(Duration::from_secs(10));
        assert_eq!(both.poll, Some(Duration::from_secs(10)));
        assert!(both.notified);
    }
}
