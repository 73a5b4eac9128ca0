//! Property tests: whatever sequence of membership, health, admin, weight and connection-limit
//! changes a `BackendSet` goes through, a pick never returns a backend that is removed, down,
//! draining, in maintenance, weighted 0, or excluded by the request; with nothing available
//! it says so (`NoneAvailable`), with everything available excluded it says that
//! (`AllExcluded`). A model (key → state) kept beside the set says what is available.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use lb_core::{
    AdminState, Algorithm, BackendSet, ConsistentHash, First, Health, InFlight, LeastConnections,
    NoBackend, PickContext, PowerOfTwoChoices, Random, RoundRobin, SmoothWeightedRoundRobin,
    StaticRoundRobin, UpdateError,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Backend keys are drawn from 0..KEYS, so operations often hit present and absent ones.
const KEYS: u8 = 6;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    Health(u8, Health),
    Admin(u8, AdminState),
    Weight(u8, u32),
    MaxConn(u8, Option<u32>),
    /// Advances slow-start ramps to this many seconds after the start.
    Refresh(u64),
    Pick {
        /// Hash key for consistent hashing.
        key: Option<u16>,
        /// Backends (by key) the request excludes; absent ones are ignored.
        exclude: Vec<u8>,
        /// Keep the in-flight guard (load for leastconn, p2c, first) instead of dropping it.
        hold: bool,
    },
    /// Drops every held guard.
    Release,
}

#[derive(Clone, Copy, Debug)]
struct Model {
    weight: u32,
    health: Health,
    admin: AdminState,
}

