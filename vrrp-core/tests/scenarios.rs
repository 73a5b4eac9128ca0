//! Scenario tests: one timeline per rule of RFC 5798 §6 and per keepalived behaviour that
//! operators rely on, run on the simulated segment of `sim/` (zero loss, 1 ms delay unless a
//! test says otherwise). Read each as "at t = ..., ...; then ...".

use std::net::IpAddr;
use std::time::Duration;

use vrrp_core::packet::{AdvertInterval, DropReason, Priority, Version, Vrid};
use vrrp_core::router::{Config, Event, Reason, State, Tracker};
use vrrp_core::sim::Sim;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn addr(i: u8) -> IpAddr {
    IpAddr::from([10, 99, 0, i])
}

/// keepalived-style instance: VRID 51, VIP 10.99.0.200, 1 s adverts.
fn config(host: u8, priority: u8, version: Version) -> Config {
    let mut c = Config::new(
        Vrid::new(51).expect("non-zero"),
        addr(host),
        vec![addr(200)],
    );
    c.priority = Priority::new(priority);
    c.version = version;
    c
}

fn lan() -> Sim {
    let mut s = Sim::new(1);
    s.link.delay = MS;
    s.tracing = true;
    s
}

fn state(s: &Sim, i: usize) -> State {
    s.nodes[i].router.state()
}

/// When node `i` last entered `to`, as seconds since the simulation start.
fn entered(s: &Sim, i: usize, to: State) -> Option<f64> {
    s.nodes[i]
        .transitions
        .iter()
        .rev()
        .find(|t| t.to == to)
        .map(|t| (t.at - s.start).as_secs_f64())
}

fn trace(s: &Sim) -> String {
    s.trace.join("\n")
}

/// Asserts the states of `nodes`, with the trace on failure.
#[track_caller]
fn assert_states<const N: usize>(s: &Sim, nodes: [usize; N], want: [State; N]) {
    assert_eq!(nodes.map(|i| state(s, i)), want, "{}", trace(s));
}

/// Asserts node `i`'s state, saying `why` and the trace on failure.
#[track_caller]
fn assert_state(s: &Sim, i: usize, want: State, why: &str) {
    assert_eq!(state(s, i), want, "{why}: {}", trace(s));
}

/// Seconds from `since` (seconds since the start) until node `i` last became Master.
#[track_caller]
fn took_over(s: &Sim, i: usize, since: f64) -> f64 {
    entered(s, i, State::Master).expect("took over") - since
}

/// `c` with one tracker `name` of `weight`.
fn tracking(mut c: Config, name: &str, weight: i16) -> Config {
    c.trackers = vec![Tracker::new(name, weight)];
    c
}

/// Node a (.11, priority 101) and node b (.12, priority 100), both as `tweak` leaves them.
fn pair(version: Version, tweak: impl Fn(&mut Config)) -> (Sim, usize, usize) {
    let mut s = lan();
    let [a, b] = [(11, 101), (12, 100)].map(|(host, priority)| {
        let mut c = config(host, priority, version);
        tweak(&mut c);
        s.add(c).expect("valid config")
    });
    (s, a, b)
}

/// A lower node (.12, priority 100, v3) Master alone for 4 s, then a higher one (.11,
/// priority 150, as `tweak` leaves it) joins: (sim, low, high, when it joined).
fn higher_joins(tweak: impl FnOnce(&mut Config)) -> (Sim, usize, usize, f64) {
    let mut s = lan();
    let low = s.add(config(12, 100, Version::V3)).expect("valid config");
    s.run_for(4 * SEC);
    assert_eq!(state(&s, low), State::Master);
    let mut c = config(11, 150, Version::V3);
    tweak(&mut c);
    let high = s.add(c).expect("valid config");
    let joined = s.elapsed().as_secs_f64();
    (s, low, high, joined)
}

/// A router of `c` started at a new instant.
fn started(c: Config) -> (vrrp_core::Router, std::time::Instant) {
    let mut r = vrrp_core::Router::new(c).expect("valid");
    let t0 = std::time::Instant::now();
    r.startup(t0);
    (r, t0)
}

