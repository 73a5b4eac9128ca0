//! [`RoundRobin`]: HAProxy's `roundrobin`: weighted turns that follow weight changes at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::algorithm::{Algorithm, Candidate, PickContext};
use crate::cycle::{Cycle, MAX_CYCLE, reduced};

/// Weighted round robin with dynamic weights (HAProxy `balance roundrobin`, the default).
///
/// Each server has a next turn on a virtual clock and advances by `1 / weight` of a cycle when
/// picked; the pick is the earliest turn, ties going to the server listed first. Equal weights
/// give plain turns `a b c a b c`; weights {5, 1, 1} give `a a a b c a a` per cycle. The
/// sequence is periodic, so it is computed once per change (from the effective weights: slow
/// start and reweighting apply, as HAProxy's dynamic weights do) and a pick is one atomic
/// increment and a lookup, lock-free. An excluded server is skipped and loses that turn. See
/// [`StaticRoundRobin`](crate::StaticRoundRobin) (configured weights, nginx's order) and
/// [`SmoothWeightedRoundRobin`](crate::SmoothWeightedRoundRobin) (nginx's order, effective
/// weights).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl Algorithm for RoundRobin {
    type Table = Cycle;

    fn build(&self, candidates: &[Candidate], previous: Option<&Cycle>) -> Cycle {
        let weights: Vec<u32> = candidates.iter().map(|c| c.weight.max(1)).collect();
        Cycle::new(turn_order(&weights), previous)
    }

    fn pick(&self, t: &Cycle, candidates: &[Candidate], cx: &PickContext<'_>) -> Option<usize> {
        t.next(candidates, cx)
    }
}

/// One cycle of earliest-turn-first order: each server's turns are `1 / weight` of a cycle
/// apart, its first half a step in; a heap gives the earliest.
fn turn_order(weights: &[u32]) -> Vec<u32> {
    let w = reduced(weights, MAX_CYCLE);
    let total: u64 = w.iter().sum();
    // The cycle on the virtual clock: twice the least common multiple of the weights, so that
    // every step and half step is an exact integer; past 2^64 (many distinct weights) a fixed
    // cycle of 2^64 rounds the steps, which only perturbs ties. Turns stay below
    // 2^16 × 2^64, far inside u128.
    let lcm = w
        .iter()
        .map(|&x| u128::from(x.max(1)))
        .try_fold(1u128, |a, b| {
            (a / gcd128(a, b)).checked_mul(b).filter(|&l| l <= 1 << 64)
        });
    let cycle = 2 * lcm.unwrap_or(1 << 64);
    let steps: Vec<u128> = w.iter().map(|&x| cycle / u128::from(x.max(1))).collect();
    let mut turns: BinaryHeap<Reverse<(u128, u32)>> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| Reverse((s / 2, i as u32)))
        .collect();
    let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let Some(mut top) = turns.peek_mut() else {
            break;
        };
        let Reverse((at, i)) = *top;
        *top = Reverse((at + steps[i as usize], i));
        order.push(i);
    }
    order
}

fn gcd128(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd128(b, a % b) }
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
    fn an_excluded_server_loses_its_turn_the_others_keep_their_order() {
        let c = candidates(&[1, 1, 1]);
        let t = RoundRobin.build(&c, None);
        let exclude = [1usize];
        let skip_b = PickContext {
            key: None,
            exclude: &exclude,
        };
        let mut picks = String::new();
        for cx in [
            skip_b,
            skip_b,
            PickContext::default(),
            PickContext::default(),
        ] {
            picks.push(char::from(
                b'a' + RoundRobin.pick(&t, &c, &cx).unwrap() as u8,
            ));
        }
        // a; b is skipped (c instead) and the cycle moves past it; then a, b again.
        assert_eq!(picks, "acab");
    }
}
