//! The simulated segment the router tests share: addresses in 10.99.0.0/24, VRID 51 v3
//! configurations, and a traced [`Sim`] with a 1 ms link.

use std::net::IpAddr;
use std::time::Duration;

use vrrp_core::packet::{Priority, Version, Vrid};
use vrrp_core::router::Config;
use vrrp_core::sim::Sim;

/// One second.
pub const SEC: Duration = Duration::from_secs(1);

/// Host `i` of 10.99.0.0/24.
pub fn addr(i: u8) -> IpAddr {
    IpAddr::from([10, 99, 0, i])
}

/// VRRPv3 VRID 51 of host `host` at `priority`, protecting 10.99.0.200.
pub fn config(host: u8, priority: u8) -> Config {
    let mut c = Config::new(
        Vrid::new(51).expect("non-zero"),
        addr(host),
        vec![addr(200)],
    );
    c.priority = Priority::new(priority);
    c.version = Version::V3;
    c
}

/// A traced simulation seeded with `seed` whose link delays each packet by 1 ms.
pub fn traced_sim(seed: u64) -> Sim {
    let mut s = Sim::new(seed);
    s.link.delay = Duration::from_millis(1);
    s.tracing = true;
    s
}
