//! [`DriverSnapshot`] and [`RouterSnapshot`]: what a running [`Driver`](super::Driver) reports
//! on [`Command::Snapshot`](super::Command::Snapshot), for status pages and metrics.

use crate::State;
use crate::packet::{AdvertInterval, Priority, Vrid};
use crate::router::{Router, Stats};

use super::DriverStats;

/// Every router of a driver and the driver's own counters, taken between two inputs (so the
/// values of one router are consistent with each other).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DriverSnapshot {
    /// The routers, in the order they were given or added.
    pub routers: Vec<RouterSnapshot>,
    /// What the driver itself counted.
    pub stats: DriverStats,
}

/// One router at the moment of a [`DriverSnapshot`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RouterSnapshot {
    /// Its VRID (how the driver's commands and events name it).
    pub vrid: Vrid,
    /// Its state.
    pub state: State,
    /// Its effective priority ([`Router::priority`]).
    pub priority: Priority,
    /// Master_Adver_Interval ([`Router::master_adver_interval`]).
    pub master_adver_interval: AdvertInterval,
    /// The last reported state of each tracked object ([`Router::trackers_up`]).
    pub trackers_up: Vec<bool>,
    /// The last reported link state ([`Router::link_up`]).
    pub link_up: bool,
    /// Its counters ([`Router::stats`]).
    pub stats: Stats,
}

impl RouterSnapshot {
    /// The snapshot of `router` now.
    pub fn of(router: &Router) -> RouterSnapshot {
        RouterSnapshot {
            vrid: router.config().vrid,
            state: router.state(),
            priority: router.priority(),
            master_adver_interval: router.master_adver_interval(),
            trackers_up: router.trackers_up().to_vec(),
            link_up: router.link_up(),
            stats: router.stats().clone(),
        }
    }
}
