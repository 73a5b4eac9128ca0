//! The random moves of the schedule: a small seeded generator (splitmix64), so that thousands
//! of monitors spread out without a dependency on an RNG crate. Not for anything secret.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use tokio::time::Instant;

/// A per-monitor random source.
#[derive(Debug)]
pub(crate) struct Jitter {
    state: u64,
}

/// A signed move around a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Move {
    Later(Duration),
    Earlier(Duration),
}

impl Move {
    pub(crate) fn apply(self, slot: Instant) -> Instant {
        match self {
            Move::Later(d) => slot + d,
            // Before the process started there is nothing to wait for: clamp at the slot.
            Move::Earlier(d) => slot.checked_sub(d).unwrap_or(slot),
        }
    }
}

impl Jitter {
    /// Seeded from the standard library's per-process random keys.
    pub(crate) fn from_entropy() -> Jitter {
        Jitter::seeded(RandomState::new().hash_one(0u64))
    }

    pub(crate) fn seeded(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (zero for a zero bound), at nanosecond resolution.
    pub(crate) fn below(&mut self, bound: Duration) -> Duration {
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        // Multiply-shift: unbiased enough for scheduling, no division.
        let r = ((u128::from(self.next()) * u128::from(nanos)) >> 64) as u64;
        Duration::from_nanos(r)
    }

    /// A move uniform within `percent` % of `step`, either way.
    pub(crate) fn within(&mut self, step: Duration, percent: u8) -> Move {
        if percent == 0 {
            return Move::Later(Duration::ZERO);
        }
        let span = step * u32::from(percent) / 100;
        let d = self.below(span * 2);
        if d >= span {
            Move::Later(d - span)
        } else {
            Move::Earlier(span - d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_spreads() {
        let mut j = Jitter::seeded(7);
        let bound = Duration::from_secs(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            let d = j.below(bound);
            assert!(d < bound);
            buckets[(d.as_millis() / 100) as usize] += 1;
        }
        // Each tenth of the interval gets 10% of the draws, within 5% of that.
        for b in buckets {
            assert!((9_500..=10_500).contains(&b), "{buckets:?}");
        }
        assert_eq!(j.below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn within_stays_inside_the_percentage_both_ways() {
        let mut j = Jitter::seeded(1);
        let step = Duration::from_secs(2);
        let (mut earlier, mut later) = (0, 0);
        for _ in 0..10_000 {
            match j.within(step, 10) {
                Move::Earlier(d) => {
                    assert!(d <= Duration::from_millis(200));
                    earlier += 1;
                }
                Move::Later(d) => {
                    assert!(d < Duration::from_millis(200));
                    later += 1;
                }
            }
        }
        assert!(earlier > 4_500 && later > 4_500, "{earlier} {later}");
        assert_eq!(j.within(step, 0), Move::Later(Duration::ZERO));
    }
}
