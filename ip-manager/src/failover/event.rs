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
    /// Split brain seen on the wire ([`SecondOwnerWatch`](super::SecondOwnerWatch)): while
    /// this router is Master, another host answered for `vip`. Told once per episode, at its
    /// first answer; [`SecondOwnerGone`](Self::SecondOwnerGone) follows. With a virtual MAC
    /// both sides share one MAC, so `theirs` may equal the virtual router's.
    SecondOwner {
        /// The address both hold.
        vip: Vip,
        /// The other host's MAC, as its answer gave it.
        theirs: [u8; 6],
        /// This host's MAC on the interface probed.
        ours: [u8; 6],
    },
    /// The end of a [`SecondOwner`](Self::SecondOwner) episode.
    SecondOwnerGone {
        /// The address.
        vip: Vip,
        /// The other host's MAC.
        theirs: [u8; 6],
        /// From its first answer to its last (the other host stopped answering), or to this
        /// router leaving Master.
        duration: std::time::Duration,
        /// How many rounds of probes it answered.
        answers: u64,
        /// Whether it ended because this router left Master (rather than the other host
        /// falling silent).
        left_master: bool,
    },
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

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
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
            FailoverEvent::SecondOwner { vip, theirs, ours } => write!(
                f,
                "split brain: {vip} is also held by {}{} (this Master is {})",
                mac_text(*theirs),
                if theirs[..5] == [0x00, 0x00, 0x5e, 0x00, 0x01]
                    || theirs[..5] == [0x00, 0x00, 0x5e, 0x00, 0x02]
                {
                    ", the virtual router MAC: the other Master shares it"
                } else {
                    ""
                },
                mac_text(*ours),
            ),
            FailoverEvent::SecondOwnerGone {
                vip,
                theirs,
                duration,
                answers,
                left_master,
            } => write!(
                f,
                "split brain over: {vip} held by {} too for {duration:.3?} ({answers} answers), \
                 ended by {}",
                mac_text(*theirs),
                if *left_master {
                    "this router leaving Master"
                } else {
                    "the other host falling silent"
                }
            ),
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