#[test]
fn lone_backup_becomes_master_after_master_down_interval_rfc5798_6_4_2() {
    // v2, priority 100, 1 s: Master_Down_Interval = 3 + 156/256 = 3.609375 s.
    let mut s = lan();
    let a = s.add(config(11, 100, Version::V2)).expect("valid config");
    assert_eq!(state(&s, a), State::Backup);
    s.run_for(Duration::from_millis(3609));
    assert_eq!(state(&s, a), State::Backup, "{}", trace(&s));
    s.run_for(MS);
    assert_eq!(state(&s, a), State::Master, "{}", trace(&s));
    assert_eq!(s.nodes[a].router.stats().became_master, 1);
}

#[test]
fn address_owner_is_master_at_startup_and_advertises_at_once_rfc5798_6_4_1() {
    let (mut r, t0) = started(config(11, 255, Version::V3));
    assert_eq!(r.state(), State::Master);
    assert_eq!(
        r.poll_event(),
        Some(Event::StateChanged {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::AddressOwner
        })
    );
    let tx = r.poll_transmit().expect("an advert at once");
    assert_eq!(tx.destination, IpAddr::from([224, 0, 0, 18]));
    assert_eq!(tx.payload[2], 255, "priority 255 on the wire");
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + SEC),
        "next advert after Advertisement_Interval"
    );
}

#[test]
fn highest_priority_wins_and_the_network_then_stays_quiet() {
    let (mut s, a, b) = pair(Version::V2, |_| {});
    s.run_for(5 * SEC);
    assert_states(&s, [a, b], [State::Master, State::Backup]);
    let settled = s.now;
    s.run_for(60 * SEC);
    assert_eq!(
        s.transitions_since(settled),
        0,
        "no flapping: {}",
        trace(&s)
    );
    // 60 adverts from the Master reached the Backup.
    assert!(s.nodes[b].router.stats().accepted >= 60);
}

#[test]
fn backup_with_preempt_takes_over_from_lower_master_rfc5798_6_4_2() {
    let (mut s, low, high, joined) = higher_joins(|_| {});
    s.run_for(5 * SEC);
    assert_states(&s, [high, low], [State::Master, State::Backup]);
    // It discards the lower adverts and takes over when its Master_Down_Timer runs out.
    let mdi = vrrp_core::router::master_down_interval(
        Version::V3,
        Priority::new(150),
        AdvertInterval::DEFAULT,
    );
    let took = took_over(&s, high, joined);
    assert!(
        (took - mdi.as_secs_f64()).abs() < 0.01,
        "took over after {took} s, MDI {mdi:?}"
    );
    let stepped_down =
        "node 0 MASTER -> BACKUP (advert from 10.99.0.11 with priority 150 takes precedence)";
    assert!(
        s.trace.iter().any(|l| l.ends_with(stepped_down)),
        "{}",
        trace(&s)
    );
}

#[test]
fn backup_without_preempt_leaves_a_lower_master_alone_rfc5798_6_4_2() {
    let (mut s, low, high, _) = higher_joins(|c| c.preempt = false);
    s.run_for(30 * SEC);
    assert_states(&s, [high, low], [State::Backup, State::Master]);
}

#[test]
fn preempt_delay_postpones_preemption_keepalived() {
    let (mut s, low, high, joined) = higher_joins(|c| c.preempt_delay = 10 * SEC);
    s.run_for(10 * SEC);
    assert_state(&s, high, State::Backup, "still waiting out preempt_delay");
    s.run_for(5 * SEC);
    assert_states(&s, [high, low], [State::Master, State::Backup]);
    let took = took_over(&s, high, joined);
    assert!((10.0..15.0).contains(&took), "preempted after {took} s");
}

#[test]
fn priority_zero_shutdown_hands_over_after_skew_time_rfc5798_6_4_3() {
    let (mut s, a, b) = pair(Version::V2, |_| {});
    s.run_for(5 * SEC);
    assert_eq!(state(&s, a), State::Master);
    s.run_for(Duration::from_millis(300)); // mid-interval
    let stop = s.elapsed().as_secs_f64();
    s.shutdown(a);
    assert_eq!(state(&s, a), State::Initialize);
    s.run_for(SEC);
    let took = took_over(&s, b, stop);
    // Skew_Time for priority 100 (v2) is 0.609 s, plus 1 ms of delay.
    assert!(
        (took - 0.610).abs() < 0.002,
        "handover after {took} s: {}",
        trace(&s)
    );
}

