//! Split brain heard by a Master (`Event::SplitBrain` / `Event::SplitBrainEnded`): another
//! Master for the VRID that does not step down, on the simulated segment.
//!
//! ```text
//!   A (10.99.0.11, priority 150)  ──X──▶  B (10.99.0.12, priority 100)
//!                                 ◀─────
//! ```
//! With A's adverts dropped on their way to B, B takes over after Master_Down_Interval and A
//! hears a lower-priority Master that never yields.

use std::time::{Duration, Instant};

use vrrp_core::packet::Priority;
use vrrp_core::router::{Event, SPLIT_BRAIN_QUIET_INTERVALS, SplitBrainEnd, State};
use vrrp_core::sim::Sim;

mod support;
use support::segment::{SEC, addr, config, traced_sim};

/// A at 150 is Master, B at 100 Backup, after 5 s.
fn pair(seed: u64) -> (Sim, usize, usize) {
    let mut s = traced_sim(seed);
    let a = s.add(config(11, 150)).expect("valid config");
    s.run_for(SEC);
    let b = s.add(config(12, 100)).expect("valid config");
    s.run_for(4 * SEC);
    assert_eq!(s.in_state(State::Master), [a]);
    (s, a, b)
}

/// [`pair`], then A's adverts dropped on their way to B for `run`: B takes over and A hears a
/// Master that does not yield.
fn blocked_pair(seed: u64, run: Duration) -> (Sim, usize, usize) {
    let (mut s, a, b) = pair(seed);
    s.block(a, b);
    s.run_for(run);
    (s, a, b)
}

fn split_brains(s: &Sim, i: usize) -> Vec<(Instant, Event)> {
    s.nodes[i]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::SplitBrain { .. } | Event::SplitBrainEnded { .. }))
        .cloned()
        .collect()
}

/// When node `i` last became Master.
fn became_master(s: &Sim, i: usize) -> Instant {
    s.nodes[i]
        .transitions
        .iter()
        .rev()
        .find(|t| t.to == State::Master)
        .expect("became master")
        .at
}

#[test]
fn a_master_hearing_a_lower_master_that_does_not_yield_reports_it_at_the_first_advert() {
    let (s, a, b) = blocked_pair(1, 5 * SEC);
    assert_eq!(s.in_state(State::Master), [a, b], "{}", s.trace.join("\n"));
    let took_over = became_master(&s, b);
    let told = split_brains(&s, a);
    assert_eq!(
        told.iter().map(|(_, e)| e).collect::<Vec<_>>(),
        [&Event::SplitBrain {
            peer: addr(12),
            priority: Priority::new(100),
        }],
        "{}",
        s.trace.join("\n")
    );
    // B's first advert as Master leaves at its takeover and arrives after the link's 1 ms.
    assert_eq!(told[0].0 - took_over, Duration::from_millis(1));
    assert_eq!(s.nodes[a].router.stats().split_brains, 1);
    assert_eq!(s.nodes[a].router.stats().split_brains_open, 1);
    // The one Master that hears nothing of the other reports nothing.
    assert!(split_brains(&s, b).is_empty());
}

#[test]
fn the_episode_ends_three_intervals_after_the_other_master_falls_silent_with_its_duration() {
    let (mut s, a, _) = blocked_pair(2, 10 * SEC);
    let first = split_brains(&s, a)[0].0;
    let healed = s.now;
    s.heal();
    s.run_for(6 * SEC);
    // B hears A again and steps down at A's next advert (A answers B's at once).
    assert_eq!(s.in_state(State::Master), [a]);
    let told = split_brains(&s, a);
    assert_eq!(told.len(), 2, "{}", s.trace.join("\n"));
    let (ended_at, ended) = &told[1];
    let Event::SplitBrainEnded {
        peer,
        priority,
        adverts,
        duration,
        end,
    } = ended
    else {
        panic!("{ended:?}")
    };
    assert_eq!(
        (*peer, *priority, *end),
        (addr(12), Priority::new(100), SplitBrainEnd::PeerSilent)
    );
    // One advert a second from B's takeover to the heal.
    let last_heard = first + *duration;
    assert!(last_heard <= healed + SEC, "{duration:?}");
    assert!(
        *adverts >= 5 && *adverts <= 8,
        "{adverts} adverts in {duration:?}"
    );
    // Noticed SPLIT_BRAIN_QUIET_INTERVALS intervals (1 s) after the last advert.
    assert_eq!(*ended_at - last_heard, SPLIT_BRAIN_QUIET_INTERVALS * SEC);
    assert_eq!(s.nodes[a].router.stats().split_brains_open, 0);
    assert_eq!(s.nodes[a].router.stats().split_brains, 1);
}

