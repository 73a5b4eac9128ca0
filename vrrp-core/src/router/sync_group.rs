//! [`SyncGroup`]: routers that change state together (keepalived `vrrp_sync_group`), so the
//! virtual addresses of two interfaces, or of an active-active pair, move as one.
//!
//! The rule, as keepalived applies it: when one member becomes Master, Backup or Fault on its
//! own account, every other running member follows into the same state. A member held in Fault
//! only by the group leaves it when the group goes back to Backup or Master.

use std::time::Instant;

use super::{Event, Reason, Router, State};

/// A set of named routers driven as one. Feed inputs to a member through
/// [`member_mut`](Self::member_mut) and then call [`sync`](Self::sync) with the same `now`;
/// events come out of [`poll_event`](Self::poll_event) tagged with the member's index.
#[derive(Debug, Default)]
pub struct SyncGroup {
    members: Vec<(String, Router)>,
    events: std::collections::VecDeque<(usize, Event)>,
}

impl SyncGroup {
    /// An empty group.
    pub fn new() -> SyncGroup {
        SyncGroup::default()
    }

    /// Adds `router` under `name`; returns its index.
    pub fn push(&mut self, name: impl Into<String>, router: Router) -> usize {
        self.members.push((name.into(), router));
        self.members.len() - 1
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `index`.
    pub fn member(&self, index: usize) -> Option<&Router> {
        self.members.get(index).map(|(_, r)| r)
    }

    /// Member `index`, to feed it an input. Call [`sync`](Self::sync) afterwards.
    pub fn member_mut(&mut self, index: usize) -> Option<&mut Router> {
        self.members.get_mut(index).map(|(_, r)| r)
    }

    /// Propagates the state changes the members made on their own account since the last
    /// call, and collects every member's events.
    pub fn sync(&mut self, now: Instant) {
        loop {
            let mut lead: Option<(usize, State)> = None;
            for (i, (_, r)) in self.members.iter_mut().enumerate() {
                while let Some(ev) = r.poll_event() {
                    if let Event::StateChanged { to, reason, .. } = &ev {
                        let own = !matches!(reason, Reason::SyncGroup { .. } | Reason::Shutdown);
                        if own && *to != State::Initialize {
                            lead = Some((i, *to));
                        }
                    }
                    self.events.push_back((i, ev));
                }
            }
            let Some((leader, to)) = lead else { return };
            let name = self.members[leader].0.clone();
            for (i, (_, r)) in self.members.iter_mut().enumerate() {
                if i != leader {
                    r.follow(now, to, &name);
                }
            }
        }
    }

    /// The next event of any member, with the member's index.
    pub fn poll_event(&mut self) -> Option<(usize, Event)> {
        self.events.pop_front()
    }

    /// The earliest timer of any member.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|(_, r)| r.poll_timeout())
            .min()
    }

    /// Fires every member's due timers, then syncs.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (_, r) in &mut self.members {
            r.handle_timeout(now);
        }
        self.sync(now);
    }
}
