//! A drained preemption on the simulated segment: the preempting Backup waits out its
//! `preempt_delay` and says so ([`Event::PreemptPending`]); the Master, told out of band,
//! [`resign`](vrrp_core::Router::resign)s (priority 0) and the Backup takes over after
//! Skew_Time instead of at the delay's end.

use std::time::Duration;

use vrrp_core::packet::Priority;
use vrrp_core::router::{Event, Reason, State};
use vrrp_core::sim::Sim;

mod support;
use support::segment::{SEC, addr, config, traced_sim};

/// A Master at 100 for 4 s, then a Backup at 150 with a 10 s `preempt_delay` joins: the sim,
/// the Master's and the Backup's indexes.
fn master_then_preempting_backup() -> (Sim, usize, usize) {
    let mut s = traced_sim(7);
    let low = s.add(config(12, 100)).expect("valid config");
    s.run_for(4 * SEC);
    let mut c = config(11, 150);
    c.preempt_delay = 10 * SEC;
    let high = s.add(c).expect("valid config");
    (s, low, high)
}

#[test]
fn a_delayed_preemption_is_announced_once_with_the_master_and_its_priority() {
    let (mut s, low, high) = master_then_preempting_backup();
    s.run_for(3 * SEC);
    let pending: Vec<&Event> = s.nodes[high]
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, Event::PreemptPending { .. }))
        .collect();
    assert_eq!(
        pending,
        [&Event::PreemptPending {
            master: addr(12),
            priority: Priority::new(100),
            delay: 10 * SEC,
        }],
        "{}",
        s.trace.join("\n")
    );
    assert_eq!(s.nodes[low].router.state(), State::Master);
    assert_eq!(s.nodes[high].router.state(), State::Backup);
}

#[test]
fn the_master_resigning_hands_over_after_skew_time_not_at_the_delays_end() {
    let (mut s, low, high) = master_then_preempting_backup();
    s.run_for(2 * SEC);
    let resigned = s.elapsed();
    s.resign(low);
    assert_eq!(s.nodes[low].router.state(), State::Backup);
    let left = s.nodes[low].transitions.last().expect("a transition");
    assert_eq!(left.reason, Reason::Resigned);
    s.run_for(SEC);
    assert_eq!(
        s.nodes[high].router.state(),
        State::Master,
        "{}",
        s.trace.join("\n")
    );
    let took = s.nodes[high].transitions.last().expect("took over").at - s.start - resigned;
    // Skew_Time of priority 150 at 1 s (v3): (256 - 150) / 256 s = 0.414 s.
    assert!(
        took < Duration::from_millis(450),
        "took over after {took:?}"
    );
    // The old Master stays Backup under the new one.
    s.run_for(5 * SEC);
    assert_eq!(s.nodes[low].router.state(), State::Backup);
    assert_eq!(s.in_state(State::Master), vec![high]);
}

#[test]
fn a_resigned_master_that_nobody_replaces_takes_over_again() {
    let mut s = Sim::new(3);
    let a = s.add(config(12, 100)).expect("valid config");
    s.run_for(4 * SEC);
    s.resign(a);
    assert_eq!(s.nodes[a].router.state(), State::Backup);
    // Master_Down_Interval at 100, 1 s: 3 + 156/256 s.
    s.run_for(4 * SEC);
    assert_eq!(s.nodes[a].router.state(), State::Master);
}

#[test]
fn only_a_master_resigns() {
    let (mut s, _low, high) = master_then_preempting_backup();
    s.run_for(SEC);
    assert!(!s.nodes[high].router.resign(s.now));
    assert_eq!(s.nodes[high].router.state(), State::Backup);
    assert!(s.nodes[high].router.poll_transmit().is_none());
}