#[test]
fn a_healed_two_way_partition_is_one_episode_on_the_winner_reported_at_the_first_advert() {
    let (mut s, a, b) = pair(3);
    s.partition(&[0, 1]);
    s.run_for(6 * SEC);
    assert_eq!(s.in_state(State::Master), [a, b]);
    s.heal();
    s.run_for(6 * SEC);
    assert_eq!(s.in_state(State::Master), [a]);
    let told = split_brains(&s, a);
    assert!(
        matches!(
            told.as_slice(),
            [
                (_, Event::SplitBrain { .. }),
                (
                    _,
                    Event::SplitBrainEnded {
                        adverts: 1,
                        end: SplitBrainEnd::PeerSilent,
                        ..
                    }
                )
            ]
        ),
        "{told:?}"
    );
    // B heard a higher priority: a preemption, not a split brain.
    assert!(split_brains(&s, b).is_empty());
    let stepped_down = s.nodes[b].transitions.last().expect("stepped down");
    assert_eq!(stepped_down.to, State::Backup);
}

#[test]
fn a_normal_preemption_is_not_a_split_brain_on_either_side() {
    for seed in 0..20 {
        let mut s = Sim::new(seed);
        // A slow link: the old Master's adverts sent up to 400 ms before the takeover arrive
        // after it, before our first advert has reached it.
        s.link.delay = Duration::from_millis(400);
        s.link.jitter = Duration::from_millis(100);
        let low = s.add(config(12, 100)).expect("valid config");
        s.run_for(5 * SEC);
        // Joins as Backup, discards the lower adverts, takes over at Master_Down_Interval
        // while the old Master is still advertising: their adverts cross.
        let high = s.add(config(11, 150)).expect("valid config");
        s.run_for(10 * SEC);
        assert_eq!(s.in_state(State::Master), [high], "seed {seed}");
        for i in [low, high] {
            assert!(split_brains(&s, i).is_empty(), "seed {seed}: node {i}");
        }
    }
    // And at once, with preempt_on_lower_advert.
    let mut s = Sim::new(1);
    let low = s.add(config(12, 100)).expect("valid config");
    s.run_for(5 * SEC);
    let mut c = config(11, 150);
    c.preempt_on_lower_advert = true;
    let high = s.add(c).expect("valid config");
    s.run_for(5 * SEC);
    assert_eq!(s.in_state(State::Master), [high]);
    assert!(split_brains(&s, low).is_empty() && split_brains(&s, high).is_empty());
}

#[test]
fn leaving_master_or_the_peer_resigning_ends_the_episode_at_once() {
    // This router leaves Master: shut down.
    let (mut s, a, _) = blocked_pair(4, 6 * SEC);
    let first = split_brains(&s, a)[0].0;
    s.shutdown(a);
    let told = split_brains(&s, a);
    let Some((at, Event::SplitBrainEnded { end, duration, .. })) = told.last() else {
        panic!("{told:?}")
    };
    assert_eq!(*end, SplitBrainEnd::LeftMaster);
    assert_eq!((*at, *duration), (s.now, s.now - first));

    // The other Master sends priority 0.
    let (mut s, a, b) = blocked_pair(5, 6 * SEC);
    s.shutdown(b);
    s.run_for(SEC / 10);
    let told = split_brains(&s, a);
    assert!(
        matches!(
            told.last(),
            Some((
                _,
                Event::SplitBrainEnded {
                    end: SplitBrainEnd::PeerResigned,
                    ..
                }
            ))
        ),
        "{told:?}"
    );
    assert_eq!(s.nodes[a].router.stats().split_brains_open, 0);
}

#[test]
fn an_equal_priority_master_with_a_lower_address_is_a_split_brain_too() {
    let mut s = Sim::new(6);
    s.link.delay = Duration::from_millis(1);
    let high_addr = s.add(config(12, 100)).expect("valid config");
    s.run_for(SEC);
    let low_addr = s.add(config(11, 100)).expect("valid config");
    s.run_for(4 * SEC);
    assert_eq!(s.in_state(State::Master), [high_addr]);
    s.block(high_addr, low_addr);
    s.run_for(6 * SEC);
    let told = split_brains(&s, high_addr);
    assert!(
        matches!(told.first(), Some((_, Event::SplitBrain { peer, .. })) if *peer == addr(11)),
        "{told:?}"
    );
}
