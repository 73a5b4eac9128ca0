//! [`PowerOfTwoChoices`]: two random servers, the less loaded wins (tower's p2c).

use crate::algorithm::{Algorithm, Candidate, Cx, first_allowed};
use crate::random::{Random, RandomTable};
use crate::rng::Rng;

/// What "less loaded" means for [`PowerOfTwoChoices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum P2cMetric {
    /// Requests in flight per unit of weight.
    #[default]
    InFlight,
    /// tower's peak-EWMA cost: latency estimate × (in flight + 1), per unit of weight. Servers
    /// without a latency sample yet cost like the fastest known (so new servers get tried).
    PeakEwma,
}

/// Power of two random choices (Mitzenmacher; tower's `p2c::Balance`): sample two distinct
/// servers, each in proportion to its weight (uniformly when weights are equal), send to the
/// one with the lower load per unit of weight; on a tie the first drawn wins, so without load
/// the traffic follows the weights. O(log servers) per pick, no shared state written,
/// near-least-loaded balance.
///
/// The two are drawn from fastrand's thread-local generator; [`with_seed`](Self::with_seed)
/// makes the draws repeat from run to run (for tests).
#[derive(Clone, Debug, Default)]
pub struct PowerOfTwoChoices {
    /// The load measure.
    pub metric: P2cMetric,
    rng: Rng,
}

impl PowerOfTwoChoices {
    /// By requests in flight.
    pub fn in_flight() -> Self {
        PowerOfTwoChoices {
            metric: P2cMetric::InFlight,
            rng: Rng::thread_local(),
        }
    }

    /// By peak-EWMA latency (record it with [`InFlight::finish`](crate::InFlight::finish)).
    pub fn peak_ewma() -> Self {
        PowerOfTwoChoices {
            metric: P2cMetric::PeakEwma,
            rng: Rng::thread_local(),
        }
    }

    /// Draws the two from a generator seeded with `seed`: the same seed and the same loads
    /// give the same picks (from one thread; picks from several threads at once share the
    /// sequence in arrival order).
    ///
    /// ```
    /// use lb_core::PowerOfTwoChoices;
    ///
    /// let p2c = PowerOfTwoChoices::in_flight().with_seed(42);
    /// # let _ = p2c;
    /// ```
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::seeded(seed);
        self
    }

    /// Cost as a fraction num/den, compared by cross-multiplying. `latency_ns` is the
    /// candidate's sample as read once by the caller; `floor_ns` stands in when it has none.
    fn cost(&self, c: &Candidate, latency_ns: Option<u64>, floor_ns: u64) -> (u128, u128) {
        let in_flight = c.load.in_flight() as u128;
        let weight = u128::from(c.weight.max(1));
        match self.metric {
            P2cMetric::InFlight => (in_flight, weight),
            P2cMetric::PeakEwma => {
                let latency = latency_ns.unwrap_or(floor_ns);
                (u128::from(latency.max(1)) * (in_flight + 1), weight)
            }
        }
    }
}

impl Algorithm for PowerOfTwoChoices {
    type Table = RandomTable;

    fn uses_latency(&self) -> bool {
        self.metric == P2cMetric::PeakEwma
    }

    fn build(&self, candidates: &[Candidate], _previous: Option<&RandomTable>) -> RandomTable {
        Random::new().build(candidates, None)
    }

