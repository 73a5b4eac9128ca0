//! [`LeastConnections`]: HAProxy's `leastconn`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::algorithm::{Algorithm, Candidate, Context};

/// The server with the fewest requests in flight per unit of weight (HAProxy `balance
/// leastconn`): `in_flight / weight`, compared exactly by cross-multiplying. Ties rotate: the
/// scan starts one server further at every pick, so idle servers share the load instead of the
/// first one taking it all. O(servers) per pick.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConnections;

/// The rotating start of the scan.
#[derive(Debug, Default)]
pub struct LeastConnTable {
    start: AtomicUsize,
}

impl Algorithm for LeastConnections {
    type Table = LeastConnTable;

    fn build(
        &self,
        _candidates: &[Candidate],
        previous: Option<&LeastConnTable>,
    ) -> LeastConnTable {
        LeastConnTable {
            start: AtomicUsize::new(previous.map_or(0, |p| p.start.load(Ordering::Relaxed))),
        }
    }

    fn pick(
        &self,
        t: &LeastConnTable,
        candidates: &[Candidate],
        cx: &Context<'_>,
    ) -> Option<usize> {
        let n = candidates.len();
        let start = t.start.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, u64, u64)> = None;
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
            // load / weight < best_load / best_weight, without division.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                best = Some((i, load, weight));
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
        let t = LeastConnections.build(&c, None);
        set_in_flight(&c[0], 3);
        set_in_flight(&c[1], 4); // 4 / 2 = 2 per weight: the least
        set_in_flight(&c[2], 3);
        for _ in 0..5 {
            assert_eq!(LeastConnections.pick(&t, &c, &Context::default()), Some(1));
        }
    }

    #[test]
    fn ties_rotate_instead_of_always_the_first() {
        let c = candidates(&[1, 1, 1]);
        let t = LeastConnections.build(&c, None);
        let picks: Vec<usize> = (0..6)
            .map(|_| LeastConnections.pick(&t, &c, &Context::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
