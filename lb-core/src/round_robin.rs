//! [`RoundRobin`]: HAProxy's `roundrobin`: weighted turns that follow weight changes at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use crate::algorithm::{Algorithm, Candidate, Context};

/// Weighted round robin with dynamic weights (HAProxy `balance roundrobin`, the default).
///
/// Each server has a next turn on a virtual clock and advances by `1 / weight` of a cycle when
/// picked; the pick is the earliest turn (a heap: O(log servers)), ties going to the server
/// listed first. Equal weights give plain turns `a b c a b c`; weights {5, 1, 1} give
/// `a a a b c a a` per cycle. Effective weights (slow start, reweighting) apply from the next
/// rebuild, which every change triggers, like HAProxy's dynamic weights. See
/// [`StaticRoundRobin`](crate::StaticRoundRobin) for the O(1) precomputed variant and
/// [`SmoothWeightedRoundRobin`](crate::SmoothWeightedRoundRobin) for nginx's order.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

/// The turn heap: (next turn, candidate index).
#[derive(Debug)]
pub struct RoundRobinTable {
    turns: Mutex<BinaryHeap<Reverse<(u64, u32)>>>,
    steps: Vec<u64>,
}

/// One cycle on the virtual clock; a server of weight w advances by CYCLE / w per turn.
const CYCLE: u64 = 1 << 40;

impl Algorithm for RoundRobin {
    type Table = RoundRobinTable;

    fn build(
        &self,
        candidates: &[Candidate],
        _previous: Option<&RoundRobinTable>,
    ) -> RoundRobinTable {
        let steps: Vec<u64> = candidates
            .iter()
            .map(|c| CYCLE / u64::from(c.weight.max(1)))
            .collect();
        // First turns at half a step: servers of equal weight start level and go in order.
        let turns = steps
            .iter()
            .enumerate()
            .map(|(i, s)| Reverse((s / 2, i as u32)))
            .collect();
        RoundRobinTable {
            turns: Mutex::new(turns),
            steps,
        }
    }

    fn pick(
        &self,
        t: &RoundRobinTable,
        candidates: &[Candidate],
        cx: &Context<'_>,
    ) -> Option<usize> {
        let mut turns = t
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cx.exclude.is_empty() {
            let mut top = turns.peek_mut()?;
            let Reverse((at, i)) = *top;
            *top = Reverse((at + t.steps[i as usize], i));
            return Some(i as usize);
        }
        // Excluded servers keep their turn: set them aside, take the first allowed one.
        let mut aside = Vec::new();
        let mut chosen = None;
        while let Some(Reverse((at, i))) = turns.pop() {
            if cx.excludes(&candidates[i as usize]) {
                aside.push(Reverse((at, i)));
            } else {
                turns.push(Reverse((at + t.steps[i as usize], i)));
                chosen = Some(i as usize);
                break;
            }
        }
        turns.extend(aside);
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{candidates, sequence};

    #[test]
    fn haproxy_roundrobin_turns() {
        assert_eq!(sequence(&RoundRobin, &[1, 1, 1], 7), "abcabca");
        assert_eq!(sequence(&RoundRobin, &[5, 1, 1], 14), "aaabcaaaaabcaa");
        assert_eq!(sequence(&RoundRobin, &[2, 1], 6), "abaaba");
    }

    #[test]
    fn an_excluded_server_keeps_its_turn() {
        let c = candidates(&[1, 1, 1]);
        let t = RoundRobin.build(&c, None);
        let exclude = [1usize];
        let skip_b = Context {
            key: None,
            exclude: &exclude,
        };
        let mut picks = String::new();
        for cx in [skip_b, skip_b, Context::default(), Context::default()] {
            picks.push(char::from(
                b'a' + RoundRobin.pick(&t, &c, &cx).unwrap() as u8,
            ));
        }
        // b was due second; skipped twice, it is still due before a and c's next turns.
        assert_eq!(picks, "acba");
    }
}
