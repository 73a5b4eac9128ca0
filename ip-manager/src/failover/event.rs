//! [`FailoverEvent`]: what a [`Failover`](super::Failover) did, for the embedding service's
//! logs.

use std::fmt;

use vrrp_core::driver::DriverExit;
use vrrp_core::{Event, Reason, State};

use crate::{Error, Vip};

/// What happened to the virtual router and its addresses.
#[derive(Debug)]
#[non_exhaustive]
pub enum FailoverEvent {
    /// The router changed state.
    StateChanged {
        /// The state it left.
        from: State,
        /// The state it entered.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// An address was added (on becoming Master).
    Added(Vip),
    /// An address was removed (on leaving Master, or when the driver ended).
    Removed(Vip),
    /// Adding, removing or announcing an address failed.
    Failed {
        /// The address.
        vip: Vip,
        /// What failed.
        error: Error,
    },
    /// The driver ended: every address was released (removed if held), and this says why.
    /// Nothing more follows.
    Released(DriverExit),
    /// Another event of the router (a priority change, a dropped advert, ...).
    Router(Event),
    /// An address went behind the Master's back (`ip addr del`, an interface flushed, an
    /// Elastic IP moved away) and was put back and announced again (see
    /// [`VipApplier::reconcile`](super::VipApplier::reconcile)).
    Restored(Vip),
    /// An address was found on this node while it is not Master (left by a crash, or added
    /// by hand) and removed.
    StaleRemoved(Vip),
}

impl fmt::Display for FailoverEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailoverEvent::StateChanged { from, to, reason } => {
                write!(f, "{from} -> {to}: {reason}")
            }
            FailoverEvent::Added(vip) => write!(f, "added {vip}"),
            FailoverEvent::Removed(vip) => write!(f, "removed {vip}"),
            FailoverEvent::Failed { vip, error } => write!(f, "{vip}: {error}"),
            FailoverEvent::Released(exit) => {
                write!(
                    f,
                    "the VRRP driver ended ({exit}): virtual addresses released"
                )
            }
            FailoverEvent::Router(e) => write!(f, "{e:?}"),
            FailoverEvent::Restored(vip) => {
                write!(f, "restored {vip}: it was removed behind the Master's back")
            }
            FailoverEvent::StaleRemoved(vip) => write!(
                f,
                "removed {vip}: this node held it while not Master (left by a crash?)"
            ),
        }
    }
}
