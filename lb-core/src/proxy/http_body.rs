//! The bodies the HTTP proxy streams, and the idle server connections it reuses.
//!
//! [`ReqBody`] carries a client's request body to a server, [`ProxyBody`] a server's response
//! body (or the proxy's own small answer) to the client; both count the bytes as they pass,
//! frame by frame, nothing is buffered. A response body also holds the request's [`Slot`] on
//! its server (so `leastconn` and `maxconn` see the request until its last byte) and the
//! server connection: at the end of the body the connection goes back to the server's
//! [`Idle`] pool for the next request (HAProxy `http-reuse always`).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;

use super::http_head_timer::HeadClock;
use super::servers::{Slot, Table};

/// What polling either body for a frame gives.
type FramePoll = Poll<Option<Result<Frame<Bytes>, hyper::Error>>>;

/// The most idle connections kept per server.
const IDLE_MAX: usize = 512;

/// A server's idle keep-alive connections, most recently used last.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    // A lock held for one push or pop, never across an await; uncontended on one thread.
    senders: Mutex<Vec<SendRequest<ReqBody>>>,
}

impl Idle {
    /// The most recently used connection that is still open.
    pub(crate) fn take(&self) -> Option<SendRequest<ReqBody>> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps `sender` for another request (unless closed or the pool is full).
    pub(crate) fn put(&self, sender: SendRequest<ReqBody>) {
        if sender.is_closed() {
            return;
        }
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders.len() < IDLE_MAX {
            senders.push(sender);
        }
    }
}

/// A request body on its way to a server, counted into the server's `bytes_in`.
#[derive(Debug)]
pub(crate) struct ReqBody {
    inner: Option<Incoming>,
    counter: Option<(Arc<Table<Idle>>, usize)>,
}

impl ReqBody {
    /// `incoming`, counted on the server at `index` of `table`.
    pub(crate) fn counted(incoming: Incoming, table: Arc<Table<Idle>>, index: usize) -> Self {
        ReqBody {
            inner: Some(incoming),
            counter: Some((table, index)),
        }
    }

    /// No body (a request sent again).
    pub(crate) fn empty() -> Self {
        ReqBody {
            inner: None,
            counter: None,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some((table, index)) = &this.counter
        {
            table
                .server(*index)
                .counters
                .bytes_in
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

/// A response body on its way to a client.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
    /// Told when the body is over (dropped: sent, or given up).
    head_clock: Option<Arc<HeadClock>>,
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Some(clock) = &self.head_clock {
            clock.response_done();
        }
    }
}

#[derive(Debug)]
enum Kind {
    /// The proxy's own answer.
    Full(Option<Bytes>),
    /// A server's, streamed.
    Server(Streamed),
}

/// A server's response body with what it holds until its end.
#[derive(Debug)]
struct Streamed {
    inner: Incoming,
    slot: Option<Slot<Idle>>,
    sender: Option<SendRequest<ReqBody>>,
}

impl Streamed {
    /// The body is over: the connection goes back to the pool, the slot is given back.
    fn finish(&mut self) {
        if let Some(slot) = self.slot.take() {
            if let Some(sender) = self.sender.take() {
                slot.server().extra.put(sender);
            }
            drop(slot);
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // A body the client did not read to its end leaves the connection mid-response:
        // it is closed (dropped), never reused.
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}

impl ProxyBody {
    /// The proxy's own answer.
    pub(crate) fn full(bytes: Bytes) -> Self {
        ProxyBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            head_clock: None,
        }
    }

    /// A server's body: `slot` is held, and `sender` goes back to its pool, at its end.
    pub(crate) fn streamed(
        inner: Incoming,
        slot: Slot<Idle>,
        sender: SendRequest<ReqBody>,
    ) -> Self {
        let mut streamed = Streamed {
            inner,
            slot: Some(slot),
            sender: Some(sender),
        };
        if streamed.inner.is_end_stream() {
            streamed.finish();
        }
        ProxyBody {
            kind: Kind::Server(streamed),
            head_clock: None,
        }
    }

    /// Tells `clock` when the body is over (the connection then awaits the next head).
    pub(crate) fn on_end(&mut self, clock: Arc<HeadClock>) {
        self.head_clock = Some(clock);
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Server(streamed) => {
                let polled = Pin::new(&mut streamed.inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref()
                            && let Some(slot) = &streamed.slot
                        {
                            slot.server()
                                .counters
                                .bytes_out
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        if streamed.inner.is_end_stream() {
                            streamed.finish();
                        }
                    }
                    Poll::Ready(None) => streamed.finish(),
                    Poll::Ready(Some(Err(_))) => {
                        if let Some(slot) = &streamed.slot {
                            slot.server().counters.response_failed();
                        }
                        // Closed, not reused.
                        streamed.sender = None;
                        streamed.slot = None;
                    }
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Server(streamed) => streamed.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Server(streamed) => streamed.inner.size_hint(),
        }
    }
}
