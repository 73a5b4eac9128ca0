//! [`Transition`]: one change of health, and [`Transitions`], the stream of them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_core::Stream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::Health;

/// One change of health, as a log line or a stats page wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The monitor's id.
    pub id: Arc<str>,
    /// The health before.
    pub from: Health,
    /// The health now.
    pub to: Health,
    /// When (monotonic).
    pub at: Instant,
    /// When, on the wall clock.
    pub at_system: SystemTime,
    /// Consecutive successes at the change (`rise` when it came up).
    pub successes: u32,
    /// Consecutive failures at the change (`fall` when it went down).
    pub failures: u32,
    /// Checks run so far.
    pub checks: u64,
    /// The last failure's text (why it went down).
    pub last_error: Option<String>,
}

/// The transitions of one [`Monitor`](crate::Monitor) from the moment it was asked for; ends
/// when the monitor is dropped.
///
/// A reader more than 64 transitions behind misses the oldest ones ([`missed`](Self::missed)
/// counts them); the latest state is always on [`Monitor::subscribe`](crate::Monitor::subscribe).
#[derive(Debug)]
pub struct Transitions {
    inner: BroadcastStream<Transition>,
    missed: u64,
}

impl Transitions {
    pub(crate) fn new(rx: broadcast::Receiver<Transition>) -> Transitions {
        Transitions {
            inner: BroadcastStream::new(rx),
            missed: 0,
        }
    }

    /// Transitions skipped because this reader fell too far behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl Stream for Transitions {
    type Item = Transition;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Transition>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(t))) => return Poll::Ready(Some(t)),
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => self.missed += n,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
