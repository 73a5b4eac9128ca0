//! [`LeastConnections`]: HAProxy's `leastconn`.

use std::sync::Mutex;

use crate::algorithm::{Algorithm, Candidate, Context};

/// The server with the fewest requests in flight per unit of weight (HAProxy `balance
/// leastconn`): `in_flight / weight`, compared exactly by cross-multiplying. Ties are broken by
/// smooth weighted round robin among the tied servers (nginx's `least_conn`), so idle servers
/// share the load in proportion to their weights instead of the first one taking it all
/// (equal weights simply rotate). O(servers) per pick; the tie scores sit behind a lock taken
/// only when several servers tie.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConnections;

/// The smooth weighted round robin scores that break ties.
#[derive(Debug, Default)]
pub struct LeastConnTable {
    current: Mutex<Vec<i64>>,
}

impl Algorithm for LeastConnections {
    type Table = LeastConnTable;

    fn build(
        &self,
        candidates: &[Candidate],
        _previous: Option<&LeastConnTable>,
    ) -> LeastConnTable {
        // nginx restarts the scores when the upstream changes.
        LeastConnTable {
            current: Mutex::new(vec![0; candidates.len()]),
        }
    }

    fn pick(
        &self,
        t: &LeastConnTable,
        candidates: &[Candidate],
        cx: &Context<'_>,
    ) -> Option<usize> {
        // load / weight compared without division: (load, weight) per candidate.
        let cost = |c: &Candidate| (c.load.in_flight() as u64, u64::from(c.weight.max(1)));
        let mut best: Option<(usize, u64, u64)> = None;
        let mut ties = 0usize;
        for (i, c) in candidates.iter().enumerate() {
            if cx.excludes(c) {
                continue;
            }
            let (load, weight) = cost(c);
            match best {
                Some((_, bl, bw)) if load * bw > bl * weight => {}
                Some((_, bl, bw)) if load * bw == bl * weight => ties += 1,
                _ => {
                    best = Some((i, load, weight));
                    ties = 1;
                }
            }
        }
        let (first, bl, bw) = best?;
        if ties == 1 {
            return Some(first);
        }
        // Several tie: smooth weighted round robin among them (nginx's rule).
        let mut current = t
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut total = 0i64;
        let mut chosen = first;
        for (i, c) in candidates.iter().enumerate().skip(first) {
            if cx.excludes(c) {
                continue;
            }
            let (load, weight) = cost(c);
            // Loads may have moved since the first pass: the tied set is re-read here.
            if i != first && load * bw != bl * weight {
                continue;
            }
            let weight = i64::from(c.weight.max(1));
            current[i] += weight;
            total += weight;
            if current[i] > current[chosen] {
                chosen = i;
            }
        }
        current[chosen] -= total;
        Some(chosen)
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

    #[test]
    fn idle_servers_share_by_weight_in_smooth_order() {
        // nginx's smooth order for {5, 1, 1} while nothing is in flight.
        let c = candidates(&[5, 1, 1]);
        let t = LeastConnections.build(&c, None);
        let picks: Vec<usize> = (0..14)
            .map(|_| LeastConnections.pick(&t, &c, &Context::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
        // Only the tied ones share: with the heavy one busy, b and c alternate.
        set_in_flight(&c[0], 1);
        let picks: Vec<usize> = (0..4)
            .map(|_| LeastConnections.pick(&t, &c, &Context::default()).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
    }
}
