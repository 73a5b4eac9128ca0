//! The protocol's timer formulas, per version (RFC 5798 §6.1, RFC 3768 §6.1).

use std::time::Duration;

use crate::packet::{AdvertInterval, Priority, Version};

/// Skew_Time: how much longer a lower-priority Backup waits, so the highest one wins.
///
/// - v3: `((256 - Priority) * Master_Adver_Interval) / 256` centiseconds.
/// - v2: `(256 - Priority) / 256` seconds, whatever the interval.
pub fn skew_time(
    version: Version,
    priority: Priority,
    master_adver_interval: AdvertInterval,
) -> Duration {
    let weight = 256 - u64::from(priority.get());
    match version {
        // Kept in microseconds so the integer division loses nothing a driver could see.
        Version::V3 => {
            Duration::from_micros(weight * u64::from(master_adver_interval.centis()) * 10_000 / 256)
        }
        Version::V2 => Duration::from_micros(weight * 1_000_000 / 256),
    }
}

/// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time` (v2: with its own
/// Advertisement_Interval, as v2 learns nothing from the Master).
pub fn master_down_interval(
    version: Version,
    priority: Priority,
    master_adver_interval: AdvertInterval,
) -> Duration {
    master_adver_interval.as_duration() * 3 + skew_time(version, priority, master_adver_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u8) -> AdvertInterval {
        AdvertInterval::from_secs(s).unwrap()
    }

    #[test]
    fn v2_priority_100_at_1s_matches_keepalived_3_609s() {
        // shared/lab/results/keepalived_baseline.txt: MDI/skew 3.609/0.609 for v2 prio 100.
        let p = Priority::new(100);
        assert_eq!(
            skew_time(Version::V2, p, secs(1)),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, p, secs(1)),
            Duration::from_micros(3_609_375)
        );
        // v2's skew ignores the interval.
        assert_eq!(
            skew_time(Version::V2, p, secs(5)),
            Duration::from_micros(609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_learned_interval_rfc5798_6_1() {
        let p = Priority::new(100);
        let ten_ms = AdvertInterval::from_centis(1).unwrap();
        // keepalived at 10 ms: MDI 0.036 s, skew 0.006 s.
        assert_eq!(
            skew_time(Version::V3, p, ten_ms),
            Duration::from_micros(6_093)
        );
        assert_eq!(
            master_down_interval(Version::V3, p, ten_ms),
            Duration::from_micros(36_093)
        );
        assert_eq!(
            skew_time(Version::V3, p, secs(1)),
            Duration::from_micros(609_375)
        );
    }

    #[test]
    fn higher_priority_waits_less() {
        let i = secs(1);
        for v in [Version::V2, Version::V3] {
            assert!(skew_time(v, Priority::new(254), i) < skew_time(v, Priority::new(1), i));
        }
    }
}
