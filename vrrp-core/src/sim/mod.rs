//! A deterministic network simulator for [`Router`]s (feature `sim`): N routers on one
//! simulated L2 segment, a virtual clock, a seeded RNG, and the faults no lab produces on
//! demand (delay, jitter, loss, duplication, reordering, partitions, crashes and restarts,
//! tracker and link changes, the driver's timer granularity). Everything is a function of the
//! seed, so a failing run is replayed from its seed and its [`Sim::trace`].
//!
//! The crate's own scenario and randomized tests run on it; so does the `ha-demo` example when
//! it cannot build network namespaces. Because [`Router`] is sans-IO, the simulated routers
//! are the very code a driver runs, only fed virtual time.
//!
//! A Master crashes and its Backup takes over after Master_Down_Interval (RFC 5798 §6.4.2),
//! measured on the virtual clock:
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::Duration;
//! use vrrp_core::packet::{AdvertInterval, Priority, Vrid};
//! use vrrp_core::router::master_down_interval;
//! use vrrp_core::sim::Sim;
//! use vrrp_core::{Config, State};
//!
//! let router = |host: u8, priority: u8| {
//!     let vrid = Vrid::new(51).expect("1..=255");
//!     let mut c = Config::new(vrid, IpAddr::from([10, 99, 0, host]), vec![IpAddr::from([10, 99, 0, 200])]);
//!     c.priority = Priority::new(priority);
//!     c.advert_interval = AdvertInterval::from_centis(10).expect("100 ms");
//!     c
//! };
//! let mut sim = Sim::new(1); // the seed
//! sim.link.delay = Duration::from_millis(1);
//! let master = sim.add(router(11, 150))?;
//! let backup = sim.add(router(12, 100))?;
//! sim.run_for(Duration::from_secs(2));
//! assert_eq!(sim.in_state(State::Master), [master]);
//!
//! let crash = sim.now;
//! sim.crash(master);
//! sim.run_for(Duration::from_secs(1));
//! let takeover = sim.nodes[backup].transitions.last().expect("a transition");
//! assert_eq!(takeover.to, State::Master);
//! let config = sim.nodes[backup].router.config();
//! let mdi = master_down_interval(config.version, config.priority, config.advert_interval);
//! // The last advert left up to one interval before the crash.
//! let outage = takeover.at - crash;
//! assert!(outage <= mdi && outage > mdi - Duration::from_millis(100), "{outage:?}");
//! # Ok::<(), vrrp_core::router::ConfigError>(())
//! ```

mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use rng::Rng;

use crate::packet::IpHeader;
use crate::router::{Config, ConfigError, Event, Reason, Router, State};

/// "up" or "down", for the trace.
fn up_down(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

/// How the segment treats packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra random delay, uniform in 0..jitter (reorders packets).
    pub jitter: Duration,
    /// Probability that a copy is lost.
    pub loss: f64,
    /// Probability that a copy is delivered twice.
    pub duplicate: f64,
}

/// One simulated host.
#[derive(Debug)]
pub struct Node {
    /// Its virtual router.
    pub router: Router,
    /// Its address on the segment (the router's primary address).
    pub addr: IpAddr,
    /// Powered on (a crash clears it; the router is rebuilt on restart).
    pub up: bool,
    /// Partition component; hosts hear each other only within one.
    pub component: u32,
    /// Every state change of its router, in order.
    pub transitions: Vec<Transition>,
    /// Its router's other events (not state changes), with when they came.
    pub events: Vec<(Instant, Event)>,
}

/// One state change, on the virtual clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When (virtual time: compare with [`Sim::start`] or [`Sim::now`]).
    pub at: Instant,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why, as the router reported it.
    pub reason: Reason,
}

#[derive(Debug)]
struct Delivery {
    at: Instant,
    seq: u64,
    to: usize,
    ip: IpHeader,
    payload: Bytes,
}

