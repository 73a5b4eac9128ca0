//! Fairness over 1,000,000 picks: every weighted algorithm gives each backend its share of the
//! traffic, checked with Pearson's chi-square test of the observed counts against the weights.
//!
//! Deterministic algorithms (the round robins, leastconn without load) land at a statistic near
//! 0 and within 1 % (relative) of each share; the random ones (random, power of two choices,
//! and consistent hashing over distinct keys) must pass the test at p = 0.001. The thread-local
//! generator is seeded so a run is reproducible.

use lb_core::{
    Algorithm, BackendSet, ConsistentHash, LeastConnections, PickContext, PowerOfTwoChoices,
    Random, RoundRobin, SmoothWeightedRoundRobin, StaticRoundRobin,
};

const PICKS: usize = 1_000_000;

/// Weighted set: 4 backends, df = 3.
const WEIGHTED: [u32; 4] = [5, 3, 1, 1];
/// Equal set: 10 backends, df = 9.
const EQUAL: [u32; 10] = [1; 10];

/// Upper critical value of the chi-square distribution at p = 0.001 for `df` degrees of
/// freedom (from the standard tables: df = 3 → 16.266, df = 9 → 27.877).
fn critical(df: usize) -> f64 {
    match df {
        3 => 16.27,
        9 => 27.88,
        _ => panic!("no critical value for df = {df}"),
    }
}

/// A set of backends `0..weights.len()` with those weights.
fn set<A: Algorithm>(algorithm: A, weights: &[u32]) -> BackendSet<usize, A> {
    let set = BackendSet::new(algorithm);
    for (i, &w) in weights.iter().enumerate() {
        set.insert(i, w).expect("a fresh key");
    }
    set
}

/// Picks `PICKS` times without a key, dropping every in-flight guard at once (no load), and
/// counts the picks per backend.
fn count_unkeyed<A: Algorithm>(algorithm: A, weights: &[u32]) -> Vec<u64> {
    fastrand::seed(0x5eed_0001);
    let set = set(algorithm, weights);
    let mut counts = vec![0u64; weights.len()];
    for _ in 0..PICKS {
        let (k, guard) = set.pick(&PickContext::default()).expect("a backend");
        drop(guard);
        counts[k] += 1;
    }
    counts
}

/// Pearson's statistic of `counts` against shares proportional to `weights`.
fn chi_square(counts: &[u64], weights: &[u32]) -> f64 {
    let n: u64 = counts.iter().sum();
    let total: u32 = weights.iter().sum();
    counts
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = n as f64 * f64::from(w) / f64::from(total);
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// Asserts the chi-square test passes; with `exact`, also each share within 1 % (relative) of
/// its expected share. Returns the statistic.
fn assert_fair(name: &str, counts: &[u64], weights: &[u32], exact: bool) -> f64 {
    let n: u64 = counts.iter().sum();
    assert_eq!(n, PICKS as u64, "{name}: every pick counted");
    let df = weights.len() - 1;
    let stat = chi_square(counts, weights);
    let crit = critical(df);
    println!(
        "{name:<40} weights {weights:?}: chi2 = {stat:.4} (df {df}, critical {crit}) counts {counts:?}"
    );
    assert!(
        stat < crit,
        "{name}: chi2 {stat} >= {crit} (df {df}); counts {counts:?}"
    );
    if exact {
        let total: u32 = weights.iter().sum();
        for (i, (&o, &w)) in counts.iter().zip(weights).enumerate() {
            let share = o as f64 / n as f64;
            let want = f64::from(w) / f64::from(total);
            assert!(
                (share - want).abs() <= 0.01 * want,
                "{name}: backend {i} share {share} vs {want}"
            );
        }
    }
    stat
}

/// A deterministic algorithm's shares are the weights exactly, with no chi-square noise.
fn assert_deterministic<A: Algorithm>(name: &str, algorithm: impl Fn() -> A) {
    for weights in [&WEIGHTED[..], &EQUAL[..]] {
        let counts = count_unkeyed(algorithm(), weights);
        let stat = assert_fair(name, &counts, weights, true);
        assert!(stat < 1e-3, "deterministic: {stat}");
    }
}

#[test]
fn round_robin_follows_weights_chi_square() {
    assert_deterministic("RoundRobin", || RoundRobin);
}

#[test]
fn static_round_robin_follows_weights_chi_square() {
    assert_deterministic("StaticRoundRobin", || StaticRoundRobin);
}

#[test]
fn smooth_weighted_round_robin_follows_weights_chi_square() {
    assert_deterministic("SmoothWeightedRoundRobin", || SmoothWeightedRoundRobin);
}

#[test]
fn least_connections_without_load_follows_weights_chi_square() {
    assert_deterministic("LeastConnections (guard dropped)", LeastConnections::new);
}

#[test]
fn random_follows_weights_chi_square() {
    for weights in [&WEIGHTED[..], &EQUAL[..]] {
        let counts = count_unkeyed(Random::new(), weights);
        assert_fair("Random", &counts, weights, false);
    }
}

#[test]
fn power_of_two_choices_without_load_follows_weights_chi_square() {
    for weights in [&WEIGHTED[..], &EQUAL[..]] {
        let counts = count_unkeyed(PowerOfTwoChoices::in_flight(), weights);
        assert_fair(
            "PowerOfTwoChoices::in_flight (no load)",
            &counts,
            weights,
            false,
        );
    }
    // Peak-EWMA's cost is latency × (in flight + 1) / weight: even idle, the heavier of two
    // costs less, so its shares are not the weights by design; with equal weights and no
    // latency sample yet every pair ties and the traffic is uniform.
    let counts = count_unkeyed(PowerOfTwoChoices::peak_ewma(), &EQUAL);
    assert_fair(
        "PowerOfTwoChoices::peak_ewma (no load)",
        &counts,
        &EQUAL,
        false,
    );
}

#[test]
fn consistent_hash_spreads_distinct_keys_evenly_chi_square() {
    let set = set(ConsistentHash::new(), &EQUAL);
    let snapshot = set.snapshot();
    let algorithm = set.algorithm();
    let mut counts = vec![0u64; EQUAL.len()];
    let mut key = String::new();
    for k in 0..PICKS {
        use std::fmt::Write as _;
        key.clear();
        write!(key, "key-{k}").expect("writing to a String");
        let b = snapshot
            .pick(algorithm, &PickContext::with_key(key.as_bytes()))
            .expect("a backend");
        counts[*b.key()] += 1;
    }
    assert_fair("ConsistentHash (1M distinct keys)", &counts, &EQUAL, false);

    // 4-byte source addresses (10.0.0.0/12) too.
    let mut counts = vec![0u64; EQUAL.len()];
    for k in 0..PICKS as u32 {
        let addr = (10u32 << 24 | k).to_be_bytes();
        let b = snapshot
            .pick(algorithm, &PickContext::with_key(&addr))
            .expect("a backend");
        counts[*b.key()] += 1;
    }
    assert_fair("ConsistentHash (1M IPv4 sources)", &counts, &EQUAL, false);
}
