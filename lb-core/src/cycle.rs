//! [`Cycle`]: a precomputed periodic pick sequence and the atomic position in it, shared by
//! the round-robin family (each computes its own order).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::algorithm::{Candidate, PickContext};

/// Cycles longer than this are computed over scaled-down weights (each at least 1), so that
/// extreme weight ratios cannot make a table of millions of entries.
pub(crate) const MAX_CYCLE: u64 = 1 << 16;

/// One period of a pick sequence (candidate indices) and the position in it.
#[derive(Debug)]
pub struct Cycle {
    order: Vec<u32>,
    cursor: AtomicUsize,
}

impl Cycle {
    pub(crate) fn new(order: Vec<u32>, previous: Option<&Cycle>) -> Cycle {
        Cycle {
            order,
            cursor: AtomicUsize::new(previous.map_or(0, |p| p.cursor.load(Ordering::Relaxed))),
        }
    }

    /// The next candidate: one atomic increment and a lookup. Excluded candidates are skipped
    /// and the position moves past them, so the others keep their ratio.
    pub(crate) fn next(&self, candidates: &[Candidate], cx: &PickContext<'_>) -> Option<usize> {
        let len = self.order.len();
        if len == 0 {
            return None;
        }
        let at = self.cursor.fetch_add(1, Ordering::Relaxed);
        let first = self.order[at % len] as usize;
        if cx.exclude.is_empty() || !cx.excludes(&candidates[first]) {
            return Some(first);
        }
        let (k, i) = (1..len)
            .map(|k| (k, self.order[(at + k) % len] as usize))
            .find(|&(_, i)| !cx.excludes(&candidates[i]))?;
        self.cursor.fetch_add(k, Ordering::Relaxed);
        Some(i)
    }
}

/// `weights` divided by their greatest common divisor and, if their sum exceeds `max`, scaled
/// down to about `max` (each at least 1).
pub(crate) fn reduced(weights: &[u32], max: u64) -> Vec<u64> {
    let g = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    if g == 0 {
        return vec![0; weights.len()];
    }
    let w: Vec<u64> = weights.iter().map(|&w| u64::from(w / g)).collect();
    let total: u64 = w.iter().sum();
    if total <= max {
        return w;
    }
    w.iter().map(|&x| (x * max / total).max(1)).collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}
