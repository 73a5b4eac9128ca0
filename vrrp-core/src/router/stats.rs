//! [`Stats`]: what a router counted.

use std::collections::BTreeMap;
use std::time::Duration;

use super::event::State;
use crate::packet::DropReason;

/// Counters of one [`Router`](super::Router), for a status page or metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to `handle_packet`.
    pub received: u64,
    /// Packets that passed every check and were processed by the state machine.
    pub accepted: u64,
    /// Packets dropped, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Advertisements queued for sending (one per destination).
    pub sent: u64,
    /// State transitions.
    pub transitions: u64,
    /// Times this router became Master.
    pub became_master: u64,
    /// Split-brain episodes heard while Master ([`Event::SplitBrain`](super::Event::SplitBrain)).
    pub split_brains: u64,
    /// Of those, the ones going on now.
    pub split_brains_open: u64,
    pub(crate) time_in: [Duration; 4],
}

impl Stats {
    /// Time spent in `state`, up to the latest `now` the router was given.
    pub fn time_in(&self, state: State) -> Duration {
        self.time_in[state.index()]
    }

    /// All drops, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }
}
