//! An L4/L7 proxy as a library (feature `proxy`): the TCP proxy ([`TcpProxy`], HAProxy's
//! `mode tcp`) and the HTTP proxy ([`HttpProxy`], `mode http`), sharing their server picks,
//! slots, queue, retries and counters; with feature `proxy-tls`, `proxy::tls` holds the
//! rustls configurations for TLS termination (certificates by SNI, HTTP/2 by ALPN) and TLS
//! towards servers. The `lbd` daemon (crate `examples`) is these proxies driven by a
//! configuration file; a service embeds them to balance its own incoming or outgoing TCP and
//! HTTP, with health checks setting health on [`backends`](TcpProxy::backends) (e.g.
//! `health-check`'s `HealthDiscover::in_place`).
//!
//! Server `maxconn` with its queue and `retries` with `redispatch` are lb-core's own, the
//! same code as the tower layers': a pick passes over servers at their `maxconn`
//! ([`maxconn::pick_free`](crate::maxconn::pick_free)), a client finding every server full
//! waits in the proxy's [`maxconn::Queue`](crate::maxconn::Queue), and each failed connect
//! asks [`retry::Attempts`](crate::retry::Attempts) where the next one goes (same server
//! after the turn-around delay, or another one on the last retry).
//!
//! A [`TcpProxy`] listens on one address (with `IP_FREEBIND`, so it may be a VIP that VRRP
//! has not brought here yet), picks a server for each client through an `lb-core`
//! [`BackendSet`](crate::BackendSet) (health, admin state, weights, in-flight counts for
//! `leastconn`), connects with `timeouts.connect`, retries failed connects (`retries`, the
//! last one to another server with `redispatch`), then copies bytes both ways with
//! half-close and an idle timeout. `maxconn` bounds the clients served at once (the next ones
//! wait in the listen backlog), a server's `maxconn` bounds its connections (clients wait up
//! to `timeouts.queue` for a slot), and [`TcpProxy::drain`] stops it gracefully.
//! [`TcpProxy::stats`] reads the counters a stats page shows.
//!
//! ```no_run
//! use lb_core::proxy::{ServerSettings, TcpProxy, TcpSettings};
//! use lb_core::{Health, LeastConnections};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let servers = vec![
//!     ServerSettings::new("db1", "10.0.0.11:5432".parse()?),
//!     ServerSettings::new("db2", "10.0.0.12:5432".parse()?),
//! ];
//! let settings = TcpSettings::new("pg", "10.99.0.200:5432".parse()?, servers);
//! let proxy = TcpProxy::start(settings, LeastConnections::new())?;
//!
//! // A health check marks a server down: it gets no new client.
//! proxy.backends().set_health(&"db2".to_string(), Health::Down)?;
//! println!("{:?}", proxy.stats());
//!
//! // Shutting down: refuse new clients, give the others 30s to finish.
//! let report = proxy.drain(Duration::from_secs(30)).await;
//! println!("closed {} connections at the deadline", report.closed);
//! # Ok(())
//! # }
//! ```
//!
//! Both replace their servers while they run ([`TcpProxy::update_servers`],
//! [`HttpProxy::update_servers`], what lbd's SIGHUP uses): no connection closes, servers that
//! stay keep their counters, health and pooled connections.
//!
//! An [`HttpProxy`] has the same shape (start, `local_addr`, `backends`, `update_servers`,
//! `stats`, `drain`)
//! and works request by request: HTTP/1.1 keep-alive towards clients (HTTP/2 when a TLS
//! client negotiated `h2`), a pool of reused HTTP/1.1 connections per server (HAProxy
//! `http-reuse always`), `X-Forwarded-For`, hop-by-hop headers removed, bodies streamed,
//! balancing on a hash key or a stickiness cookie, and 502/503/504 answers of its own.
//! Retries cover failed connects and, for requests safe to repeat (idempotent, no body),
//! failures before the response began.
//!
//! ```no_run
//! use lb_core::proxy::{HttpProxy, HttpSettings, ServerSettings};
//! use lb_core::{ConsistentHash, HashKey};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let servers = vec![
//!     ServerSettings::new("web1", "10.0.0.21:80".parse()?),
//!     ServerSettings::new("web2", "10.0.0.22:80".parse()?),
//! ];
//! let mut settings = HttpSettings::new("web", "10.99.0.200:80".parse()?, servers);
//! settings.hash_key = Some(HashKey::Uri { whole: false }); // balance uri
//! settings.cookie = Some("SERVERID".into()); // cookie SERVERID insert indirect nocache
//! settings.http_request = Duration::from_secs(10); // timeout http-request
//! let proxy = HttpProxy::start(settings, ConsistentHash::new())?;
//!
//! let stats = proxy.stats();
//! println!("{} requests, {} 5xx", stats.requests, stats.responses.server_error);
//! proxy.drain(Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```

mod error;
mod frontend;
mod http;
mod http_body;
mod http_head_timer;
mod http_headers;
mod listener;
mod servers;
mod settings;
mod splice;
mod stats;
mod tcp;
#[cfg(feature = "proxy-tls")]
pub mod tls;

pub use error::ProxyError;
pub use frontend::DrainReport;
pub use http::HttpProxy;
pub use settings::{ConnectionLimit, HttpSettings, ServerSettings, TcpSettings, Timeouts};
pub use stats::{ProxyStats, ResponseCodes, ServerStats};
pub use tcp::TcpProxy;
