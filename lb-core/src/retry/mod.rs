//! [`Retry`]: HAProxy's `retries` and `option redispatch` around a [`Balance`](crate::Balance).
//!
//! A failed request is sent again, up to `retries` more times, to the same backend (HAProxy
//! retries the server it chose); with `redispatch`, the last retry goes to another backend,
//! picked by the same algorithm with the failed one excluded, so a backend that died between
//! two health checks is hidden from the client. Only errors the policy calls retryable are
//! retried (default: every error; a proxy should retry only what is safe, e.g. connection
//! failures or idempotent requests).
//!
//! Where each retry goes is decided by [`Attempts`], the one implementation of `retries` and
//! `redispatch` in lb-core: this layer and the proxy (`lb_core::proxy`, feature `proxy`) both
//! use it. With [`RetryLayer::delay`], a retry on the same backend waits HAProxy's
//! turn-around timer first.
//!
//! Retries need the request again, so `Req: Clone`, and call clones of the backend services
//! (`ServiceExt::oneshot`), so they must be `Clone` (clients such as hyper's are).
//!
//! ```
//! use lb_core::{Balance, RetryLayer, RoundRobin};
//! use tower::{Layer, Service, ServiceExt, discover::ServiceList};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), lb_core::balance::BalanceError> {
//! let dead = tower::service_fn(|_: ()| async { Err::<&str, tower::BoxError>("refused".into()) });
//! let alive = tower::service_fn(|_: ()| async { Ok::<&str, tower::BoxError>("alive") });
//! let services: Vec<tower::util::BoxCloneSyncService<(), &str, tower::BoxError>> =
//!     vec![tower::util::BoxCloneSyncService::new(dead), tower::util::BoxCloneSyncService::new(alive)];
//! // retries 3 + option redispatch: the dead backend is tried three times, then the other.
//! let mut balance = RetryLayer::new(3, true).layer(Balance::new(ServiceList::new(services), RoundRobin));
//! assert_eq!(balance.ready().await?.call(()).await?, "alive");
//! # Ok(())
//! # }
//! ```

mod attempts;
mod layer;
mod service;

pub use attempts::{Attempts, Next};
pub use layer::RetryLayer;
pub use service::{Retry, RetryFuture};
