//! Seeded randomness: every algorithm that draws (`Random`, `PowerOfTwoChoices`, the
//! tie-breaks of `LeastConnections`) picks the same sequence for the same seed, so a user's
//! tests over a balancer are reproducible.

use lb_core::{
    Algorithm, BackendSet, InFlight, LeastConnections, PickContext, PowerOfTwoChoices, Random,
};

const SERVERS: [&str; 5] = ["web1", "web2", "web3", "web4", "web5"];

/// 200 picks over five servers of weights 1..=5; every third pick stays in flight, so the
/// load-aware algorithms see unequal and tied loads alike.
fn picks<A: Algorithm>(algorithm: A) -> Vec<&'static str> {
    let set = BackendSet::new(algorithm);
    for (weight, name) in (1..).zip(SERVERS) {
        set.insert(name, weight).expect("a new name");
    }
    let mut held: Vec<InFlight> = Vec::new();
    let mut out = Vec::new();
    for i in 0..200 {
        let (key, in_flight) = set.pick(&PickContext::default()).expect("a server");
        if i % 3 == 0 {
            held.push(in_flight);
        }
        if held.len() > 8 {
            held.remove(0);
        }
        out.push(key);
    }
    out
}

fn assert_reproducible<A: Algorithm>(name: &str, make: impl Fn(u64) -> A) {
    let first = picks(make(42));
    assert_eq!(first, picks(make(42)), "{name}: same seed, same picks");
    assert_ne!(first, picks(make(43)), "{name}: another seed, other picks");
}

#[test]
fn random_with_the_same_seed_picks_the_same_sequence() {
    assert_reproducible("Random", Random::with_seed);
}

#[test]
fn p2c_with_the_same_seed_picks_the_same_sequence() {
    assert_reproducible("p2c in flight", |s| {
        PowerOfTwoChoices::in_flight().with_seed(s)
    });
    assert_reproducible("p2c peak-EWMA", |s| {
        PowerOfTwoChoices::peak_ewma().with_seed(s)
    });
}

#[test]
fn least_connections_with_the_same_seed_breaks_ties_the_same_way() {
    assert_reproducible("LeastConnections", LeastConnections::with_seed);
}

#[test]
fn a_clone_of_a_seeded_algorithm_picks_what_the_original_picks() {
    let random = Random::with_seed(7);
    assert_eq!(picks(random.clone()), picks(random));
}