#[test]
fn crashed_master_is_replaced_within_master_down_interval_rfc5798_6_4_2() {
    let (mut s, a, b) = pair(Version::V3, |_| {});
    s.run_for(5 * SEC);
    s.crash(a);
    let crash = s.elapsed().as_secs_f64();
    s.run_for(5 * SEC);
    let took = took_over(&s, b, crash);
    let mdi = vrrp_core::router::master_down_interval(
        Version::V3,
        Priority::new(100),
        AdvertInterval::DEFAULT,
    );
    assert!(
        took <= mdi.as_secs_f64() + 0.001,
        "took over after {took} s: {}",
        trace(&s)
    );
    assert!(
        took >= mdi.as_secs_f64() - 1.0,
        "not before the last advert aged out: {took}"
    );
}

#[test]
fn equal_priorities_break_the_tie_on_the_higher_primary_address_rfc5798_6_4_3() {
    let mut s = lan();
    let low_addr = s.add(config(11, 100, Version::V3)).expect("valid config");
    let high_addr = s.add(config(12, 100, Version::V3)).expect("valid config");
    s.run_for(10 * SEC);
    assert_states(&s, [high_addr, low_addr], [State::Master, State::Backup]);
}

#[test]
fn master_answers_a_lower_priority_advert_at_once() {
    // A partition lets both become Master; on healing, the lower one's first advert makes the
    // higher one advertise immediately, so the lower steps down within two link delays
    // instead of waiting for the higher one's next scheduled advert.
    let mut s = lan();
    let high = s.add(config(11, 150, Version::V3)).expect("valid config");
    let low = s.add(config(12, 100, Version::V3)).expect("valid config");
    s.partition(&[0, 1]);
    s.run_for(5 * SEC);
    assert_states(&s, [high, low], [State::Master, State::Master]);
    s.heal();
    // Heal just after the high one advertised, so its next own advert is ~1 s away.
    let healed = s.elapsed().as_secs_f64();
    s.run_for(2 * SEC);
    assert_eq!(state(&s, low), State::Backup, "{}", trace(&s));
    let stepped = entered(&s, low, State::Backup).expect("stepped down") - healed;
    assert!(
        stepped < 1.0,
        "stepped down {stepped} s after healing: {}",
        trace(&s)
    );
}

#[test]
fn tracked_script_weight_2_moves_master_101_backup_100_keepalived() {
    // The seeds' setup: MASTER 101 / BACKUP 100, both `track_script { chk weight 2 }`.
    let (mut s, a, b) = pair(Version::V2, |c| {
        c.trackers = vec![Tracker::new("chk_lb", 2)];
    });
    assert_eq!(
        s.nodes[a].router.priority().get(),
        103,
        "101 + 2 while the check succeeds"
    );
    s.run_for(5 * SEC);
    assert_eq!(state(&s, a), State::Master);
    s.set_tracker(a, 0, false);
    assert_eq!(s.nodes[a].router.priority().get(), 101);
    // The Master advertised 101 at once (priority changes are not held back)...
    assert!(s.trace.iter().any(|l| l.contains("node 0 tracker 0 down")));
    // ...B (102) discards it and takes over after its Master_Down_Interval.
    s.run_for(5 * SEC);
    assert_states(&s, [a, b], [State::Backup, State::Master]);
    // The check recovers: 103 > 102 and preempt is on, so A takes the VIP back.
    s.set_tracker(a, 0, true);
    s.run_for(5 * SEC);
    assert_states(&s, [a, b], [State::Master, State::Backup]);
}

#[test]
fn preempt_on_lower_advert_hands_over_at_the_masters_first_lower_advert() {
    // MASTER 101 tracks a process with weight -4; BACKUP 100. The process dies.
    for (on, min, max) in [(false, 2.6, 3.7), (true, 0.0, 0.005)] {
        let mut s = lan();
        let a = s.add(tracking(config(11, 101, Version::V2), "chk_haproxy", -4));
        let mut cb = config(12, 100, Version::V2);
        cb.preempt_on_lower_advert = on;
        let (a, b) = (a.expect("valid config"), s.add(cb).expect("valid config"));
        s.run_for(5 * SEC + Duration::from_millis(400));
        assert_eq!(state(&s, a), State::Master);
        let fault = s.elapsed().as_secs_f64();
        s.set_tracker(a, 0, false);
        s.run_for(5 * SEC);
        let took = took_over(&s, b, fault);
        assert!(
            (min..max).contains(&took),
            "preempt_on_lower_advert {on}: b took over after {took} s: {}",
            trace(&s)
        );
        assert_eq!(state(&s, a), State::Backup, "{}", trace(&s));
    }
}

