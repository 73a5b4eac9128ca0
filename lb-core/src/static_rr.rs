//! [`StaticRoundRobin`]: HAProxy's `static-rr`: servers in turn by weight, from a map computed
//! once per change; a pick is one atomic increment and a lookup.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::algorithm::{Algorithm, Candidate, Context};
use crate::smooth_weighted::smooth_order;

/// Weighted round robin from a precomputed rotation (HAProxy `balance static-rr`).
///
/// The rotation is one full cycle in nginx's smooth order (HAProxy builds its static map with
/// the same rule), over the weights divided by their greatest common divisor: weights
/// {5, 1, 1} rotate `a a b a c a a`. Picks are lock-free and O(1) at any number of servers;
/// the price is memory proportional to the sum of weights and that slow start does not apply
/// (the configured weights are used, as in HAProxy, where static-rr ignores weight changes at
/// run time). Membership and health changes rebuild the map; the position carries over.
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticRoundRobin;

/// The rotation and the cursor.
#[derive(Debug)]
pub struct StaticTable {
    rotation: Vec<u32>,
    cursor: AtomicUsize,
}

impl Algorithm for StaticRoundRobin {
    type Table = StaticTable;

    fn build(&self, candidates: &[Candidate], previous: Option<&StaticTable>) -> StaticTable {
        let weights: Vec<u32> = candidates.iter().map(|c| c.configured_weight).collect();
        StaticTable {
            rotation: smooth_order(&weights),
            cursor: AtomicUsize::new(previous.map_or(0, |p| p.cursor.load(Ordering::Relaxed))),
        }
    }

    fn pick(&self, t: &StaticTable, candidates: &[Candidate], cx: &Context<'_>) -> Option<usize> {
        let len = t.rotation.len();
        if len == 0 {
            return None;
        }
        let at = t.cursor.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .map(|k| t.rotation[(at + k) % len] as usize)
            .find(|&i| !cx.excludes(&candidates[i]))
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