impl PartialEq for Delivery {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Delivery {}
impl PartialOrd for Delivery {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delivery {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The simulated segment and its routers.
///
/// Inputs ([`add`](Sim::add), [`crash`](Sim::crash), [`partition`](Sim::partition), ...)
/// act at [`now`](Sim::now); [`run_until`](Sim::run_until) and [`run_for`](Sim::run_for)
/// advance the virtual clock, delivering packets and firing timers in time order.
#[derive(Debug)]
pub struct Sim {
    /// The virtual clock's origin.
    pub start: Instant,
    /// The virtual clock.
    pub now: Instant,
    /// The hosts, in the order they were added (the index is a node's id).
    pub nodes: Vec<Node>,
    /// How the segment treats packets (change it between runs).
    pub link: Link,
    /// The driver wakes on multiples of this (0: exactly at each deadline).
    pub granularity: Duration,
    /// The seeded generator behind every random choice of the segment.
    pub rng: Rng,
    /// What happened, one line each, when [`tracing`](Sim::tracing) is on.
    pub trace: Vec<String>,
    /// Keep a textual trace (costs time; on for replays).
    pub tracing: bool,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    /// One-way partitions: (from, to) pairs whose packets are lost.
    blocked: BTreeSet<(usize, usize)>,
}

impl Sim {
    /// An empty segment with a perfect link, its RNG seeded with `seed`. The virtual clock
    /// starts at the current instant (only differences matter).
    pub fn new(seed: u64) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            nodes: Vec::new(),
            link: Link::default(),
            granularity: Duration::ZERO,
            rng: Rng::new(seed),
            trace: Vec::new(),
            tracing: false,
            queue: BinaryHeap::new(),
            seq: 0,
            blocked: BTreeSet::new(),
        }
    }

    /// Adds a powered-on host running `config`, started at the current time; returns its
    /// index in [`nodes`](Sim::nodes).
    pub fn add(&mut self, config: Config) -> Result<usize, ConfigError> {
        let addr = config.primary_address;
        let mut router = Router::new(config)?;
        router.startup(self.now);
        self.nodes.push(Node {
            router,
            addr,
            up: true,
            component: 0,
            transitions: Vec::new(),
            events: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.drain(i);
        Ok(i)
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Adds a line to the trace (the closure runs only when tracing).
    pub fn log(&mut self, what: impl FnOnce() -> String) {
        if self.tracing {
            let t = self.elapsed().as_secs_f64();
            self.trace.push(format!("{t:>10.4}s {}", what()));
        }
    }

    /// Powers a host off: no shutdown advert, it just stops.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.log(|| format!("node {i} crashes"));
    }

    /// Powers a host back on with a fresh router of the same config.
    pub fn restart(&mut self, i: usize) {
        let config = self.nodes[i].router.config().clone();
        // The config was accepted when the node was added.
        if let Ok(router) = Router::new(config) {
            self.nodes[i].router = router;
        }
        self.nodes[i].router.startup(self.now);
        self.nodes[i].up = true;
        self.log(|| format!("node {i} restarts"));
        self.drain(i);
    }

    /// Graceful stop (priority-0 advert from a Master).
    pub fn shutdown(&mut self, i: usize) {
        self.input(
            i,
            |r, now| r.shutdown(now),
            || format!("node {i} shuts down"),
        );
    }

    /// Node `i` steps down on purpose ([`Router::resign`]): priority 0 out, Backup.
    pub fn resign(&mut self, i: usize) {
        self.input_if(i, |r, now| r.resign(now), || format!("node {i} resigns"));
    }

    /// Starts a stopped router again (after [`shutdown`](Sim::shutdown)).
    pub fn startup(&mut self, i: usize) {
        self.input(i, |r, now| r.startup(now), || format!("node {i} starts up"));
    }

    /// Tracker `tracker` of node `i` goes up or down ([`Router::set_tracker`]).
    pub fn set_tracker(&mut self, i: usize, tracker: usize, up: bool) {
        self.input(
            i,
            |r, now| r.set_tracker(now, tracker, up),
            || format!("node {i} tracker {tracker} {}", up_down(up)),
        );
    }

    /// Node `i`'s link goes up or down ([`Router::set_link`]).
    pub fn set_link(&mut self, i: usize, up: bool) {
        self.input(
            i,
            |r, now| r.set_link(now, up),
            || format!("node {i} link {}", up_down(up)),
        );
    }

    /// Gives node `i`'s router one input at the current time, traces `what`, and delivers
    /// what the router sent.
    fn input(
        &mut self,
        i: usize,
        act: impl FnOnce(&mut Router, Instant),
        what: impl FnOnce() -> String,
    ) {
        self.input_if(
            i,
            |r, now| {
                act(r, now);
                true
            },
            what,
        );
    }

    /// [`input`](Sim::input) for an input the router may refuse: `what` is traced only when
    /// `act` says it took effect.
    fn input_if(
        &mut self,
        i: usize,
        act: impl FnOnce(&mut Router, Instant) -> bool,
        what: impl FnOnce() -> String,
    ) {
        let now = self.now;
        if act(&mut self.nodes[i].router, now) {
            self.log(what);
        }
        self.drain(i);
    }

    /// Splits the segment: `component[i]` for each host.
    pub fn partition(&mut self, components: &[u32]) {
        for (n, &c) in self.nodes.iter_mut().zip(components) {
            n.component = c;
        }
        self.log(|| format!("partition {components:?}"));
    }

    /// A one-way partition: what node `from` sends no longer reaches node `to` (the other
    /// way still works), as a firewall dropping adverts in one direction does.
    pub fn block(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
        self.log(|| format!("node {from} -> node {to} blocked"));
    }

    /// Joins every host into one segment again, and lifts every [`block`](Sim::block).
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.component = 0;
        }
        self.blocked.clear();
        self.log(|| "partition healed".into());
    }

