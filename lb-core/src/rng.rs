//! The random source of the randomized algorithms: fastrand's thread-local generator, or a
//! seeded one so that a user's tests see the same picks on every run.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Draws for [`Random`](crate::Random), [`PowerOfTwoChoices`](crate::PowerOfTwoChoices) and the
/// tie-breaks of [`LeastConnections`](crate::LeastConnections).
///
/// Unseeded, it is fastrand's per-thread generator (no shared state on the pick path). Seeded,
/// it is SplitMix64 over one atomic counter: picks from several threads at once stay valid,
/// and picks from one thread repeat exactly for the same seed. A clone starts where the
/// original is, so two clones of a seeded algorithm pick the same sequence.
pub(crate) struct Rng {
    state: Option<AtomicU64>,
}

/// SplitMix64's increment (the golden ratio).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// fastrand's thread-local generator.
    pub(crate) const fn thread_local() -> Self {
        Rng { state: None }
    }

    /// A generator whose sequence is fixed by `seed`.
    pub(crate) const fn seeded(seed: u64) -> Self {
        Rng {
            state: Some(AtomicU64::new(seed)),
        }
    }

    /// A uniform `u64`.
    pub(crate) fn u64(&self) -> u64 {
        match &self.state {
            None => fastrand::u64(..),
            Some(state) => {
                // SplitMix64 (Steele, Lea, Flood 2014): a counter stepped atomically, then mixed.
                let mut z = state
                    .fetch_add(GAMMA, Ordering::Relaxed)
                    .wrapping_add(GAMMA);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
        }
    }

    /// A uniform draw in `0..n` (`n` above 0).
    pub(crate) fn below(&self, n: u64) -> u64 {
        match &self.state {
            None => fastrand::u64(..n),
            // Multiply-shift (Lemire): the bias is below n / 2^64, far under any test's noise.
            Some(_) => ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64,
        }
    }
}

impl Clone for Rng {
    fn clone(&self) -> Self {
        Rng {
            state: self
                .state
                .as_ref()
                .map(|s| AtomicU64::new(s.load(Ordering::Relaxed))),
        }
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::thread_local()
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            None => f.write_str("Rng(thread-local)"),
            Some(_) => f.write_str("Rng(seeded)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_sequence_and_a_clone_continues_it() {
        let a = Rng::seeded(7);
        let b = Rng::seeded(7);
        let drawn: Vec<u64> = (0..16).map(|_| a.below(10)).collect();
        assert_eq!(drawn, (0..16).map(|_| b.below(10)).collect::<Vec<_>>());
        assert!(drawn.iter().any(|&d| d != drawn[0]), "{drawn:?}");
        let c = a.clone();
        assert_eq!(a.u64(), c.u64());
        assert_ne!(Rng::seeded(8).u64(), Rng::seeded(7).u64());
    }
}
