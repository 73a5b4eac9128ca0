//! A deterministic network simulator for `vrrp_core::Router`s: N routers on one simulated L2
//! segment, a virtual clock, a seeded RNG, and faults no lab produces on demand (delay, jitter,
//! loss, duplication, reordering, partitions, crashes and restarts, tracker changes, the
//! driver's timer granularity). Everything is a function of the seed, so a failing run is
//! replayed from its seed and its trace.
#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vrrp_core::packet::IpHeader;
use vrrp_core::router::{Config, Event, Router, State};

/// SplitMix64: small, fast, and good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn duration_below(&mut self, max: Duration) -> Duration {
        let n = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.below(n.max(1)))
    }
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
pub struct Node {
    pub router: Router,
    pub addr: IpAddr,
    /// Powered on (a crash clears it; the router is rebuilt on restart).
    pub up: bool,
    /// Partition component; hosts hear each other only within one.
    pub component: u32,
    pub transitions: Vec<(Instant, State, State)>,
}

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
pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub link: Link,
    /// The driver wakes on multiples of this (0: exactly at each deadline).
    pub granularity: Duration,
    pub rng: Rng,
    pub trace: Vec<String>,
    /// Keep a textual trace (costs time; on for replays).
    pub tracing: bool,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
}

impl Sim {
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
        }
    }

    /// Adds a powered-on host running `config`, started at the current time.
    pub fn add(&mut self, config: Config) -> usize {
        let addr = config.primary_address;
        let mut router = Router::new(config).expect("valid simulated config");
        router.startup(self.now);
        self.nodes.push(Node {
            router,
            addr,
            up: true,
            component: 0,
            transitions: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.drain(i);
        i
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

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
        let mut router = Router::new(config).expect("valid simulated config");
        router.startup(self.now);
        self.nodes[i].router = router;
        self.nodes[i].up = true;
        self.log(|| format!("node {i} restarts"));
        self.drain(i);
    }

    /// Graceful stop (priority-0 advert from a Master).
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].router.shutdown(now);
        self.log(|| format!("node {i} shuts down"));
        self.drain(i);
    }

    pub fn startup(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].router.startup(now);
        self.log(|| format!("node {i} starts up"));
        self.drain(i);
    }

    pub fn set_tracker(&mut self, i: usize, tracker: usize, up: bool) {
        let now = self.now;
        self.nodes[i].router.set_tracker(now, tracker, up);
        self.log(|| {
            format!(
                "node {i} tracker {tracker} {}",
                if up { "up" } else { "down" }
            )
        });
        self.drain(i);
    }

    pub fn set_link(&mut self, i: usize, up: bool) {
        let now = self.now;
        self.nodes[i].router.set_link(now, up);
        self.log(|| format!("node {i} link {}", if up { "up" } else { "down" }));
        self.drain(i);
    }

    /// Splits the segment: `component[i]` for each host.
    pub fn partition(&mut self, components: &[u32]) {
        for (n, &c) in self.nodes.iter_mut().zip(components) {
            n.component = c;
        }
        self.log(|| format!("partition {components:?}"));
    }

    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.component = 0;
        }
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

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Moves node `i`'s transmits onto the wire and records its transitions.
    fn drain(&mut self, i: usize) {
        while let Some(ev) = self.nodes[i].router.poll_event() {
            if let Event::StateChanged { from, to, reason } = &ev {
                let (from, to) = (*from, *to);
                self.nodes[i].transitions.push((self.now, from, to));
                let r = reason.to_string();
                self.log(|| format!("node {i} {from} -> {to} ({r})"));
            }
        }
        while let Some(tx) = self.nodes[i].router.poll_transmit() {
            if !self.nodes[i].up {
                continue;
            }
            let multicast = tx.destination.is_multicast();
            for to in 0..self.nodes.len() {
                if to == i || self.nodes[to].component != self.nodes[i].component {
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
            .map(|n| n.transitions.iter().filter(|t| t.0 >= since).count())
            .sum()
    }
}