#[test]
fn preempt_on_lower_advert_takes_the_vip_back_as_soon_as_the_tracker_recovers() {
    let mut s = lan();
    let ca = tracking(config(11, 101, Version::V2), "uplink0", -20);
    let [a, b] = [ca, config(12, 100, Version::V2)].map(|mut c| {
        c.preempt_on_lower_advert = true;
        s.add(c).expect("valid config")
    });
    s.run_for(5 * SEC);
    s.set_tracker(a, 0, false);
    s.run_for(Duration::from_millis(100));
    assert_states(&s, [a, b], [State::Backup, State::Master]);
    // b's next advert is 900 ms away, but a knows from the advert that made it step down
    // that b has 100 < 101.
    let recovered = s.elapsed().as_secs_f64();
    s.set_tracker(a, 0, true);
    s.run_for(Duration::from_millis(5));
    let took = took_over(&s, a, recovered);
    assert!(
        (0.0..0.002).contains(&took),
        "a took the VIP back after {took} s: {}",
        trace(&s)
    );
    assert_eq!(state(&s, b), State::Backup, "{}", trace(&s));
}

#[test]
fn preempt_on_lower_advert_with_two_backups_settles_on_the_highest_at_once() {
    // The Master a (.11, 101) tracks a check of weight -10 that fails after 5 s; the Backups
    // (host, priority, preempt_delay) preempt on its lower advert.
    let fault = |backups: &[(u8, u8, Duration)]| {
        let mut s = lan();
        let a = s.add(tracking(config(11, 101, Version::V3), "chk", -10));
        let backups: Vec<usize> = backups
            .iter()
            .map(|&(host, priority, delay)| {
                let mut c = config(host, priority, Version::V3);
                c.preempt_on_lower_advert = true;
                c.preempt_delay = delay;
                s.add(c).expect("valid config")
            })
            .collect();
        let a = a.expect("valid config");
        s.run_for(5 * SEC);
        assert_eq!(state(&s, a), State::Master);
        s.set_tracker(a, 0, false);
        (s, a, backups)
    };
    let (mut s, a, backups) = fault(&[(12, 100, Duration::ZERO), (13, 99, Duration::ZERO)]);
    s.run_for(Duration::from_millis(50));
    assert_states(
        &s,
        [a, backups[0], backups[1]],
        [State::Backup, State::Master, State::Backup],
    );
    // The lower Backup may have been Master for one advert's way at most.
    if let Some(t) = entered(&s, backups[1], State::Master) {
        let left = s
            .trace
            .iter()
            .filter(|l| l.contains("node 2 MASTER -> BACKUP"))
            .count();
        assert_eq!(left, 1, "entered at {t}: {}", trace(&s));
    }
    // A preempt_delay still holds it back.
    let (mut s, _, backups) = fault(&[(12, 100, 2 * SEC)]);
    s.run_for(SEC);
    assert_states(&s, [backups[0]], [State::Backup]);
    s.run_for(2 * SEC);
    assert_states(&s, [backups[0]], [State::Master]);
}

