//! Slow start (HAProxy `slowstart`): a backend that comes up, or joins, starts at a small share
//! that grows linearly with time to its full weight over the period. Time is synthetic: the
//! ramp advances by `refresh(now)` with instants in the future.

use std::time::{Duration, Instant};

use lb_core::{BackendSet, Health, PickContext, RoundRobin};

const PERIOD: Duration = Duration::from_secs(10);
const WEIGHT: u32 = 100;
const PICKS: usize = 10_000;

/// The share of `key` over `PICKS` picks.
fn share(set: &BackendSet<&'static str, RoundRobin>, key: &str) -> f64 {
    let hits = (0..PICKS)
        .filter(|_| set.pick(&PickContext::default()).expect("a backend").0 == key)
        .count();
    hits as f64 / PICKS as f64
}

/// The effective weight a share implies next to `others` at full weight `WEIGHT`.
fn implied_weight(share: f64, others: u32) -> f64 {
    f64::from(others * WEIGHT) * share / (1.0 - share)
}

/// A set of `keys` at `WEIGHT` whose initial ramps (members that join ramp too) are over.
fn settled(keys: &[&'static str]) -> BackendSet<&'static str, RoundRobin> {
    let set = BackendSet::new(RoundRobin).with_slow_start(PERIOD);
    for &k in keys {
        set.insert(k, WEIGHT).expect("a fresh key");
    }
    set.refresh(Instant::now() + 2 * PERIOD);
    let snapshot = set.snapshot();
    assert!(
        snapshot
            .backends()
            .iter()
            .all(|b| b.ramping_since().is_none())
    );
    set
}

/// At `secs` after `t`, `key`'s effective weight (beside `others` at full weight) is on the
/// linear ramp: weight × elapsed / period (1 s = 10 of 100). Returns it.
fn assert_ramp(
    set: &BackendSet<&'static str, RoundRobin>,
    t: Instant,
    secs: u64,
    key: &'static str,
    others: u32,
) -> f64 {
    set.refresh(t + Duration::from_secs(secs));
    let s = share(set, key);
    let w = implied_weight(s, others);
    println!("{key} at +{secs} s: share {s:.4}, effective weight {w:.1} of {WEIGHT}");
    let want = f64::from(WEIGHT) * secs as f64 / PERIOD.as_secs_f64();
    assert!(
        (w - want).abs() <= 1.0,
        "+{secs} s: weight {w}, want {want}"
    );
    w
}

#[test]
fn a_backend_that_comes_up_ramps_linearly_to_its_full_weight() {
    let set = settled(&["a", "b"]);
    set.set_health(&"b", Health::Down).unwrap();
    assert_eq!(share(&set, "b"), 0.0);

    // Taken just before it comes up: the ramp starts a few microseconds after `t`.
    let t = Instant::now();
    set.set_health(&"b", Health::Up).unwrap();
    assert!(set.snapshot().get(&"b").unwrap().ramping_since().is_some());
    // At once: the least weight, 1 of 100.
    let first = share(&set, "b");
    println!("b up at +0 s: share {first:.4}");
    assert!((implied_weight(first, 1) - 1.0).abs() < 0.5, "{first}");

    let mut weights = Vec::new();
    for secs in [1, 5, 10] {
        weights.push(assert_ramp(&set, t, secs, "b", 1));
    }
    assert!(weights.windows(2).all(|w| w[0] < w[1]), "{weights:?}");
    // At the end of the period: a's equal.
    let end = share(&set, "b");
    assert!((end - 0.5).abs() < 0.005, "{end}");

    // Past the period the ramp is over and the weight stays full.
    set.refresh(t + PERIOD + Duration::from_secs(1));
    assert!(set.snapshot().get(&"b").unwrap().ramping_since().is_none());
    let after = share(&set, "b");
    assert!((after - 0.5).abs() < 0.005, "{after}");
}

#[test]
fn a_backend_that_joins_ramps_too() {
    let set = settled(&["a", "b"]);
    let t = Instant::now();
    set.insert("c", WEIGHT).unwrap();
    for secs in [1, 5, 10] {
        assert_ramp(&set, t, secs, "c", 2);
    }
    // The others kept their full weight throughout.
    let a = share(&set, "a");
    assert!((a - 1.0 / 3.0).abs() < 0.005, "{a}");
}
