//! One listener at run time, whatever its mode and algorithm: the proxies are generic over
//! their `lb-core` algorithm, the daemon holds them behind [`Proxy`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Algorithm, BackendSet, ConsistentHash, First, Health, LeastConnections, PowerOfTwoChoices,
    Random, RoundRobin, StaticRoundRobin,
};

use super::balance::Balance;
use lb_core::proxy::{DrainReport, HttpProxy, ProxyError, ProxyStats, ServerSettings, TcpProxy};

/// A running proxy as the daemon sees it.
pub(crate) trait Proxy: Send + Sync {
    /// The address it accepts on.
    fn local_addr(&self) -> SocketAddr;
    /// Its counters now.
    fn stats(&self) -> ProxyStats;
    /// Its servers' state in the balancer.
    fn backends(&self) -> Arc<dyn Backends>;
    /// Its servers now.
    fn servers(&self) -> Vec<ServerSettings>;
    /// Replaces its servers in place (a reload): no connection closes, servers that stay keep
    /// their counters, pooled connections and health.
    fn update_servers(&self, servers: &[ServerSettings]) -> Result<(), ProxyError>;
    /// The client connections open now.
    fn open_connections(&self) -> usize;
    /// Starts handing the clients over (see lb-core's `close_connections`).
    fn close_connections(&self);
    /// Undoes [`close_connections`](Proxy::close_connections).
    fn keep_connections(&self);
    /// Stops accepting, lets the connections finish up to `deadline`.
    fn drain(
        self: Box<Self>,
        deadline: Duration,
    ) -> Pin<Box<dyn Future<Output = DrainReport> + Send>>;
}

/// [`Proxy`] for lb-core's proxies: each method is the proxy's own.
macro_rules! proxy {
    ($($proxy:ident),*) => {$(
        impl<A: Algorithm> Proxy for $proxy<A> {
            fn local_addr(&self) -> SocketAddr {
                $proxy::local_addr(self)
            }

            fn stats(&self) -> ProxyStats {
                $proxy::stats(self)
            }

            fn backends(&self) -> Arc<dyn Backends> {
                $proxy::backends(self).clone()
            }

            fn servers(&self) -> Vec<ServerSettings> {
                $proxy::servers(self)
            }

            fn update_servers(&self, servers: &[ServerSettings]) -> Result<(), ProxyError> {
                $proxy::update_servers(self, servers)
            }

            fn open_connections(&self) -> usize {
                $proxy::open_connections(self)
            }

            fn close_connections(&self) {
                $proxy::close_connections(self)
            }

            fn keep_connections(&self) {
                $proxy::keep_connections(self)
            }

            fn drain(
                self: Box<Self>,
                deadline: Duration,
            ) -> Pin<Box<dyn Future<Output = DrainReport> + Send>> {
                Box::pin($proxy::drain(*self, deadline))
            }
        }
    )*};
}

proxy!(TcpProxy, HttpProxy);

/// A proxy's servers as the health checks change them.
pub(crate) trait Backends: Send + Sync {
    /// A health check's verdict on server `name`: down takes it out of rotation at once
    /// (connections on it go on).
    fn set_health(&self, name: &str, up: bool);
    /// The operator's state for server `name` (admin socket).
    fn set_admin(&self, name: &str, state: lb_core::AdminState);
    /// The operator's weight for server `name` (admin socket).
    fn set_weight(&self, name: &str, weight: u32);
}

// Every configured server is in its proxy's set, so the updates below cannot miss; a miss
// would be a server of an older configuration, with nothing left to change.
impl<A: Algorithm> Backends for BackendSet<String, A> {
    fn set_health(&self, name: &str, up: bool) {
        let health = if up { Health::Up } else { Health::Down };
        let _ = BackendSet::set_health(self, &name.to_owned(), health);
    }

    fn set_admin(&self, name: &str, state: lb_core::AdminState) {
        let _ = BackendSet::set_admin(self, &name.to_owned(), state);
    }

    fn set_weight(&self, name: &str, weight: u32) {
        let _ = BackendSet::set_weight(self, &name.to_owned(), weight);
    }
}

/// Something that starts a proxy once it is given its algorithm.
pub(crate) trait Starter {
    /// Starts the proxy with `algorithm`.
    fn start<A: Algorithm>(self, algorithm: A) -> Result<Box<dyn Proxy>, ProxyError>;
}

/// Starts `starter` with the lb-core algorithm that runs `balance`.
pub(crate) fn with_algorithm<S: Starter>(
    balance: &Balance,
    starter: S,
) -> Result<Box<dyn Proxy>, ProxyError> {
    match balance {
        Balance::RoundRobin => starter.start(RoundRobin),
        Balance::StaticRoundRobin => starter.start(StaticRoundRobin),
        Balance::LeastConnections => starter.start(LeastConnections::new()),
        // The key (source address, URI, header) is the proxy's business: the algorithm only
        // hashes what it is given.
        Balance::ConsistentHash(_) => starter.start(ConsistentHash::new()),
        Balance::Random => starter.start(Random::new()),
        Balance::First => starter.start(First),
        Balance::PowerOfTwoChoices => starter.start(PowerOfTwoChoices::in_flight()),
    }
}
