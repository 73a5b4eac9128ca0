//! The story on `vrrp_core::sim`: the same two routers and timeline on a simulated segment with
//! a virtual clock. Nothing is sent anywhere; the routers are the very state machines vrrpd
//! drives, fed virtual time.

use std::net::IpAddr;
use std::time::Duration;

use vrrp_core::packet::{Priority, Version};
use vrrp_core::router::ConfigError;
use vrrp_core::sim::Sim;
use vrrp_core::{Config, State};

use crate::story::{Line, Node, Outcome, ROUTERS, VIP, VRID, advert_interval};

/// The seed of the segment's RNG (the link here is perfect, so it changes nothing).
const SEED: u64 = 1;

fn config(node: &Node) -> Config {
    let mut c = Config::new(VRID, IpAddr::V4(node.address), vec![IpAddr::V4(VIP)]);
    c.version = Version::V3;
    c.priority = Priority::new(node.priority);
    c.advert_interval = advert_interval();
    c
}

/// r1 starts, r2 joins a second later, r1 crashes (no priority-0 advert) half-way between two
/// of its adverts, r2 takes over.
pub(crate) fn run() -> Result<Outcome, ConfigError> {
    let mut sim = Sim::new(SEED);
    // A LAN: 200 µs one way.
    sim.link.delay = Duration::from_micros(200);
    let [first, second] = ROUTERS;
    let mut lines = Vec::new();
    let mut mark = |sim: &Sim, text: String| {
        lines.push(Line {
            at: sim.elapsed(),
            text,
        })
    };
    mark(
        &sim,
        format!(
            "a simulated segment: virtual clock, {:?} one way, seed {SEED}",
            sim.link.delay
        ),
    );
    mark(&sim, first.starts());
    let r1 = sim.add(config(&first))?;
    sim.run_for(Duration::from_secs(1));
    mark(&sim, second.starts());
    let r2 = sim.add(config(&second))?;
    sim.run_for(Duration::from_millis(1050));
    let crash = sim.now;
    mark(
        &sim,
        format!(
            "{} (the Master) crashes: no priority-0 advert, it just stops",
            first.name
        ),
    );
    sim.crash(r1);
    sim.run_for(Duration::from_secs(2));
    for (i, node) in [(r1, first), (r2, second)] {
        for t in &sim.nodes[i].transitions {
            lines.push(Line {
                at: t.at - sim.start,
                // As vrrpd logs them, so both stories read alike.
                text: format!("{}: {:?} -> {:?} ({:?})", node.name, t.from, t.to, t.reason),
            });
        }
    }
    let takeover = sim.nodes[r2]
        .transitions
        .iter()
        .find(|t| t.to == State::Master && t.at > crash)
        .map_or(Duration::MAX, |t| t.at - crash);
    Ok(Outcome {
        mode: "simulator",
        lines,
        takeover,
        client: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::master_down_interval;

    #[test]
    fn the_backup_takes_over_within_master_down_interval_of_the_crash_rfc5798_6_4_2() {
        let o = run().expect("valid configs");
        let mdi = master_down_interval(ROUTERS[1].priority);
        assert!(
            o.takeover <= mdi && o.takeover > mdi - advert_interval().as_duration(),
            "{:?}",
            o.takeover
        );
        let text: Vec<&str> = o.lines.iter().map(|l| l.text.as_str()).collect();
        assert!(
            text.contains(&"r1: Backup -> Master (MasterDown)"),
            "{text:?}"
        );
        assert!(
            text.contains(&"r2: Backup -> Master (MasterDown)"),
            "{text:?}"
        );
    }
}
