//! [`SmoothWeightedRoundRobin`]: nginx's smooth weighted round robin.

use crate::algorithm::{Algorithm, Candidate, PickContext};
use crate::cycle::{Cycle, MAX_CYCLE, reduced};

/// nginx's weighted round robin (`ngx_http_upstream_round_robin`): every pick adds each
/// server's weight to its running score, takes the highest score and subtracts the total from
/// it. Heavier servers are spread through the cycle instead of bunched: weights {5, 1, 1} give
/// `a a b a c a a`.
///
/// The sequence is periodic (one cycle is the sum of the weights, divided by their gcd), so it
/// is computed once per change, from the effective weights (slow start applies), and a pick is
/// an atomic increment and a lookup: no lock, O(1) at any number of servers. Excluded servers
/// are skipped and the cycle moves past them, so the others keep their ratio. Cycles longer
/// than 65,536 picks are scaled down (the weights are then followed to within 1/65,536).
#[derive(Clone, Copy, Debug, Default)]
pub struct SmoothWeightedRoundRobin;

impl Algorithm for SmoothWeightedRoundRobin {
    type Table = Cycle;

    fn build(&self, candidates: &[Candidate], _previous: Option<&Cycle>) -> Cycle {
        let weights: Vec<u32> = candidates.iter().map(|c| c.weight.max(1)).collect();
        // nginx restarts the scores when the upstream changes: so does the cycle.
        Cycle::new(smooth_order(&weights), None)
    }

    fn pick(&self, t: &Cycle, candidates: &[Candidate], cx: &PickContext<'_>) -> Option<usize> {
        t.next(candidates, cx)
    }
}

/// One full cycle of nginx's smooth order for `weights` (reduced by their gcd, capped at
/// [`MAX_CYCLE`]), as candidate indices.
pub(crate) fn smooth_order(weights: &[u32]) -> Vec<u32> {
    let w = reduced(weights, MAX_CYCLE);
    let total: u64 = w.iter().sum();
    let total_i = i64::try_from(total).unwrap_or(i64::MAX);
    let mut current = vec![0i64; w.len()];
    let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += i64::try_from(w[i]).unwrap_or(i64::MAX);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total_i;
        order.push(best as u32);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{candidates, sequence};

    #[test]
    fn nginx_smooth_sequence_for_5_1_1() {
        // The sequence from nginx's own description of the algorithm.
        assert_eq!(
            sequence(&SmoothWeightedRoundRobin, &[5, 1, 1], 7),
            "aabacaa"
        );
        assert_eq!(
            sequence(&SmoothWeightedRoundRobin, &[5, 1, 1], 14),
            "aabacaaaabacaa"
        );
        assert_eq!(sequence(&SmoothWeightedRoundRobin, &[1, 1, 1], 6), "abcabc");
        assert_eq!(sequence(&SmoothWeightedRoundRobin, &[2, 1], 6), "abaaba");
    }

    #[test]
    fn excluded_servers_are_skipped_and_the_rest_keep_their_ratio() {
        let c = candidates(&[5, 1, 1]);
        let t = SmoothWeightedRoundRobin.build(&c, None);
        let exclude = [0usize];
        let cx = PickContext {
            key: None,
            exclude: &exclude,
        };
        let picks: String = (0..4)
            .map(|_| {
                let i = SmoothWeightedRoundRobin.pick(&t, &c, &cx).unwrap();
                char::from(b'a' + i as u8)
            })
            .collect();
        assert_eq!(picks, "bcbc");
    }

    /// nginx's live scores, as in `ngx_http_upstream_get_peer`, without any table.
    fn nginx(weights: &[u32], n: usize) -> String {
        let mut current = vec![0i64; weights.len()];
        let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
        (0..n)
            .map(|_| {
                let mut best = 0;
                for (i, &w) in weights.iter().enumerate() {
                    current[i] += i64::from(w);
                    if current[i] > current[best] {
                        best = i;
                    }
                }
                current[best] -= total;
                char::from(b'a' + best as u8)
            })
            .collect()
    }

    #[test]
    fn the_precomputed_cycle_is_nginx_live_sequence() {
        for weights in [
            &[5u32, 1, 1][..],
            &[3, 2],
            &[1],
            &[4, 4, 2, 1],
            &[100, 50, 25],
            &[7, 3, 3, 1],
        ] {
            let n = 3 * weights.iter().sum::<u32>() as usize;
            assert_eq!(
                sequence(&SmoothWeightedRoundRobin, weights, n),
                nginx(weights, n),
                "{weights:?}"
            );
        }
    }

    #[test]
    fn long_cycles_are_capped_and_still_follow_the_weights() {
        let order = smooth_order(&[1_000_000, 1]);
        assert!(order.len() as u64 <= MAX_CYCLE + 1);
        assert_eq!(
            order.iter().filter(|&&i| i == 1).count(),
            1,
            "the light one keeps a turn"
        );
    }
}
