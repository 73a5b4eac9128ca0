//! The monitor's counting and schedule, exact under tokio's paused clock. The check here is a
//! script of results (the real checks are tested against real servers in `checks.rs`).

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::at_once;

use async_trait::async_trait;
use health_check::{
    Check, CheckError, ConfigError, Health, Monitor, MonitorConfig, Start, Status, Transition,
};
use tokio::time::Instant;
use tokio_stream::StreamExt;

/// Plays back `results` ('+' success, '-' failure, 'h' hang), recording when each ran.
struct Script {
    results: Mutex<VecDeque<char>>,
    ran_at: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Check for Script {
    async fn check(&self) -> Result<(), CheckError> {
        self.ran_at.lock().expect("lock").push(Instant::now());
        let next = self
            .results
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or('+');
        match next {
            '+' => Ok(()),
            'h' => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Err(CheckError::ProcessNotRunning {
                name: "scripted".into(),
            }),
        }
    }

    fn describe(&self) -> String {
        "script".into()
    }
}

fn script(s: &str) -> Arc<Script> {
    Arc::new(Script {
        results: Mutex::new(s.chars().collect()),
        ran_at: Mutex::new(Vec::new()),
    })
}

/// The health after each check.
async fn healths(monitor: &Monitor, n: usize) -> Vec<(Health, Status)> {
    let mut rx = monitor.subscribe();
    let mut out = Vec::new();
    while out.len() < n {
        rx.changed().await.expect("monitor running");
        let s = rx.borrow().clone();
        out.push((s.health, s));
    }
    out
}

/// Only the health after each of `n` checks.
async fn health_after_each(monitor: &Monitor, n: usize) -> Vec<Health> {
    healths(monitor, n)
        .await
        .into_iter()
        .map(|(h, _)| h)
        .collect()
}

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn fall_3_then_rise_2_counted_exactly_haproxy() {
    let s = script("--+---+-++");
    let config = at_once(SEC).rise(2).fall(3);
    let m = Monitor::spawn(s.clone(), config).expect("valid config");
    let h: Vec<Health> = health_after_each(&m, 10).await;
    use Health::{Down as D, Up as U};
    // -- + resets the count; --- is the third consecutive failure; + - resets rise; ++ is up.
    assert_eq!(h, [U, U, U, U, U, D, D, D, D, U]);
}

#[tokio::test(start_paused = true)]
async fn keepalived_style_initial_down_needs_rise_successes() {
    let s = script("++++");
    let config = at_once(SEC).rise(3).fall(1).initial(Health::Down);
    let m = Monitor::spawn(s, config).expect("valid config");
    let h: Vec<Health> = health_after_each(&m, 3).await;
    assert_eq!(h, [Health::Down, Health::Down, Health::Up]);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_check_fails_at_the_timeout_and_the_schedule_goes_on() {
    let s = script("h+");
    let config = at_once(10 * SEC).timeout(2 * SEC).fall(1);
    let m = Monitor::spawn(s.clone(), config).expect("valid config");
    let out = healths(&m, 2).await;
    assert_eq!(out[0].0, Health::Down);
    assert!(
        out[0]
            .1
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer within 2s"),
        "{:?}",
        out[0].1
    );
    let ran = s.ran_at.lock().unwrap().clone();
    assert_eq!(
        ran[1] - ran[0],
        10 * SEC,
        "anchored: the hang did not push the next check"
    );
}

#[tokio::test(start_paused = true)]
async fn fastinter_while_changing_downinter_while_down_no_drift() {
    let s = script("+-+--------++++");
    let config = at_once(10 * SEC)
        .fastinter(SEC)
        .downinter(5 * SEC)
        .rise(2)
        .fall(3);
    let m = Monitor::spawn(s.clone(), config).expect("valid config");
    let _ = healths(&m, 15).await;
    let ran = s.ran_at.lock().unwrap().clone();
    let gaps: Vec<u64> = ran.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    // + (up, steady: 10) - (changing: 1) + (steady: 10) - - (1, 1) - (down now, steady: 5) ...
    // ... down steady (5) until + (changing: 1) then + (up: 10) +, +.
    assert_eq!(gaps, [10, 1, 10, 1, 1, 5, 5, 5, 5, 5, 5, 1, 10, 10]);
    assert_eq!(m.status().checks, 15);
}

#[tokio::test(start_paused = true)]
async fn transitions_stream_carries_id_timestamps_and_counts() {
    let s = script("+---++-");
    let config = at_once(SEC).rise(2).fall(3).id("web2");
    let started = Instant::now();
    let m = Monitor::spawn(s, config).expect("valid config");
    assert_eq!(&**m.id(), "web2");
    let mut transitions = m.transitions();
    let down: Transition = transitions.next().await.expect("a transition");
    let up: Transition = transitions.next().await.expect("a transition");
    // Checks at 0,1,2,3 (the third failure, at 3 s) and 4,5 (the second success, at 5 s).
    assert_eq!((down.from, down.to), (Health::Up, Health::Down));
    assert_eq!(&*down.id, "web2");
    assert_eq!((down.failures, down.successes, down.checks), (3, 0, 4));
    assert_eq!(down.at - started, 3 * SEC);
    assert_eq!(
        down.last_error.as_deref(),
        Some("no process named \"scripted\" is running")
    );
    assert_eq!((up.from, up.to), (Health::Down, Health::Up));
    assert_eq!((up.successes, up.checks), (2, 6));
    assert_eq!(up.at - started, 5 * SEC);
    assert!(up.at_system >= down.at_system);
    assert_eq!(m.status().since, up.at);
    assert_eq!(transitions.missed(), 0);
    // Dropping the monitor ends the stream.
    drop(m);
    assert!(transitions.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn spread_start_scatters_first_checks_over_the_interval() {
    let started = Instant::now();
    let scripts: Vec<Arc<Script>> = (0..1000).map(|_| script("")).collect();
    let monitors: Vec<Monitor> = scripts
        .iter()
        .map(|s| {
            let config = MonitorConfig::default().interval(10 * SEC);
            Monitor::spawn(s.clone(), config).expect("valid config")
        })
        .collect();
    // tokio's timers round up to the next millisecond: a first check due at 9.9995 s runs at
    // 10 s, the tick this test would wake at, in no set order. Wake 2 ms later.
    tokio::time::sleep(10 * SEC + Duration::from_millis(2)).await;
    let mut buckets = [0u32; 10];
    for s in &scripts {
        let ran = s.ran_at.lock().unwrap().clone();
        let first = *ran
            .first()
            .expect("every monitor checked once in the first interval");
        let offset = first - started;
        // Within the interval (10 s itself for one due in its last millisecond).
        assert!(offset <= 10 * SEC, "first check at {offset:?}");
        // One check per interval: a second run (an offset near 0) comes a whole interval on.
        if let Some(second) = ran.get(1) {
            assert_eq!(*second - first, 10 * SEC, "{ran:?}");
        }
        assert!(ran.len() <= 2, "{ran:?}");
        buckets[(offset.as_secs() as usize).min(9)] += 1;
    }
    // Uniform: each second of the interval gets about 100 of the 1000 first checks.
    for b in buckets {
        assert!((50..=150).contains(&b), "{buckets:?}");
    }
    // And each keeps its own phase: the second check is exactly one interval after the first.
    tokio::time::sleep(10 * SEC).await;
    for s in &scripts {
        let ran = s.ran_at.lock().unwrap().clone();
        assert_eq!(ran[1] - ran[0], 10 * SEC);
    }
    drop(monitors);
}

#[tokio::test(start_paused = true)]
async fn start_after_a_fixed_delay() {
    let s = script("");
    let config = MonitorConfig::default()
        .interval(SEC)
        .start(Start::After(Duration::from_millis(250)));
    let started = Instant::now();
    let m = Monitor::spawn(s.clone(), config).expect("valid config");
    let _ = healths(&m, 2).await;
    let ran = s.ran_at.lock().unwrap().clone();
    assert_eq!(ran[0] - started, Duration::from_millis(250));
    assert_eq!(ran[1] - started, Duration::from_millis(1250));
}

#[tokio::test(start_paused = true)]
async fn spread_checks_jitter_each_run_but_never_drifts_over_hours() {
    let s = script("");
    let config = at_once(SEC).spread_percent(10);
    let started = Instant::now();
    let m = Monitor::spawn(s.clone(), config).expect("valid config");
    // Two hours of one-second checks.
    tokio::time::sleep(Duration::from_secs(7200) + Duration::from_millis(500)).await;
    let ran = s.ran_at.lock().unwrap().clone();
    drop(m);
    assert_eq!(ran.len(), 7201);
    let mut moved = 0;
    for (k, at) in ran.iter().enumerate() {
        let slot = started + SEC * k as u32;
        let off = if *at >= slot { *at - slot } else { slot - *at };
        // Every run within 10% of its own slot: the moves never add up.
        assert!(
            off <= Duration::from_millis(100),
            "check {k} off by {off:?}"
        );
        if off > Duration::from_millis(1) {
            moved += 1;
        }
    }
    assert!(moved > 6000, "jitter applied to most runs: {moved}");
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_field_named() {
    let s = script("");
    let cases = [
        (
            MonitorConfig::default().interval(Duration::ZERO),
            ConfigError::Zero { field: "interval" },
            "interval is zero",
        ),
        (
            MonitorConfig::default().fastinter(Duration::ZERO),
            ConfigError::Zero { field: "fastinter" },
            "fastinter is zero",
        ),
        (
            MonitorConfig::default().rise(0),
            ConfigError::Threshold { field: "rise" },
            "rise is 0",
        ),
        (
            MonitorConfig::default().fall(0),
            ConfigError::Threshold { field: "fall" },
            "fall is 0",
        ),
        (
            MonitorConfig::default().spread_percent(51),
            ConfigError::Spread { percent: 51 },
            "0 to 50",
        ),
    ];
    for (config, want, text) in cases {
        let err = Monitor::spawn(s.clone(), config).expect_err("refused");
        assert_eq!(err, want);
        assert!(err.to_string().contains(text), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_random_schedule() {
    let started = Instant::now();
    let first_checks = |seed: u64| {
        let scripts: Vec<Arc<Script>> = (0..20).map(|_| script("")).collect();
        let monitors: Vec<Monitor> = scripts
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let config = MonitorConfig::default()
                    .interval(10 * SEC)
                    .spread_percent(20)
                    .seed(seed + i as u64);
                Monitor::spawn(s.clone(), config).expect("valid config")
            })
            .collect();
        (scripts, monitors)
    };
    let (a, _ma) = first_checks(7);
    let (b, _mb) = first_checks(7);
    let (c, _mc) = first_checks(1_000);
    tokio::time::sleep(35 * SEC).await;
    let offsets = |scripts: &[Arc<Script>]| -> Vec<Vec<Duration>> {
        scripts
            .iter()
            .map(|s| {
                s.ran_at
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|t| *t - started)
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        offsets(&a),
        offsets(&b),
        "one seed, one schedule (spread start and jitter)"
    );
    assert_ne!(offsets(&a), offsets(&c), "another seed, another schedule");
}
