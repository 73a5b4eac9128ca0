//! # lb-core
//!
//! Load-balancing algorithms as reusable pieces: HAProxy's `roundrobin`, `static-rr`,
//! `leastconn`, `first`, `random`, `source` / `uri` / `hdr(NAME)` / `url_param` (consistent
//! hashing with Maglev), nginx's smooth weighted round robin, power of two choices and cookie
//! stickiness, over a read-mostly [`BackendSet`].
#![forbid(unsafe_code)]

mod algorithm;
mod backend;
pub mod balance;
mod consistent_hash;
mod error;
mod first;
mod hash;
#[cfg(feature = "http")]
mod http;
mod least_conn;
pub mod maxconn;
mod p2c;
mod random;
pub mod retry;
mod round_robin;
mod smooth_weighted;
mod static_rr;

pub use algorithm::{Algorithm, Candidate, Context};
pub use backend::{
    AdminState, Backend, BackendSet, DEFAULT_EWMA_DECAY, Health, InFlight, Load, SlowStart,
    Snapshot,
};
pub use balance::Balance;
pub use consistent_hash::{ConsistentHash, DEFAULT_TABLE_SIZE, MaglevTable};
pub use error::{NoBackend, UpdateError};
pub use first::First;
#[cfg(feature = "http")]
pub use http::{ClientAddr, HashKey, StickyCookie, StickyPick};
pub use least_conn::{LeastConnTable, LeastConnections};
pub use maxconn::{MaxConn, MaxConnLayer};
pub use p2c::{P2cMetric, PowerOfTwoChoices};
pub use random::{Random, RandomTable};
pub use retry::{Retry, RetryLayer};
pub use round_robin::{RoundRobin, RoundRobinTable};
pub use smooth_weighted::{SmoothTable, SmoothWeightedRoundRobin};
pub use static_rr::{StaticRoundRobin, StaticTable};
