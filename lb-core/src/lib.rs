//! # lb-core
//!
//! Load-balancing algorithms for any Rust service, as reusable pieces and as tower services:
//! every algorithm of HAProxy's and nginx's configs, over a read-mostly backend set that health
//! checks and admin APIs update while requests are picked.
//!
//! ```
//! use std::sync::Arc;
//! use lb_core::{Balance, BackendSet, Health, RoundRobin};
//! use tower::{Service, ServiceExt, discover::ServiceList};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Three backend services (here they answer their name; in a proxy, HTTP clients).
//! let web = ["web1", "web2", "web3"].map(|name| {
//!     tower::service_fn(move |_request: &'static str| async move {
//!         Ok::<_, std::convert::Infallible>(name)
//!     })
//! });
//! let mut balance = Balance::new(ServiceList::new(web), RoundRobin);
//! for _ in 0..3 {
//!     let served_by = balance.ready().await?.call("GET /").await?;
//!     println!("served by {served_by}");
//! }
//!
//! // Health checks mark a backend down through the shared set (ServiceList keys are 0, 1, 2):
//! // it gets no new request until it is up again.
//! let backends: Arc<BackendSet<usize, RoundRobin>> = balance.backends().clone();
//! backends.set_health(&1, Health::Down)?;
//! for _ in 0..4 {
//!     assert_ne!(balance.ready().await?.call("GET /").await?, "web2");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Pieces
//!
//! - [`BackendSet`]: backends with a key, weight, admin state ([`AdminState`]: ready / drain
//!   / maintenance), health ([`Health`], fed from outside, e.g. by the `health-check` crate's
//!   `HealthDiscover` or its monitors), in-flight count and latency ([`Load`](backend::Load)), `maxconn` and
//!   slow start. Read-mostly: picks load an immutable [`Snapshot`](backend::Snapshot) through an `arc-swap`
//!   pointer (no lock), updates rebuild it aside.
//! - [`Algorithm`]: one small trait (`build` tables on change, `pick` per request), one type
//!   and module per algorithm, named as HAProxy names them:
//!
//! | type | HAProxy / nginx | pick |
//! |---|---|---|
//! | [`RoundRobin`] | `balance roundrobin` (dynamic weights) | precomputed turn cycle, O(1) |
//! | [`StaticRoundRobin`] | `balance static-rr` (configured weights) | precomputed map, O(1) |
//! | [`SmoothWeightedRoundRobin`] | nginx weighted round robin (`a a b a c a a`) | precomputed cycle, O(1) |
//! | [`LeastConnections`] | `balance leastconn` (in-flight / weight, ties by weight) | scan, O(n) |
//! | [`PowerOfTwoChoices`] | tower's p2c (in-flight or peak-EWMA) | 2 samples, O(1) |
//! | [`Random`] | `balance random` (weighted) | O(log n) |
//! | [`First`] | `balance first` (fill up to `maxconn`) | O(n) |
//! | [`ConsistentHash`] | `balance source / uri / hdr(name) / url_param`, `hash-type consistent` (Maglev) | O(1) |
//!
//! - Randomness: [`Random`], [`PowerOfTwoChoices`] and the tie-breaks of [`LeastConnections`]
//!   draw from fastrand's thread-local generator; each has `with_seed(u64)`, after which the
//!   same seed gives the same picks, so tests over a balancer are reproducible.
//! - [`Balance`]: a `tower::Service` over a `tower::discover::Discover` stream; the request's
//!   hash key comes through [`HashKeyOf`](balance::HashKeyOf) (feature `http`: `HashKey` for
//!   `http::Request`). Cloneable (with `Clone` backend services) and `Send + Sync`: each task
//!   takes a clone, no `Buffer` needed. A request counts in flight until its response future
//!   resolves, or with `complete_on(CompleteOnBodyEnd)` (feature `http`) until its response
//!   body ends ([`TrackCompletion`](balance::TrackCompletion)). Layers: [`RetryLayer`] (`retries`, `option redispatch`) and
//!   [`MaxConnLayer`] (server `maxconn` with a FIFO queue, `maxqueue`, `timeout queue`).
//! - Feature `http`: `StickyCookie` (`cookie NAME insert indirect nocache`).
//! - Feature `proxy`: `proxy::{TcpProxy, HttpProxy}`, lbd's L4/L7 proxy as a library over a
//!   [`BackendSet`], with the same [`maxconn`] queue and [`retry`] attempts as the layers.
//! - Feature `stats-page`: `stats_page::StatsServer`, the proxies' stats page (HTML, JSON,
//!   Prometheus `/metrics`, basic auth), with sections and metrics of the embedder's own.
//!
//! ## Features
//!
//! | feature | adds | pulls in |
//! |---|---|---|
//! | (none) | the algorithms, [`BackendSet`], [`Balance`], [`RetryLayer`], [`MaxConnLayer`] | tokio (`sync`, `time`), tower |
//! | `http` | `HashKey`, `StickyCookie`, `CompleteOnBodyEnd` | http, http-body |
//! | `proxy` | `proxy::{TcpProxy, HttpProxy}`, their settings and stats (implies `http`) | hyper (HTTP/1.1), hyper-util, tokio (`net`, `rt`), socket2, tracing |
//! | `proxy-tls` | `proxy::tls` (termination with SNI, HTTP/2 by ALPN, TLS to servers; implies `proxy`) | rustls (ring), tokio-rustls, hyper `http2` |
//! | `stats-page` | `stats_page` (the proxies' stats page: HTML, JSON, Prometheus; implies `proxy`) | serde, serde_json |
//!
//! Unavailable backends (down, drained, in maintenance, weight 0) are skipped by every
//! algorithm; when none is left the pick fails with [`NoBackend`], which a proxy turns into a
//! 503 or a refused connection; its text counts the members and why each is out (`no backend
//! available: 3 configured, 3 down`). With health checks, `health-check`'s
//! `HealthDiscover::in_place` sets health on the [`BackendSet`] in place, so a flap keeps a
//! backend's weight, `maxconn`, admin state and counters.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod algorithm;
pub mod backend;
pub mod balance;
mod consistent_hash;
mod cycle;
mod error;
mod first;
mod hash;
#[cfg(feature = "http")]
mod http;
mod least_conn;
pub mod maxconn;
mod p2c;
#[cfg(feature = "proxy")]
pub mod proxy;
mod random;
pub mod retry;
mod rng;
mod round_robin;
mod smooth_weighted;
mod static_rr;
#[cfg(feature = "stats-page")]
pub mod stats_page;

// What a user names: the set, the algorithms, the service and its layers. What only an
// algorithm's author or a bench needs stays in `algorithm` and `backend`.
pub use algorithm::{Algorithm, PickContext};
pub use backend::{AdminState, BackendSet, Health, InFlight, SlowStart};
pub use balance::Balance;
pub use consistent_hash::ConsistentHash;
pub use error::{NoBackend, UpdateError};
pub use first::First;
#[cfg(feature = "http")]
pub use http::{ClientAddr, HashKey, StickyCookie, StickyPick};
pub use least_conn::LeastConnections;
pub use maxconn::MaxConnLayer;
pub use p2c::{P2cMetric, PowerOfTwoChoices};
pub use random::Random;
pub use retry::RetryLayer;
pub use round_robin::RoundRobin;
pub use smooth_weighted::SmoothWeightedRoundRobin;
pub use static_rr::StaticRoundRobin;
