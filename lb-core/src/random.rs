//! [`Random`]: HAProxy's `random` (weighted).

use crate::algorithm::{Algorithm, Candidate, Cx, first_allowed};
use crate::rng::Rng;

/// A server at random, in proportion to its weight (HAProxy `balance random(1)`). O(log
/// servers) per pick by binary search over cumulative weights.
///
/// Draws come from fastrand's thread-local generator; [`with_seed`](Self::with_seed) makes
/// them repeat from run to run (for tests):
///
/// ```
/// use lb_core::{BackendSet, PickContext, Random};
///
/// let picks = |seed| {
///     let set = BackendSet::new(Random::with_seed(seed));
///     for name in ["a", "b", "c"] {
///         set.insert(name, 1).expect("a new name");
///     }
///     (0..8).map(|_| set.pick(&PickContext::default()).expect("a pick").0).collect::<Vec<_>>()
/// };
/// assert_eq!(picks(42), picks(42));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Random {
    rng: Rng,
}

impl Random {
    /// Draws from fastrand's thread-local generator (a new sequence every run).
    pub fn new() -> Self {
        Random::default()
    }

    /// Draws from a generator seeded with `seed`: the same seed, the same picks (from one
    /// thread; picks from several threads at once share the sequence in arrival order).
    pub fn with_seed(seed: u64) -> Self {
        Random {
            rng: Rng::seeded(seed),
        }
    }
}

/// Cumulative effective weights.
#[derive(Debug)]
pub struct RandomTable {
    cumulative: Vec<u64>,
}

impl RandomTable {
    /// Two distinct candidates, each drawn in proportion to its weight (the second among the
    /// others); `None` with fewer than two candidates.
    pub(crate) fn draw_two(&self, rng: &Rng) -> Option<(usize, usize)> {
        let total = *self.cumulative.last()?;
        let r = rng.below(total);
        let a = self.cumulative.partition_point(|&c| c <= r);
        let before_a = if a == 0 { 0 } else { self.cumulative[a - 1] };
        let weight_a = self.cumulative[a] - before_a;
        let rest = total - weight_a;
        if rest == 0 {
            return None;
        }
        // A draw over the other candidates' weights, stepping over a's range.
        let mut r = rng.below(rest);
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

    fn pick(&self, t: &RandomTable, candidates: &[Candidate], cx: &Cx<'_>) -> Option<usize> {
        let total = *t.cumulative.last()?;
        // A few draws; with most servers excluded fall back to a walk.
        for _ in 0..4 {
            let r = self.rng.below(total);
            let i = t.cumulative.partition_point(|&c| c <= r);
            if !cx.excludes(&candidates[i]) {
                return Some(i);
            }
        }
        let start = self.rng.below(candidates.len() as u64) as usize;
        first_allowed(candidates, cx, start)
    }
}
