//! [`LeastConnections`]: HAProxy's `leastconn`.

use crate::algorithm::{Algorithm, Candidate, Cx, PickContext};
use crate::cycle::Cycle;
use crate::rng::Rng;
use crate::smooth_weighted::smooth_order;

/// The server with the fewest requests in flight per unit of weight (HAProxy `balance
/// leastconn`): `in_flight / weight`, compared exactly by cross-multiplying. Ties follow the
/// weights, as nginx's `least_conn` breaks them: every pick starts at the next server of a
/// weighted rotation (nginx's smooth order) and takes it if it is idle, so idle servers share
/// the load in proportion to their weights (equal weights simply rotate) instead of the first
/// one taking it all; otherwise the least loaded wins, ties drawn by weight. One pass over the
/// servers per pick, no lock.
///
/// "In flight" is what the [`BackendSet`](crate::BackendSet) counts: under
/// [`Balance`](crate::Balance), from the pick until the response arrives, or, for HTTP, until
/// its body has ended with `Balance::complete_on(CompleteOnBodyEnd)` (feature `http`): use
/// that for HTTP, or a backend that answers its headers at once and streams a slow body
/// looks idle and gets more than its share.
///
/// The draws among equals come from fastrand's thread-local generator;
/// [`with_seed`](Self::with_seed) makes them repeat from run to run (for tests).
#[derive(Clone, Debug, Default)]
pub struct LeastConnections {
    rng: Rng,
}

impl LeastConnections {
    /// Ties among loaded servers drawn from fastrand's thread-local generator.
    pub fn new() -> Self {
        LeastConnections::default()
    }

    /// Ties among loaded servers drawn from a generator seeded with `seed`: the same seed and
    /// the same loads give the same picks (from one thread; picks from several threads at once
    /// share the sequence in arrival order).
    pub fn with_seed(seed: u64) -> Self {
        LeastConnections {
            rng: Rng::seeded(seed),
        }
    }
}

/// The weighted rotation of scan starts.
#[derive(Debug)]
pub struct LeastConnTable {
    starts: Cycle,
}

impl Algorithm for LeastConnections {
    type Table = LeastConnTable;

    fn build(&self, candidates: &[Candidate], previous: Option<&LeastConnTable>) -> LeastConnTable {
        let weights: Vec<u32> = candidates.iter().map(|c| c.weight.max(1)).collect();
        LeastConnTable {
            starts: Cycle::new(smooth_order(&weights), previous.map(|p| &p.starts)),
        }
    }

    fn pick(&self, t: &LeastConnTable, candidates: &[Candidate], cx: &Cx<'_>) -> Option<usize> {
        let n = candidates.len();
        let start = t
            .starts
            .next(candidates, &PickContext::default())
            .unwrap_or(0);
        // The start itself idle: it is the pick (the common case at low load, and what makes
        // idle servers follow the weights exactly).
        let first = &candidates[start];
        if first.load.in_flight() == 0 && !cx.excludes(first) {
            return Some(start);
        }
        // Otherwise the least loaded; among equals, one drawn in proportion to its weight
        // (weighted reservoir sampling in the same pass), so that equal servers behind a busy
        // start share fairly instead of the next one in line taking every tie.
        let mut best: Option<(usize, u64, u64)> = None;
        let mut tied_weight = 0u64;
        // One seed per pick, stepped per tie (xorshift): a thread-local RNG call per tie would
        // cost more than the comparison itself.
        let mut rng = self.rng.u64() | 1;
        for k in 0..n {
            let i = if start + k >= n {
                start + k - n
            } else {
                start + k
            };
            let c = &candidates[i];
            if cx.excludes(c) {
                continue;
            }
            let load = c.load.in_flight() as u64;
            let weight = u64::from(c.weight.max(1));
            match best {
                // load / weight against best_load / best_weight, without division.
                Some((_, bl, bw)) if load * bw > bl * weight => {}
                Some((_, bl, bw)) if load * bw == bl * weight => {
                    tied_weight += weight;
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Multiply-shift: uniform in [0, tied_weight).
                    if ((u128::from(rng) * u128::from(tied_weight)) >> 64) < u128::from(weight) {
                        best = Some((i, load, weight));
                    }
                }
                _ => {
                    best = Some((i, load, weight));
                    tied_weight = weight;
                }
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::algorithm::testing::candidates;

    fn set_in_flight(c: &Candidate, n: usize) {
        // Test-only: drive the counter directly.
        c.load.in_flight_counter().store(n, Ordering::Relaxed);
    }

    #[test]
    fn fewest_in_flight_per_weight_wins() {
        let c = candidates(&[1, 2, 1]);
        let t = LeastConnections::new().build(&c, None);
        set_in_flight(&c[0], 3);
        set_in_flight(&c[1], 4); // 4 / 2 = 2 per weight: the least
        set_in_flight(&c[2], 3);
        for _ in 0..5 {
            assert_eq!(
                LeastConnections::new().pick(&t, &c, &PickContext::default()),
                Some(1)
            );
        }
    }

    /// `n` picks from `c`, nothing changing in between.
    fn picks(t: &LeastConnTable, c: &[Candidate], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                LeastConnections::new()
                    .pick(t, c, &PickContext::default())
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn ties_rotate_instead_of_always_the_first() {
        let c = candidates(&[1, 1, 1]);
        let t = LeastConnections::new().build(&c, None);
        let picks = picks(&t, &c, 6);
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn idle_servers_share_by_weight_in_smooth_order() {
        // nginx's smooth order for {5, 1, 1} while nothing is in flight.
        let c = candidates(&[5, 1, 1]);
        let t = LeastConnections::new().build(&c, None);
        let picks = picks(&t, &c, 14);
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
        // Only the tied ones share: with the heavy one busy, b and c split the picks evenly
        // (not b, next in line after a, taking them all).
        set_in_flight(&c[0], 1);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[LeastConnections::new()
                .pick(&t, &c, &PickContext::default())
                .unwrap()] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!((4_500..=5_500).contains(&counts[1]), "{counts:?}");
    }
}