    fn pick(&self, t: &RandomTable, candidates: &[Candidate], cx: &Cx<'_>) -> Option<usize> {
        let Some((a, b)) = t.draw_two(&self.rng) else {
            return first_allowed(candidates, cx, 0);
        };
        let (a, b) = match (cx.excludes(&candidates[a]), cx.excludes(&candidates[b])) {
            (false, false) => (a, b),
            (false, true) => return Some(a),
            (true, false) => return Some(b),
            (true, true) => return first_allowed(candidates, cx, a),
        };
        let latency = |c: &Candidate| c.load.latency().map(|d| d.as_nanos() as u64);
        let (la, lb) = match self.metric {
            P2cMetric::InFlight => (None, None),
            P2cMetric::PeakEwma => (latency(&candidates[a]), latency(&candidates[b])),
        };
        // The floor (the fastest latency known) stands in for a missing sample. When both of
        // the two have a sample it is unused, and when neither has one it scales both costs
        // alike and drops out of the comparison: only then (a new server) is it worth a walk
        // over every candidate.
        let floor = if la.is_some() == lb.is_some() {
            1
        } else {
            candidates.iter().filter_map(latency).min().unwrap_or(1)
        };
        let (an, ad) = self.cost(&candidates[a], la, floor);
        let (bn, bd) = self.cost(&candidates[b], lb, floor);
        Some(if an * bd <= bn * ad { a } else { b })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::algorithm::PickContext;
    use crate::algorithm::testing::candidates;

    #[test]
    fn the_less_loaded_of_two_wins_and_a_single_server_always() {
        let c = candidates(&[1, 1]);
        c[0].load.in_flight_counter().store(10, Ordering::Relaxed);
        let p = PowerOfTwoChoices::in_flight();
        let t = p.build(&c, None);
        for _ in 0..100 {
            assert_eq!(p.pick(&t, &c, &PickContext::default()), Some(1));
        }
        let one = candidates(&[1]);
        let t = p.build(&one, None);
        assert_eq!(p.pick(&t, &one, &PickContext::default()), Some(0));
    }

    #[test]
    fn the_two_drawn_are_distinct_and_an_idle_pick_follows_the_first_draw() {
        let c = candidates(&[5, 1, 3]);
        let p = PowerOfTwoChoices::in_flight();
        let t = p.build(&c, None);
        let mut firsts = [0u32; 3];
        for _ in 0..3000 {
            let (a, b) = t.draw_two(&Rng::thread_local()).unwrap();
            assert_ne!(a, b);
            assert!(a < 3 && b < 3);
            firsts[a] += 1;
        }
        // Drawn by weight: 5 : 1 : 3 (loosely; exactness is tests/fairness.rs's job).
        assert!(firsts[0] > firsts[2] && firsts[2] > firsts[1], "{firsts:?}");
    }

    #[test]
    fn a_server_without_a_sample_costs_like_the_fastest_known() {
        let p = PowerOfTwoChoices::peak_ewma();
        // b has no sample: it costs c's 1 ms, so it beats a's 50 ms and ties with c.
        let c = candidates(&[1, 1, 1]);
        c[0].load.set_latency_for_test(50_000_000);
        c[2].load.set_latency_for_test(1_000_000);
        let t = p.build(&c, None);
        let mut counts = [0usize; 3];
        for _ in 0..300 {
            counts[p.pick(&t, &c, &PickContext::default()).expect("a pick")] += 1;
        }
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] > 0 && counts[2] > 0, "{counts:?}");
        // The stand-in is multiplied by in flight + 1 like a sample: b (no sample, 1 request
        // in flight) costs 2 × 1 ms and loses to a (1 ms, idle).
        let two = candidates(&[1, 1]);
        two[0].load.set_latency_for_test(1_000_000);
        two[1].load.in_flight_counter().store(1, Ordering::Relaxed);
        let t = p.build(&two, None);
        for _ in 0..50 {
            assert_eq!(p.pick(&t, &two, &PickContext::default()), Some(0));
        }
        // Neither sampled: in flight decides.
        let fresh = candidates(&[1, 1]);
        fresh[0]
            .load
            .in_flight_counter()
            .store(1, Ordering::Relaxed);
        let t = p.build(&fresh, None);
        for _ in 0..50 {
            assert_eq!(p.pick(&t, &fresh, &PickContext::default()), Some(1));
        }
    }

    #[test]
    fn peak_ewma_prefers_the_faster_server() {
        let c = candidates(&[1, 1]);
        c[0].load.set_latency_for_test(50_000_000);
        c[1].load.set_latency_for_test(1_000_000);
        let p = PowerOfTwoChoices::peak_ewma();
        let t = p.build(&c, None);
        for _ in 0..100 {
            assert_eq!(p.pick(&t, &c, &PickContext::default()), Some(1));
        }
    }
}
