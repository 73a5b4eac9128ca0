//! [`SmoothWeightedRoundRobin`]: nginx's smooth weighted round robin.

use std::sync::Mutex;

use crate::algorithm::{Algorithm, Candidate, Context};

/// nginx's weighted round robin (`ngx_http_upstream_round_robin`): every pick adds each
/// server's weight to its running score, takes the highest score and subtracts the total from
/// it. Heavier servers are spread through the cycle instead of bunched: weights {5, 1, 1} give
/// `a a b a c a a`. Follows effective weights (slow start) and carries no table; the scores sit
/// behind a lock, so picks are O(servers).
#[derive(Clone, Copy, Debug, Default)]
pub struct SmoothWeightedRoundRobin;

/// The running scores.
#[derive(Debug)]
pub struct SmoothTable {
    current: Mutex<Vec<i64>>,
}

impl Algorithm for SmoothWeightedRoundRobin {
    type Table = SmoothTable;

    fn build(&self, candidates: &[Candidate], _previous: Option<&SmoothTable>) -> SmoothTable {
        // nginx restarts the scores when the upstream changes.
        SmoothTable {
            current: Mutex::new(vec![0; candidates.len()]),
        }
    }

    fn pick(&self, t: &SmoothTable, candidates: &[Candidate], cx: &Context<'_>) -> Option<usize> {
        let mut current = t
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, c) in candidates.iter().enumerate() {
            if cx.excludes(c) {
                continue;
            }
            let w = i64::from(c.weight);
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        current[b] -= total;
        Some(b)
    }
}

/// One full cycle of the smooth order for `weights` (divided by their gcd), as indices.
pub(crate) fn smooth_order(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    if g == 0 {
        return Vec::new();
    }
    let w: Vec<i64> = weights.iter().map(|&w| i64::from(w / g)).collect();
    let total: i64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u32);
    }
    order
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
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
        let cx = Context {
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

    #[test]
    fn smooth_order_matches_the_live_algorithm() {
        for weights in [&[5u32, 1, 1][..], &[3, 2], &[1], &[4, 4, 2, 1]] {
            let order = smooth_order(weights);
            let total: u32 = weights.iter().sum::<u32>() / weights.iter().copied().fold(0, gcd);
            let live = sequence(&SmoothWeightedRoundRobin, weights, total as usize);
            let table: String = order.iter().map(|&i| char::from(b'a' + i as u8)).collect();
            assert_eq!(table, live, "{weights:?}");
        }
    }
}
