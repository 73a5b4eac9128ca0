//! [`Random`]: HAProxy's `random` (weighted).

use crate::algorithm::{Algorithm, Candidate, Context, first_allowed};

/// A server at random, in proportion to its weight (HAProxy `balance random(1)`). O(log
/// servers) per pick by binary search over cumulative weights.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

/// Cumulative effective weights.
#[derive(Debug)]
pub struct RandomTable {
    cumulative: Vec<u64>,
}

impl RandomTable {
    /// Two distinct candidates, each drawn in proportion to its weight (the second among the
    /// others); `None` with fewer than two candidates.
    pub(crate) fn draw_two(&self) -> Option<(usize, usize)> {
        let total = *self.cumulative.last()?;
        let r = fastrand::u64(..total);
        let a = self.cumulative.partition_point(|&c| c <= r);
        let before_a = if a == 0 { 0 } else { self.cumulative[a - 1] };
        let weight_a = self.cumulative[a] - before_a;
        let rest = total - weight_a;
        if rest == 0 {
            return None;
        }
        // A draw over the other candidates' weights, stepping over a's range.
        let mut r = fastrand::u64(..rest);
        if r >= before_a {
            r += weight_a;
        }
        let b = self.cumulative.partition_point(|&c| c <= r);
        Some((a, b))
    }
}

impl Algorithm for Random {
    type Table = RandomTable;

    fn build(&self, candidates: &[Candidate], _previous: Option<&RandomTable>) -> RandomTable {
        let mut total = 0u64;
        let cumulative = candidates
            .iter()
            .map(|c| {
                total += u64::from(c.weight.max(1));
                total
            })
            .collect();
        RandomTable { cumulative }
    }

    fn pick(&self, t: &RandomTable, candidates: &[Candidate], cx: &Context<'_>) -> Option<usize> {
        let total = *t.cumulative.last()?;
        // A few draws; with most servers excluded fall back to a walk.
        for _ in 0..4 {
            let r = fastrand::u64(..total);
            let i = t.cumulative.partition_point(|&c| c <= r);
            if !cx.excludes(&candidates[i]) {
                return Some(i);
            }
        }
        first_allowed(candidates, cx, fastrand::usize(..candidates.len()))
    }
}