#[test]
fn tracker_weights_follow_keepalived_sign_rules_and_clamp() {
    let mut c = config(11, 100, Version::V3);
    c.trackers = vec![Tracker::new("plus", 10), Tracker::new("minus", -30)];
    let (mut r, now) = started(c);
    assert_eq!(
        r.priority().get(),
        110,
        "+10 added while up, -30 not while up"
    );
    r.set_tracker(now, 0, false);
    r.set_tracker(now, 1, false);
    assert_eq!(
        r.priority().get(),
        70,
        "+10 dropped while down, -30 added while down"
    );
    let changes: Vec<_> = std::iter::from_fn(|| r.poll_event())
        .filter(|e| matches!(e, Event::PriorityChanged { .. }))
        .collect();
    assert_eq!(changes.len(), 2);

    let high = tracking(config(11, 250, Version::V3), "plus", 100);
    assert_eq!(
        vrrp_core::Router::new(high)
            .expect("valid")
            .priority()
            .get(),
        254,
        "clamped to 254"
    );
    // Priority 3 loses 100: clamped to 1; the address owner is never adjusted.
    for (priority, want) in [(3, Priority::new(1)), (255, Priority::OWNER)] {
        let c = tracking(config(11, priority, Version::V3), "minus", -100);
        let mut r = vrrp_core::Router::new(c).expect("valid");
        r.set_tracker(now, 0, false);
        assert_eq!(r.priority(), want, "priority {priority} with -100 down");
    }
}

#[test]
fn weight_0_tracker_forces_fault_and_hands_over_at_once_keepalived() {
    let mut s = lan();
    let ca = tracking(config(11, 101, Version::V3), "chk_haproxy", 0);
    let a = s.add(ca).expect("valid config");
    let b = s.add(config(12, 100, Version::V3)).expect("valid config");
    s.run_for(5 * SEC);
    assert_eq!(state(&s, a), State::Master);
    let fail = s.elapsed().as_secs_f64();
    s.set_tracker(a, 0, false);
    assert_eq!(state(&s, a), State::Fault);
    s.run_for(2 * SEC);
    // The faulted Master sent priority 0, so B waited only Skew_Time.
    let took = took_over(&s, b, fail);
    assert!(took < 0.7, "handover after {took} s: {}", trace(&s));
    s.run_for(10 * SEC);
    assert_state(&s, a, State::Fault, "stays in Fault while the check fails");
    s.set_tracker(a, 0, true);
    assert_state(&s, a, State::Backup, "fault cleared: back to Backup");
    s.run_for(5 * SEC);
    assert_state(&s, a, State::Master, "and preempts B again");
}

#[test]
fn link_down_is_fault_link_up_recovers() {
    let mut s = lan();
    let a = s.add(config(11, 100, Version::V3)).expect("valid config");
    s.set_link(a, false);
    assert_eq!(state(&s, a), State::Fault);
    assert_eq!(s.nodes[a].router.poll_timeout(), None, "no timers in Fault");
    s.run_for(10 * SEC);
    assert_eq!(state(&s, a), State::Fault);
    s.set_link(a, true);
    assert_eq!(state(&s, a), State::Backup);
    s.run_for(4 * SEC);
    assert_eq!(state(&s, a), State::Master);
}

#[test]
fn unicast_adverts_go_to_each_peer_and_strangers_are_dropped() {
    let mut s = lan();
    let mut ca = config(11, 101, Version::V2);
    ca.unicast_peers = vec![addr(12), addr(13)];
    let mut cb = config(12, 100, Version::V2);
    cb.unicast_peers = vec![addr(11), addr(13)];
    // Node c multicasts and is nobody's peer: its adverts never reach a or b; b's unicast
    // copies to it are accepted, and a stranger at .14 that unicasts to b is dropped.
    let a = s.add(ca).expect("valid config");
    let b = s.add(cb).expect("valid config");
    let mut stranger = config(14, 200, Version::V2);
    stranger.unicast_peers = vec![addr(12)];
    let x = s.add(stranger).expect("valid config");
    s.run_for(10 * SEC);
    assert_states(&s, [x, a, b], [State::Master, State::Master, State::Backup]);
    let dropped = s.nodes[b]
        .router
        .stats()
        .dropped
        .get(&DropReason::UnknownSource)
        .copied();
    assert!(
        dropped.unwrap_or(0) >= 5,
        "b dropped the stranger's adverts: {:?}",
        s.nodes[b].router.stats()
    );

    let mut c = config(11, 255, Version::V2);
    c.unicast_peers = vec![addr(12), addr(13)];
    let (mut r, _) = started(c);
    let dests: Vec<IpAddr> = std::iter::from_fn(|| r.poll_transmit())
        .map(|t| t.destination)
        .collect();
    assert_eq!(dests, [addr(12), addr(13)], "one advert per peer");
}

