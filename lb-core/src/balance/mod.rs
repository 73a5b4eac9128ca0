//! [`Balance`]: a `tower::Service` that spreads requests over backend services with an
//! [`Algorithm`](crate::Algorithm), taking its membership from a `tower::discover::Discover`.
//!
//! # `poll_ready`
//!
//! `poll_ready` applies the membership changes the discover stream has ready, advances slow
//! start, and drives the backend services that are not known to be ready (each is polled until
//! ready once; after a request it is polled again before its next one, so the cost per request
//! is one backend's `poll_ready`, as in tower's `ReadyCache`). It returns:
//! - `Ready(Ok)` when at least one available backend is ready, **or when no backend is
//!   available at all**: the next `call` then fails at once with [`NoBackend`](crate::NoBackend)
//!   (a proxy answers 503 or refuses the connection, as HAProxy does, instead of waiting);
//! - `Pending` when backends are available but none is ready (backpressure): the task is woken
//!   by the backends' own readiness or by the discover stream;
//! - `Ready(Err)` when the discover stream fails.
//!
//! A backend whose `poll_ready` fails is removed from the set (tower's balancers do the same).
//!
//! # Sharing
//!
//! With `Clone` backend services, `Balance` is `Clone` and a clone is a cheap handle to the same
//! balancer (one backend set, one discover stream), usable from its own task with no
//! `tower::buffer::Buffer` in front; see [`Balance`].
//!
//! # `call`
//!
//! The request's hash key (if the algorithm uses one) comes from a [`HashKeyOf`]
//! implementation; the pick skips backends that are not ready. The backend's in-flight count
//! (least-connections and p2c read it) rises until the request is complete, as a
//! [`TrackCompletion`] decides: by default ([`CompleteOnResponse`]) when the response future
//! resolves or is dropped; for HTTP responses whose bodies stream (feature `http`),
//! `.complete_on(CompleteOnBodyEnd)` keeps it until the body has ended or been dropped, so a
//! backend sending slow bodies looks as busy as it is. Its latency, measured to the same point,
//! feeds the peak-EWMA estimate. A backend removed while requests are in flight
//! on it does not affect them: the response futures do not borrow the service.

#[cfg(feature = "http")]
mod body;
mod completion;
mod error;
mod future;
mod key;
mod service;
mod shared;

#[cfg(feature = "http")]
pub use body::{CompleteOnBodyEnd, InFlightBody};
pub use completion::{CompleteOnResponse, TrackCompletion};
pub use error::BalanceError;
pub use future::ResponseFuture;
pub use key::{HashKeyOf, NoKey};
pub use service::Balance;
