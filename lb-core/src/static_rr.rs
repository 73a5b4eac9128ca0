//! [`StaticRoundRobin`]: HAProxy's `static-rr`: servers in turn by weight, from a map computed
//! once per change; a pick is one atomic increment and a lookup.

use crate::algorithm::{Algorithm, Candidate, PickContext};
use crate::cycle::Cycle;
use crate::smooth_weighted::smooth_order;

/// Weighted round robin from a precomputed rotation (HAProxy `balance static-rr`).
///
/// The rotation is one full cycle in nginx's smooth order (HAProxy builds its static map with
/// the same rule), over the weights divided by their greatest common divisor: weights
/// {5, 1, 1} rotate `a a b a c a a`. Picks are lock-free and O(1) at any number of servers.
/// Unlike [`SmoothWeightedRoundRobin`](crate::SmoothWeightedRoundRobin) it uses the configured
/// weights, so slow start does not apply (as in HAProxy, where static-rr ignores weight changes
/// at run time), and the position carries over membership and health changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticRoundRobin;

impl Algorithm for StaticRoundRobin {
    type Table = Cycle;

    fn build(&self, candidates: &[Candidate], previous: Option<&Cycle>) -> Cycle {
        let weights: Vec<u32> = candidates.iter().map(|c| c.configured_weight).collect();
        Cycle::new(smooth_order(&weights), previous)
    }

    fn pick(&self, t: &Cycle, candidates: &[Candidate], cx: &PickContext<'_>) -> Option<usize> {
        t.next(candidates, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::sequence;

    #[test]
    fn static_rr_rotates_by_weight_in_smooth_order() {
        assert_eq!(sequence(&StaticRoundRobin, &[1, 1, 1], 7), "abcabca");
        assert_eq!(
            sequence(&StaticRoundRobin, &[5, 1, 1], 14),
            "aabacaaaabacaa"
        );
        // Weights are reduced by their gcd: {200, 100} is {2, 1}.
        assert_eq!(sequence(&StaticRoundRobin, &[200, 100], 6), "abaaba");
    }
}
