//! Split-brain episodes a Master hears: another router advertising as Master for the same VRID
//! with a priority that loses to ours, again and again (it does not hear us: adverts lost one
//! way, a partition healing, a peer configured with another priority or interval).
//!
//! A normal preemption is not one: a Master that hears a higher priority steps down at once
//! (RFC 5798 §6.4.3) and nothing is reported. A lower-priority Master that hears us steps down
//! at our next advert, so it is heard once or twice; one that goes on is the split brain.
//!
//! Each episode is told twice: [`Event::SplitBrain`](super::Event::SplitBrain) at its first
//! advert, [`Event::SplitBrainEnded`](super::Event::SplitBrainEnded) when the peer falls silent
//! for [`SPLIT_BRAIN_QUIET_INTERVALS`] advert intervals, sends priority 0, or this router leaves Master.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::event::Event;
use crate::packet::Priority;

/// An episode ends when its peer has sent no advert for this many advert intervals (its own,
/// or ours if longer): the peer stepped down, or the one-way loss healed.
pub const SPLIT_BRAIN_QUIET_INTERVALS: u32 = 3;

/// Adverts of a lower-priority Master arriving this soon after this router became Master are
/// not reported: the peer sent them before our first advert reached it (the old Master's last
/// adverts at a preemption). The next one, an interval later, is.
const TAKEOVER_GRACE_INTERVALS: u32 = 1;

/// How a split-brain episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SplitBrainEnd {
    /// The peer sent no advert for [`SPLIT_BRAIN_QUIET_INTERVALS`] intervals.
    PeerSilent,
    /// The peer sent priority 0 (it stopped or resigned).
    PeerResigned,
    /// This router left Master (preempted, Fault, resigned, stopped).
    LeftMaster,
}

impl fmt::Display for SplitBrainEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SplitBrainEnd::PeerSilent => "the other master fell silent",
            SplitBrainEnd::PeerResigned => "the other master sent priority 0",
            SplitBrainEnd::LeftMaster => "this router left master",
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Episode {
    first: Instant,
    last: Instant,
    priority: Priority,
    adverts: u64,
    /// The quiet time after which it ends.
    quiet: Duration,
}

/// The open episodes of one router, by peer.
#[derive(Debug, Default)]
pub(super) struct SplitBrains {
    open: BTreeMap<IpAddr, Episode>,
    master_since: Option<Instant>,
}

impl SplitBrains {
    /// This router became Master at `now`.
    pub(super) fn became_master(&mut self, now: Instant) {
        self.master_since = Some(now);
    }

    /// An advert from `peer`, a Master whose `priority` loses to ours, at `now`; `interval` is
    /// the longer of its advert interval and ours. Returns the event to report, for an
    /// episode's first advert.
    pub(super) fn heard(
        &mut self,
        now: Instant,
        peer: IpAddr,
        priority: Priority,
        interval: Duration,
    ) -> Option<Event> {
        let quiet = interval * SPLIT_BRAIN_QUIET_INTERVALS;
        if let Some(e) = self.open.get_mut(&peer) {
            e.last = now;
            e.priority = priority;
            e.adverts += 1;
            e.quiet = quiet;
            return None;
        }
        let grace = interval * TAKEOVER_GRACE_INTERVALS;
        if self
            .master_since
            .is_some_and(|since| now.saturating_duration_since(since) < grace)
        {
            return None;
        }
        self.open.insert(
            peer,
            Episode {
                first: now,
                last: now,
                priority,
                adverts: 1,
                quiet,
            },
        );
        Some(Event::SplitBrain { peer, priority })
    }

    /// The peer sent priority 0: its episode, if any, ends.
    pub(super) fn resigned(&mut self, now: Instant, peer: IpAddr) -> Option<Event> {
        let e = self.open.remove(&peer)?;
        Some(ended(peer, e, now - e.first, SplitBrainEnd::PeerResigned))
    }

    /// Ends the episodes whose peer has been quiet long enough at `now`.
    pub(super) fn expire(&mut self, now: Instant, events: &mut impl Extend<Event>) {
        let quiet: Vec<IpAddr> = self
            .open
            .iter()
            .filter(|(_, e)| e.last + e.quiet <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in quiet {
            if let Some(e) = self.open.remove(&peer) {
                events.extend([ended(peer, e, e.last - e.first, SplitBrainEnd::PeerSilent)]);
            }
        }
    }

    /// This router left Master at `now`: every episode ends.
    pub(super) fn left_master(&mut self, now: Instant, events: &mut impl Extend<Event>) {
        self.master_since = None;
        for (peer, e) in std::mem::take(&mut self.open) {
            let duration = now.saturating_duration_since(e.first);
            events.extend([ended(peer, e, duration, SplitBrainEnd::LeftMaster)]);
        }
    }

    /// When the first open episode ends if its peer stays quiet.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.open.values().map(|e| e.last + e.quiet).min()
    }

    /// How many episodes are open.
    pub(super) fn open(&self) -> usize {
        self.open.len()
    }
}

fn ended(peer: IpAddr, e: Episode, duration: Duration, end: SplitBrainEnd) -> Event {
    Event::SplitBrainEnded {
        peer,
        priority: e.priority,
        adverts: e.adverts,
        duration,
        end,
    }
}