impl Model {
    fn available(&self) -> bool {
        self.weight > 0 && self.health == Health::Up && self.admin == AdminState::Ready
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = || 0..KEYS;
    prop_oneof![
        3 => (key(), 0..=10u32).prop_map(|(k, w)| Op::Insert(k, w)),
        1 => key().prop_map(Op::Remove),
        2 => (key(), prop_oneof![Just(Health::Up), Just(Health::Down)])
            .prop_map(|(k, h)| Op::Health(k, h)),
        2 => (
            key(),
            prop_oneof![
                Just(AdminState::Ready),
                Just(AdminState::Drain),
                Just(AdminState::Maintenance)
            ]
        )
            .prop_map(|(k, a)| Op::Admin(k, a)),
        2 => (key(), 0..=10u32).prop_map(|(k, w)| Op::Weight(k, w)),
        1 => (key(), proptest::option::of(0..3u32)).prop_map(|(k, m)| Op::MaxConn(k, m)),
        1 => (0..20u64).prop_map(Op::Refresh),
        8 => (
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(key(), 0..4),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(key, exclude, hold)| Op::Pick { key, exclude, hold }),
        1 => Just(Op::Release),
    ]
}

/// Checks an update's outcome against the model: it applies exactly when the key is there.
fn check_update(
    result: Result<(), UpdateError>,
    model: &mut HashMap<u8, Model>,
    key: u8,
    change: impl FnOnce(&mut Model),
) -> Result<(), TestCaseError> {
    match model.get_mut(&key) {
        Some(m) => {
            prop_assert_eq!(result, Ok(()));
            change(m);
        }
        None => prop_assert_eq!(
            result,
            Err(UpdateError::Unknown {
                key: key.to_string()
            })
        ),
    }
    Ok(())
}

/// Runs `ops` on a set picking with `algorithm` and checks every outcome against the model.
fn run<A: Algorithm>(algorithm: A, slow_start: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut set = BackendSet::new(algorithm);
    if slow_start {
        set = set.with_slow_start(Duration::from_secs(10));
    }
    let start = Instant::now();
    let mut model: HashMap<u8, Model> = HashMap::new();
    let mut held: Vec<InFlight> = Vec::new();
    for op in ops {
        match *op {
            Op::Insert(k, weight) => {
                let result = set.insert(k, weight);
                match model.entry(k) {
                    Entry::Occupied(_) => {
                        prop_assert_eq!(result, Err(UpdateError::Duplicate { key: k.to_string() }))
                    }
                    Entry::Vacant(slot) => {
                        prop_assert_eq!(result, Ok(()));
                        slot.insert(Model {
                            weight,
                            health: Health::Up,
                            admin: AdminState::Ready,
                        });
                    }
                }
            }
            Op::Remove(k) => {
                let result = set.remove(&k);
                if model.remove(&k).is_some() {
                    prop_assert_eq!(result, Ok(()));
                } else {
                    prop_assert_eq!(result, Err(UpdateError::Unknown { key: k.to_string() }));
                }
            }
            Op::Health(k, h) => check_update(set.set_health(&k, h), &mut model, k, |m| {
                m.health = h;
            })?,
            Op::Admin(k, a) => {
                check_update(set.set_admin(&k, a), &mut model, k, |m| m.admin = a)?;
            }
            Op::Weight(k, w) => {
                check_update(set.set_weight(&k, w), &mut model, k, |m| m.weight = w)?;
            }
            Op::MaxConn(k, c) => check_update(set.set_maxconn(&k, c), &mut model, k, |_| {})?,
            Op::Refresh(secs) => set.refresh(start + Duration::from_secs(secs)),
            Op::Release => held.clear(),
            Op::Pick {
                key,
                ref exclude,
                hold,
            } => {
                let snapshot = set.snapshot();
                let available: Vec<u8> = model
                    .iter()
                    .filter(|(_, m)| m.available())
                    .map(|(&k, _)| k)
                    .collect();
                prop_assert_eq!(snapshot.available(), available.len());
                prop_assert_eq!(snapshot.backends().len(), model.len());
                let slots: Vec<usize> = exclude.iter().filter_map(|k| snapshot.slot(k)).collect();
                let bytes = key.map(u16::to_be_bytes);
                let cx = PickContext {
                    key: bytes.as_ref().map(|b| &b[..]),
                    exclude: &slots,
                };
                let allowed = available.iter().filter(|k| !exclude.contains(k)).count();
                match set.pick(&cx) {
                    Ok((k, guard)) => {
                        let state = model.get(&k);
                        prop_assert!(state.is_some(), "picked removed {}", k);
                        prop_assert!(
                            state.is_some_and(Model::available),
                            "picked unavailable {} {:?}",
                            k,
                            state
                        );
                        prop_assert!(!exclude.contains(&k), "picked excluded {}", k);
                        if hold {
                            held.push(guard);
                        }
                    }
                    Err(e) if available.is_empty() => prop_assert!(
                        matches!(e, NoBackend::NoneAvailable { members, .. } if members == model.len()),
                        "{}",
                        e
                    ),
                    Err(e) => {
                        prop_assert_eq!(allowed, 0, "refused with {} allowed: {}", allowed, e);
                        prop_assert_eq!(
                            e,
                            NoBackend::AllExcluded {
                                available: available.len()
                            }
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..80)
}

/// One property test per algorithm: `run` over random operations, with and without slow
/// start.
macro_rules! never_picks_an_unavailable_or_excluded_backend {
    ($($name:ident: $algorithm:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]
            $(
                #[test]
                fn $name(slow in any::<bool>(), ops in ops()) {
                    run($algorithm, slow, &ops)?;
                }
            )*
        }
    };
}

never_picks_an_unavailable_or_excluded_backend! {
    round_robin_never_picks_an_unavailable_or_excluded_backend: RoundRobin;
    static_round_robin_never_picks_an_unavailable_or_excluded_backend: StaticRoundRobin;
    smooth_weighted_never_picks_an_unavailable_or_excluded_backend: SmoothWeightedRoundRobin;
    least_connections_never_picks_an_unavailable_or_excluded_backend: LeastConnections::new();
    random_never_picks_an_unavailable_or_excluded_backend: Random::new();
    first_never_picks_an_unavailable_or_excluded_backend: First;
    // A small prime table: every update rebuilds it, and the rule does not depend on the size
    // (the default size is exercised by tests/consistent_hash.rs).
    consistent_hash_never_picks_an_unavailable_or_excluded_backend:
        ConsistentHash::with_table_size(1_031);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn power_of_two_choices_never_picks_an_unavailable_or_excluded_backend(
        slow in any::<bool>(), ewma in any::<bool>(), ops in ops()
    ) {
        let p2c = if ewma { PowerOfTwoChoices::peak_ewma() } else { PowerOfTwoChoices::in_flight() };
        run(p2c, slow, &ops)?;
    }
}