    /// When the driver of node `i` wakes for its next deadline.
    fn wake_time(&self, i: usize) -> Option<Instant> {
        let n = &self.nodes[i];
        if !n.up {
            return None;
        }
        let t = n.router.poll_timeout()?;
        if self.granularity.is_zero() {
            return Some(t);
        }
        // Round up to the driver's tick, as a timer wheel would.
        let g = self.granularity.as_nanos();
        let since = t.saturating_duration_since(self.start).as_nanos();
        let ticks = since.div_ceil(g);
        Some(self.start + Duration::from_nanos(u64::try_from(ticks * g).unwrap_or(u64::MAX)))
    }

    /// Runs until `until`, processing deliveries and timers in time order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.queue.peek().map(|Reverse(d)| d.at);
            let next_timer = (0..self.nodes.len())
                .filter_map(|i| self.wake_time(i).map(|t| (t, i)))
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Some(Reverse(d)) = self.queue.pop() else {
                    break;
                };
                if self.nodes[d.to].up {
                    let (to, prio) = (d.to, d.payload.get(2).copied());
                    self.log(|| {
                        format!("node {to} receives from {} priority {prio:?}", d.ip.source)
                    });
                    self.nodes[to]
                        .router
                        .handle_packet(d.at.max(self.now), d.ip, &d.payload);
                    self.drain(to);
                }
            } else if let Some((_, i)) = next_timer {
                let now = self.now;
                self.nodes[i].router.handle_timeout(now);
                self.drain(i);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Moves node `i`'s transmits onto the wire and records its transitions.
    fn drain(&mut self, i: usize) {
        while let Some(ev) = self.nodes[i].router.poll_event() {
            if let Event::StateChanged { from, to, reason } = &ev {
                let (from, to) = (*from, *to);
                self.nodes[i].transitions.push(Transition {
                    at: self.now,
                    from,
                    to,
                    reason: reason.clone(),
                });
                self.log(|| format!("node {i} {from} -> {to} ({reason})"));
            } else {
                self.log(|| format!("node {i} {ev:?}"));
                self.nodes[i].events.push((self.now, ev));
            }
        }
        while let Some(tx) = self.nodes[i].router.poll_transmit() {
            if !self.nodes[i].up {
                continue;
            }
            let multicast = tx.destination.is_multicast();
            for to in 0..self.nodes.len() {
                if to == i
                    || self.nodes[to].component != self.nodes[i].component
                    || self.blocked.contains(&(i, to))
                {
                    continue;
                }
                if !multicast && self.nodes[to].addr != tx.destination {
                    continue;
                }
                let copies = if self.rng.chance(self.link.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    if self.rng.chance(self.link.loss) {
                        continue;
                    }
                    let at = self.now + self.link.delay + self.rng.duration_below(self.link.jitter);
                    self.seq += 1;
                    let ip = IpHeader {
                        source: tx.source,
                        destination: tx.destination,
                        ttl: 255,
                    };
                    self.queue.push(Reverse(Delivery {
                        at,
                        seq: self.seq,
                        to,
                        ip,
                        payload: tx.payload.clone(),
                    }));
                }
            }
        }
    }

    /// Nodes that are powered and in `state`.
    pub fn in_state(&self, state: State) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && self.nodes[i].router.state() == state)
            .collect()
    }

    /// The transitions of all nodes since `since`.
    pub fn transitions_since(&self, since: Instant) -> usize {
        self.nodes
            .iter()
            .map(|n| n.transitions.iter().filter(|t| t.at >= since).count())
            .sum()
    }
}
