//! What a [`Router`](super::Router) tells its driver: [`State`]s, [`Event`]s with their
//! [`Reason`], and [`Transmit`]s.

use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;

use super::split_brain::SplitBrainEnd;
use crate::packet::{DropReason, Priority};

/// The states of RFC 5798 §6.4, plus keepalived's Fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not started, or shut down. Sends nothing, holds no addresses.
    Initialize,
    /// Watching the Master; takes over when it falls silent.
    Backup,
    /// Forwards for the virtual addresses and advertises them.
    Master,
    /// keepalived's FAULT: a weight-0 tracked object is down, or the link is. Sends nothing,
    /// holds no addresses, and returns to Backup when the fault clears.
    Fault,
}

impl State {
    /// All states, in declaration order (for per-state statistics).
    pub const ALL: [State; 4] = [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
    ];

    pub(crate) const fn index(self) -> usize {
        match self {
            State::Initialize => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why a state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Startup of the address owner (priority 255): Master at once (§6.4.1).
    AddressOwner,
    /// Startup of any other router: Backup (§6.4.1).
    Startup,
    /// Master_Down_Timer fired: no advert from a Master for Master_Down_Interval, or
    /// Skew_Time after its priority-0 advert (§6.4.2).
    MasterDown,
    /// An advert with a higher priority (or an equal one from a higher address) arrived
    /// while Master (§6.4.3).
    Preempted {
        /// The new Master's address.
        by: IpAddr,
        /// Its priority.
        priority: Priority,
    },
    /// The Master advertised a priority lower than this Backup's, which preempts at once
    /// ([`Config::preempt_on_lower_advert`](super::Config::preempt_on_lower_advert)).
    LowerPriorityMaster {
        /// The Master's address.
        master: IpAddr,
        /// The priority it advertised.
        priority: Priority,
    },
    /// This Backup's priority rose above the one the Master advertised last, and it
    /// preempts at once
    /// ([`Config::preempt_on_lower_advert`](super::Config::preempt_on_lower_advert)).
    OutranksMaster {
        /// The priority the Master advertised last.
        priority: Priority,
    },
    /// [`Router::shutdown`](super::Router::shutdown).
    Shutdown,
    /// [`Router::resign`](super::Router::resign): the Master stepped down on purpose (priority
    /// 0 sent) and waits as Backup for the preempting router to take over.
    Resigned,
    /// A weight-0 tracked object went down, or the link did.
    Fault {
        /// The tracker's name, or `"link"`.
        cause: String,
    },
    /// Every fault cleared.
    FaultCleared,
    /// Another member of the sync group changed state.
    SyncGroup {
        /// The member whose change was followed.
        member: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::AddressOwner => f.write_str("address owner (priority 255) starts as master"),
            Reason::Startup => f.write_str("startup"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::Preempted { by, priority } => {
                write!(
                    f,
                    "advert from {by} with priority {priority} takes precedence"
                )
            }
            Reason::LowerPriorityMaster { master, priority } => write!(
                f,
                "master {master} advertises priority {priority}, lower than ours: preempting"
            ),
            Reason::OutranksMaster { priority } => write!(
                f,
                "our priority rose above the master's {priority}: preempting"
            ),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Resigned => f.write_str("resigned (priority 0 sent) for a preempting router"),
            Reason::Fault { cause } => write!(f, "fault: {cause} is down"),
            Reason::FaultCleared => f.write_str("all faults cleared"),
            Reason::SyncGroup { member } => write!(f, "sync group member {member} changed state"),
        }
    }
}

/// Something the driver must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The state changed. Entering [`State::Master`]: add the virtual addresses and announce
    /// them (gratuitous ARP / unsolicited NA). Leaving it: remove them.
    StateChanged {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// The effective priority changed (a tracked object moved).
    PriorityChanged {
        /// Before.
        from: Priority,
        /// After.
        to: Priority,
    },
    /// This Backup outranks the Master and would preempt it, but waits
    /// [`Config::preempt_delay`](super::Config::preempt_delay) first (told once per wait, at
    /// its start). It is the moment to ask the Master's owner to finish its connections and
    /// [`resign`](super::Router::resign); if it does not, this router preempts when the delay
    /// is over.
    PreemptPending {
        /// The Master's address (its primary address: IPv6 link-local for IPv6).
        master: IpAddr,
        /// The priority it advertises.
        priority: Priority,
        /// How long this router waits before preempting anyway.
        delay: std::time::Duration,
    },
    /// Split brain: another router advertises as Master for this VRID while this router is
    /// Master, with a priority that loses to ours, so it should have stepped down (it does not
    /// hear us: adverts lost one way, a partition healing, a misconfigured peer). Told at the
    /// episode's first advert (adverts crossing this router's own takeover excepted) and
    /// counted in [`Stats::split_brains`](super::Stats::split_brains); its end follows
    /// ([`Event::SplitBrainEnded`]). A higher priority heard while Master is a preemption,
    /// not a split brain: the router steps down.
    SplitBrain {
        /// The other Master's address.
        peer: IpAddr,
        /// The priority it advertises.
        priority: Priority,
    },
    /// The end of the episode [`Event::SplitBrain`] told for `peer`.
    SplitBrainEnded {
        /// The other Master's address.
        peer: IpAddr,
        /// The priority it advertised last.
        priority: Priority,
        /// How many of its adverts this router heard while Master.
        adverts: u64,
        /// How long the two Masters lasted as this router knows it: from the first advert to
        /// the last one heard when the peer fell silent (the end itself is noticed
        /// [`SPLIT_BRAIN_QUIET_INTERVALS`](super::SPLIT_BRAIN_QUIET_INTERVALS) intervals later), to the
        /// moment of the end otherwise.
        duration: std::time::Duration,
        /// How it ended.
        end: SplitBrainEnd,
    },
    /// A received packet was dropped (it is also counted in
    /// [`Stats::dropped`](super::Stats::dropped)). Rate-limited as RFC 9568 §8.3 asks of
    /// logging: the first drop of each reason, then at most one per reason every
    /// [`DROP_EVENT_INTERVAL`](super::DROP_EVENT_INTERVAL), carrying how many were dropped
    /// silently in between. A router's own adverts looped back are not reported.
    PacketDropped {
        /// Why, as counted.
        reason: DropReason,
        /// The sender.
        source: IpAddr,
        /// What was wrong, with the fix where there is one (e.g. the checksum camp to set).
        detail: String,
        /// Drops of this reason not reported since the previous event.
        suppressed: u64,
    },
}

/// An encoded advertisement to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The IP source (the configured primary address).
    pub source: IpAddr,
    /// The multicast group, or one unicast peer.
    pub destination: IpAddr,
    /// The VRRP message; send it with TTL / hop limit 255 and IP protocol 112.
    pub payload: Bytes,
}
