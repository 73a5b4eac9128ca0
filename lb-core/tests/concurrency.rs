//! Concurrency: two threads pick a million times each from one shared set while a third
//! flips health, weights and admin state; no pick fails, none reaches a backend that was down
//! the whole time, every pick is counted, and no in-flight count leaks across the rebuilt
//! snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use lb_core::{AdminState, BackendSet, Health, PickContext, RoundRobin};

const PICKS: usize = 1_000_000;
/// "steady" is never touched (so a pick always has a candidate), "dead" is down all along,
/// the "flip" ones change under the pickers' feet.
const KEYS: [&str; 4] = ["steady", "flip-health", "flip-weight", "dead"];
const DEAD: usize = 3;

fn index(key: &str) -> usize {
    KEYS.iter().position(|&k| k == key).expect("one of ours")
}

#[test]
fn picks_stay_correct_while_another_thread_flips_health_and_weights() {
    let set = Arc::new(BackendSet::new(RoundRobin));
    for k in KEYS {
        set.insert(k, 2).unwrap();
    }
    set.set_health(&"dead", Health::Down).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let flipper = {
        let set = Arc::clone(&set);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut flips = 0u64;
            while !done.load(Ordering::Relaxed) {
                let health = if flips.is_multiple_of(2) {
                    Health::Down
                } else {
                    Health::Up
                };
                set.set_health(&"flip-health", health).unwrap();
                set.set_weight(&"flip-weight", (flips % 4) as u32).unwrap();
                let admin = [
                    AdminState::Ready,
                    AdminState::Drain,
                    AdminState::Maintenance,
                ][(flips % 3) as usize];
                set.set_admin(&"flip-health", admin).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let pickers: Vec<_> = (0..2)
        .map(|_| {
            let set = Arc::clone(&set);
            thread::spawn(move || {
                let mut counts = [0usize; KEYS.len()];
                for _ in 0..PICKS {
                    let (key, guard) = set.pick(&PickContext::default()).unwrap();
                    counts[index(key)] += 1;
                    drop(guard);
                }
                counts
            })
        })
        .collect();
    let counts: Vec<[usize; KEYS.len()]> = pickers.into_iter().map(|p| p.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    println!("{flips} flips; picks per thread {counts:?}");

    assert!(flips > 0, "the flipper ran");
    for c in &counts {
        assert_eq!(c.iter().sum::<usize>(), PICKS, "every pick counted: {c:?}");
        assert_eq!(c[DEAD], 0, "the backend down all along was picked: {c:?}");
        assert!(c[index("steady")] > 0);
    }
    let total: usize = counts.iter().flatten().sum();
    assert_eq!(total, 2 * PICKS);
    // Every guard dropped: no count lost or leaked across the snapshots rebuilt meanwhile.
    let snapshot = set.snapshot();
    for b in snapshot.backends() {
        assert_eq!(b.load().in_flight(), 0, "{}", b.key());
    }
}
