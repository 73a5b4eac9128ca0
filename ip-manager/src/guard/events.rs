//! [`GuardedEvents`]: a router's event source that keeps its guard slot up to date, for a
//! [`VipApplier`](crate::failover::VipApplier) run by its owner.

use vrrp_core::State;
use vrrp_core::driver::{DriverEvent, DriverExit};

use super::GuardSlot;
use crate::failover::EventSource;

/// Wraps an [`EventSource`] so that every state change marks the router's [`GuardSlot`]:
/// [`GuardSlot::changing`] as the event is handed out (before the applier moves the
/// addresses), [`GuardSlot::changed`] when the next one is asked for (the applier is done
/// with it). `VipApplier::run(GuardedEvents::new(events, slot))` is all a router needs.
#[derive(Debug)]
pub struct GuardedEvents<S> {
    source: S,
    slot: GuardSlot,
    applied: Option<State>,
}

impl<S: EventSource> GuardedEvents<S> {
    /// `source`'s events, marking `slot`.
    pub fn new(source: S, slot: GuardSlot) -> GuardedEvents<S> {
        GuardedEvents {
            source,
            slot,
            applied: None,
        }
    }
}

#[async_trait::async_trait]
impl<S: EventSource> EventSource for GuardedEvents<S> {
    async fn recv(&mut self) -> Option<DriverEvent> {
        if let Some(to) = self.applied.take() {
            self.slot.changed(to);
        }
        let event = self.source.recv().await?;
        if let vrrp_core::Event::StateChanged { from, to, .. } = &event.event {
            self.slot.changing(*from, *to);
            self.applied = Some(*to);
        }
        Some(event)
    }

    async fn exit(&mut self) -> DriverExit {
        self.source.exit().await
    }
}
