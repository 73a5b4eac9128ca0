//! [`PowerOfTwoChoices`]: two random servers, the less loaded wins (tower's p2c).

use crate::algorithm::{Algorithm, Candidate, Context, first_allowed};
use crate::random::{Random, RandomTable};

/// What "less loaded" means for [`PowerOfTwoChoices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum P2cMetric {
    /// Requests in flight per unit of weight.
    #[default]
    InFlight,
    /// tower's peak-EWMA cost: latency estimate × (in flight + 1), per unit of weight. A server
    /// without a latency sample yet is costed with the other sampled server's latency (so new
    /// servers get tried, compared by in-flight alone).
    PeakEwma,
}

/// Power of two random choices (Mitzenmacher; tower's `p2c::Balance`): sample two distinct
/// servers, each in proportion to its weight (uniformly when weights are equal), send to the
/// one with the lower load per unit of weight; on a tie the first drawn wins, so without load
/// the traffic follows the weights. O(log servers) per pick, no shared state written,
/// near-least-loaded balance.
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerOfTwoChoices {
    /// The load measure.
    pub metric: P2cMetric,
}

impl PowerOfTwoChoices {
    /// By requests in flight.
    pub fn in_flight() -> Self {
        PowerOfTwoChoices {
            metric: P2cMetric::InFlight,
        }
    }

    /// By peak-EWMA latency (record it with [`InFlight::finish`](crate::InFlight::finish)).
    pub fn peak_ewma() -> Self {
        PowerOfTwoChoices {
            metric: P2cMetric::PeakEwma,
        }
    }

    /// Cost as a fraction num/den, compared by cross-multiplying.
    fn cost(&self, c: &Candidate, latency_ns: u64) -> (u128, u128) {
        let in_flight = c.load.in_flight() as u128;
        let weight = u128::from(c.weight.max(1));
        match self.metric {
            P2cMetric::InFlight => (in_flight, weight),
            P2cMetric::PeakEwma => (u128::from(latency_ns.max(1)) * (in_flight + 1), weight),
        }
    }
}

impl Algorithm for PowerOfTwoChoices {
    type Table = RandomTable;

    fn uses_latency(&self) -> bool {
        self.metric == P2cMetric::PeakEwma
    }

    fn build(&self, candidates: &[Candidate], _previous: Option<&RandomTable>) -> RandomTable {
        Random.build(candidates, None)
    }

    fn pick(&self, t: &RandomTable, candidates: &[Candidate], cx: &Context<'_>) -> Option<usize> {
        let Some((a, b)) = t.draw_two() else {
            return first_allowed(candidates, cx, 0);
        };
        let (a, b) = match (cx.excludes(&candidates[a]), cx.excludes(&candidates[b])) {
            (false, false) => (a, b),
            (false, true) => return Some(a),
            (true, false) => return Some(b),
            (true, true) => return first_allowed(candidates, cx, a),
        };
        let latency = |c: &Candidate| c.load.latency().map(|d| d.as_nanos() as u64);
        let (la, lb) = (latency(&candidates[a]), latency(&candidates[b]));
        let (an, ad) = self.cost(&candidates[a], la.or(lb).unwrap_or(1));
        let (bn, bd) = self.cost(&candidates[b], lb.or(la).unwrap_or(1));
        Some(if an * bd <= bn * ad { a } else { b })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::algorithm::testing::candidates;

    #[test]
    fn the_less_loaded_of_two_wins_and_a_single_server_always() {
        let c = candidates(&[1, 1]);
        c[0].load.in_flight_counter().store(10, Ordering::Relaxed);
        let p = PowerOfTwoChoices::in_flight();
        let t = p.build(&c, None);
        for _ in 0..100 {
            assert_eq!(p.pick(&t, &c, &Context::default()), Some(1));
        }
        let one = candidates(&[1]);
        let t = p.build(&one, None);
        assert_eq!(p.pick(&t, &one, &Context::default()), Some(0));
    }

    #[test]
    fn the_two_drawn_are_distinct_and_an_idle_pick_follows_the_first_draw() {
        let c = candidates(&[5, 1, 3]);
        let p = PowerOfTwoChoices::in_flight();
        let t = p.build(&c, None);
        let mut firsts = [0u32; 3];
        for _ in 0..3000 {
            let (a, b) = t.draw_two().unwrap();
            assert_ne!(a, b);
            assert!(a < 3 && b < 3);
            firsts[a] += 1;
        }
        // Drawn by weight: 5 : 1 : 3 (loosely; exactness is tests/fairness.rs's job).
        assert!(firsts[0] > firsts[2] && firsts[2] > firsts[1], "{firsts:?}");
    }

    #[test]
    fn peak_ewma_prefers_the_faster_server() {
        let c = candidates(&[1, 1]);
        c[0].load.set_latency_for_test(50_000_000);
        c[1].load.set_latency_for_test(1_000_000);
        let p = PowerOfTwoChoices::peak_ewma();
        let t = p.build(&c, None);
        for _ in 0..100 {
            assert_eq!(p.pick(&t, &c, &Context::default()), Some(1));
        }
    }
}