#[test]
fn v3_backup_learns_master_adver_interval_rfc5798_6_4_2() {
    let mut s = lan();
    let mut fast = config(11, 150, Version::V3);
    fast.advert_interval = AdvertInterval::from_centis(10).expect("100 ms");
    let a = s.add(fast).expect("valid config");
    let b = s.add(config(12, 100, Version::V3)).expect("valid config"); // its own interval is 1 s
    s.run_for(5 * SEC);
    assert_eq!(s.nodes[b].router.master_adver_interval().centis(), 10);
    s.crash(a);
    let crash = s.elapsed().as_secs_f64();
    s.run_for(2 * SEC);
    let took = took_over(&s, b, crash);
    // 3 * 100 ms + skew (156/256 * 100 ms), not 3.6 s.
    assert!(took < 0.37, "took over after {took} s");
    // As Master it advertises at its own configured interval again.
    assert_eq!(s.nodes[b].router.master_adver_interval().centis(), 100);
}

#[test]
fn v2_advert_with_another_interval_is_dropped_rfc3768_7_1() {
    let mut s = lan();
    let mut slow = config(11, 150, Version::V2);
    slow.advert_interval = AdvertInterval::from_secs(2).expect("2 s");
    s.add(slow).expect("valid config");
    let b = s.add(config(12, 100, Version::V2)).expect("valid config");
    // The 2 s router becomes Master after its own 6.4 s Master_Down_Interval; run past it.
    s.run_for(20 * SEC);
    let st = s.nodes[b].router.stats();
    assert!(
        st.dropped
            .get(&DropReason::IntervalMismatch)
            .copied()
            .unwrap_or(0)
            >= 3,
        "{st:?}"
    );
    assert_eq!(
        state(&s, b),
        State::Master,
        "the mismatched Master is not heard"
    );
}

#[test]
fn sync_group_members_move_together_keepalived_vrrp_sync_group() {
    use vrrp_core::router::SyncGroup;
    let now0 = std::time::Instant::now();
    let mut vi1 = config(11, 101, Version::V3);
    vi1.trackers = vec![Tracker::new("eth1", 0)];
    let mut vi2 = config(11, 101, Version::V3);
    vi2.vrid = Vrid::new(52).expect("non-zero");
    let mut g = SyncGroup::new();
    let i1 = g.push("VI_1", vrrp_core::Router::new(vi1).expect("valid"));
    let i2 = g.push("VI_2", vrrp_core::Router::new(vi2).expect("valid"));
    for i in [i1, i2] {
        g.member_mut(i).expect("member").startup(now0);
    }
    g.sync(now0);
    // Alone on the link, both time out; the first to become Master drags the other along.
    let t = g.poll_timeout().expect("timer");
    g.handle_timeout(t);
    let states = |g: &SyncGroup| {
        (
            g.member(i1).map(|r| r.state()),
            g.member(i2).map(|r| r.state()),
        )
    };
    assert_eq!(states(&g), (Some(State::Master), Some(State::Master)));
    // VI_1's interface tracker fails: the whole group goes to Fault.
    g.member_mut(i1).expect("member").set_tracker(t, 0, false);
    g.sync(t);
    assert_eq!(states(&g), (Some(State::Fault), Some(State::Fault)));
    let reasons: Vec<_> = std::iter::from_fn(|| g.poll_event()).collect();
    assert!(reasons.iter().any(|(i, e)| *i == i2
        && matches!(e, Event::StateChanged { to: State::Fault, reason: Reason::SyncGroup { member }, .. } if member == "VI_1")));
    // It recovers: both back to Backup together.
    g.member_mut(i1).expect("member").set_tracker(t, 0, true);
    g.sync(t);
    assert_eq!(states(&g), (Some(State::Backup), Some(State::Backup)));
}

