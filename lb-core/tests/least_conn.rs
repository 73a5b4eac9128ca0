//! Least connections under skewed service times, in virtual time: three equal-weight servers,
//! one 10x slower; every request holds its `InFlight` guard for its service time. Leastconn
//! keeps the in-flight counts level and sends the slow server few requests; round robin gives
//! it a third of them and its in-flight count piles up.

use std::collections::VecDeque;

use lb_core::{Algorithm, BackendSet, InFlight, LeastConnections, PickContext, RoundRobin};

const SERVERS: [&str; 3] = ["fast-a", "fast-b", "slow"];
/// Service time of each server in ticks of virtual time.
const SERVICE: [u64; 3] = [10, 10, 100];
const SLOW: usize = 2;
/// One arrival per tick: 10,000 requests. Total capacity at level load is 0.21 L per tick
/// for L in flight on each server, so L settles near 5.
const ARRIVALS: u64 = 10_000;

/// What a run saw.
#[derive(Debug)]
struct Run {
    /// Requests sent to each server.
    sent: [u64; 3],
    /// Most in flight on each server at a pick.
    max_in_flight: [usize; 3],
    /// Largest (slow server's in-flight − the least of the fast ones') at a pick.
    max_slow_lead: i64,
    /// Largest (slow server's in-flight − the most of the fast ones') at a pick.
    max_slow_lead_over_busiest: i64,
    /// Picks at which the slow server led the least loaded fast one by 2 or more.
    picks_slow_lead_2: u64,
    /// Picks that went to a server with more in flight than another.
    picks_not_least: u64,
}

fn simulate<A: Algorithm>(algorithm: A) -> Run {
    let set = BackendSet::new(algorithm);
    for s in SERVERS {
        set.insert(s, 1).expect("a fresh server");
    }
    // Per server, its requests in flight in completion order (constant service time: FIFO).
    let mut running: [VecDeque<(u64, InFlight)>; 3] = Default::default();
    let mut run = Run {
        sent: [0; 3],
        max_in_flight: [0; 3],
        max_slow_lead: i64::MIN,
        max_slow_lead_over_busiest: i64::MIN,
        picks_slow_lead_2: 0,
        picks_not_least: 0,
    };
    for now in 0..ARRIVALS {
        // Requests whose service ended by now drop their guards.
        for queue in &mut running {
            while queue.front().is_some_and(|(end, _)| *end <= now) {
                queue.pop_front();
            }
        }
        let snapshot = set.snapshot();
        let in_flight: [usize; 3] = std::array::from_fn(|i| {
            let n = snapshot
                .get(&SERVERS[i])
                .expect("a member")
                .load()
                .in_flight();
            assert_eq!(n, running[i].len(), "the guard counts what is running");
            n
        });
        let (key, guard) = set.pick(&PickContext::default()).expect("a server");
        let s = SERVERS.iter().position(|&k| k == key).expect("one of ours");
        if in_flight[s] > *in_flight.iter().min().expect("three") {
            run.picks_not_least += 1;
        }
        run.sent[s] += 1;
        for (max, &n) in run.max_in_flight.iter_mut().zip(&in_flight) {
            *max = (*max).max(n);
        }
        let least_fast = *in_flight[..SLOW].iter().min().expect("two") as i64;
        let busiest_fast = *in_flight[..SLOW].iter().max().expect("two") as i64;
        let slow = in_flight[SLOW] as i64;
        run.max_slow_lead = run.max_slow_lead.max(slow - least_fast);
        run.max_slow_lead_over_busiest = run.max_slow_lead_over_busiest.max(slow - busiest_fast);
        if slow - least_fast >= 2 {
            run.picks_slow_lead_2 += 1;
        }
        running[s].push_back((now + SERVICE[s], guard));
    }
    run
}

#[test]
fn leastconn_keeps_in_flight_level_when_one_server_is_10x_slower() {
    let lc = simulate(LeastConnections::new());
    println!("leastconn: {lc:?}");
    assert_eq!(lc.sent.iter().sum::<u64>(), ARRIVALS);
    // The rule itself: every pick went to a server with the fewest in flight.
    assert_eq!(lc.picks_not_least, 0, "{lc:?}");
    // The slow server never holds more than one request over the fast ones: never more than
    // one over the busier of them, and never more than two over the idler one (completions
    // lower the fast servers' counts between picks, and a pick raises only one of them).
    assert!(lc.max_slow_lead_over_busiest <= 1, "{lc:?}");
    assert!(lc.max_slow_lead <= 2, "{lc:?}");
    // Level in-flight means each server's share follows its speed: the slow one's throughput
    // is a tenth of a fast one's, 1/21 of the traffic (~476 of 10,000).
    let slow_share = lc.sent[SLOW] as f64 / ARRIVALS as f64;
    assert!((0.03..0.07).contains(&slow_share), "{lc:?}");
    assert!(lc.sent[0] > 8 * lc.sent[SLOW] && lc.sent[1] > 8 * lc.sent[SLOW]);
}

#[test]
fn round_robin_piles_requests_up_on_the_slow_server() {
    let rr = simulate(RoundRobin);
    let lc = simulate(LeastConnections::new());
    println!("roundrobin: {rr:?}");
    assert_eq!(rr.sent.iter().sum::<u64>(), ARRIVALS);
    // A third each, whatever the speed.
    for sent in rr.sent {
        assert!(sent.abs_diff(ARRIVALS / 3) <= 1, "{rr:?}");
    }
    // The slow server holds ~33 in flight (a third of the arrivals × 100 ticks) against ~3
    // on the fast ones, and many times what it holds under leastconn.
    assert!(rr.max_in_flight[SLOW] >= 30, "{rr:?}");
    assert!(rr.max_in_flight[SLOW] > 5 * rr.max_in_flight[0], "{rr:?}");
    assert!(
        rr.max_in_flight[SLOW] > 4 * lc.max_in_flight[SLOW],
        "{rr:?} vs {lc:?}"
    );
    assert!(rr.max_slow_lead >= 25, "{rr:?}");
}