#[test]
fn aws_active_active_pair_with_swapped_priorities() {
    // The seeds' AWS setup: two hosts, two instances with swapped priorities, each host
    // normally Master of one VIP. A host's crash moves both to the other; its return moves
    // its own back (preempt).
    let mut s = lan();
    let mk = |host, vrid, prio| {
        let mut c = config(host, prio, Version::V3);
        c.vrid = Vrid::new(vrid).expect("non-zero");
        c.unicast_peers = vec![addr(if host == 11 { 12 } else { 11 })];
        c
    };
    let a1 = s.add(mk(11, 61, 101)).expect("valid config");
    let a2 = s.add(mk(11, 62, 100)).expect("valid config");
    let b1 = s.add(mk(12, 61, 100)).expect("valid config");
    let b2 = s.add(mk(12, 62, 101)).expect("valid config");
    let all = [a1, a2, b1, b2];
    let settled = [State::Master, State::Backup, State::Backup, State::Master];
    s.run_for(5 * SEC);
    assert_states(&s, all, settled);
    s.crash(a1);
    s.crash(a2);
    s.run_for(5 * SEC);
    assert_states(&s, [b1, b2], [State::Master, State::Master]);
    s.restart(a1);
    s.restart(a2);
    s.run_for(5 * SEC);
    assert_states(&s, all, settled);
}

#[test]
fn own_looped_back_advert_is_dropped_and_stats_account_time() {
    let (mut r, t0) = started(config(11, 255, Version::V3));
    let tx = r.poll_transmit().expect("advert");
    let ip = vrrp_core::packet::IpHeader {
        source: tx.source,
        destination: tx.destination,
        ttl: 255,
    };
    r.handle_packet(t0 + MS, ip, &tx.payload);
    assert_eq!(r.stats().dropped.get(&DropReason::OwnAdvert), Some(&1));
    r.handle_packet(
        t0 + 2 * MS,
        vrrp_core::packet::IpHeader { ttl: 64, ..ip },
        &tx.payload,
    );
    assert_eq!(r.stats().dropped.get(&DropReason::Ttl), Some(&1));
    r.handle_timeout(t0 + 10 * SEC);
    let st = r.stats();
    assert_eq!(st.received, 2);
    assert_eq!(st.time_in(State::Master), 10 * SEC);
    assert_eq!(st.transitions, 1);
    r.shutdown(t0 + 11 * SEC);
    let bye = std::iter::from_fn(|| r.poll_transmit())
        .last()
        .expect("shutdown advert");
    assert_eq!(bye.payload[2], 0, "priority 0 on shutdown");
    assert_eq!(r.state(), State::Initialize);
}

#[test]
fn drops_are_reported_once_per_reason_per_interval_with_the_count_in_between() {
    let (mut r, t0) = started(config(12, 100, Version::V3));
    while r.poll_event().is_some() {}
    // A peer's advert, then copies with a wrong TTL and a wrong checksum.
    let mut peer = vrrp_core::Router::new(config(11, 255, Version::V3)).expect("valid");
    peer.startup(t0);
    let tx = peer.poll_transmit().expect("advert");
    let ip = vrrp_core::packet::IpHeader {
        source: tx.source,
        destination: tx.destination,
        ttl: 64,
    };
    let mut corrupt = tx.payload.to_vec();
    corrupt[6] ^= 0xff;
    let drops = |r: &mut vrrp_core::Router| -> Vec<(DropReason, u64, String)> {
        std::iter::from_fn(|| r.poll_event())
            .filter_map(|e| match e {
                Event::PacketDropped {
                    reason,
                    suppressed,
                    detail,
                    ..
                } => Some((reason, suppressed, detail)),
                _ => None,
            })
            .collect()
    };
    for i in 0..100u32 {
        r.handle_packet(t0 + i * MS, ip, &tx.payload);
        r.handle_packet(
            t0 + i * MS,
            vrrp_core::packet::IpHeader { ttl: 255, ..ip },
            &corrupt,
        );
    }
    let first = drops(&mut r);
    assert_eq!(first.len(), 2, "one per reason: {first:?}");
    assert_eq!((first[0].0, first[0].1), (DropReason::Ttl, 0));
    assert!(first[0].2.contains("64"), "{first:?}");
    assert_eq!((first[1].0, first[1].1), (DropReason::Checksum, 0));
    assert!(first[1].2.contains("checksum"), "{first:?}");
    assert_eq!(r.stats().dropped_total(), 200);
    assert_eq!(r.state(), State::Backup, "drops never change the state");
    // After the interval, the next one carries the 99 suppressed.
    r.handle_packet(
        t0 + vrrp_core::router::DROP_EVENT_INTERVAL + SEC,
        ip,
        &tx.payload,
    );
    assert_eq!(
        drops(&mut r).iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
        [(DropReason::Ttl, 99)]
    );
}
