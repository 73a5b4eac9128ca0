//! The monitor's counting and schedule, exact under tokio's paused clock. The check here is a
//! script of results (the real checks are tested against real servers in `checks.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use health_check::{Check, CheckError, Health, Monitor, MonitorConfig, Status};
use tokio::time::Instant;

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

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn fall_3_then_rise_2_counted_exactly_haproxy() {
    let s = script("--+---+-++");
    let config = MonitorConfig {
        interval: SEC,
        rise: 2,
        fall: 3,
        ..MonitorConfig::default()
    };
    let m = Monitor::spawn(s.clone(), config);
    let h: Vec<Health> = healths(&m, 10).await.into_iter().map(|(h, _)| h).collect();
    use Health::{Down as D, Up as U};
    // -- + resets the count; --- is the third consecutive failure; + - resets rise; ++ is up.
    assert_eq!(h, [U, U, U, U, U, D, D, D, D, U]);
}

#[tokio::test(start_paused = true)]
async fn keepalived_style_initial_down_needs_rise_successes() {
    let s = script("++++");
    let config = MonitorConfig {
        interval: SEC,
        rise: 3,
        fall: 1,
        initial: Health::Down,
        ..MonitorConfig::default()
    };
    let m = Monitor::spawn(s, config);
    let h: Vec<Health> = healths(&m, 3).await.into_iter().map(|(h, _)| h).collect();
    assert_eq!(h, [Health::Down, Health::Down, Health::Up]);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_check_fails_at_the_timeout_and_the_schedule_goes_on() {
    let s = script("h+");
    let config = MonitorConfig {
        interval: 10 * SEC,
        timeout: 2 * SEC,
        fall: 1,
        ..MonitorConfig::default()
    };
    let m = Monitor::spawn(s.clone(), config);
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
    let config = MonitorConfig {
        interval: 10 * SEC,
        fastinter: Some(SEC),
        downinter: Some(5 * SEC),
        rise: 2,
        fall: 3,
        ..MonitorConfig::default()
    };
    let m = Monitor::spawn(s.clone(), config);
    let _ = healths(&m, 15).await;
    let ran = s.ran_at.lock().unwrap().clone();
    let gaps: Vec<u64> = ran.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    // + (up, steady: 10) - (changing: 1) + (steady: 10) - - (1, 1) - (down now, steady: 5) ...
    // ... down steady (5) until + (changing: 1) then + (up: 10) +, +.
    assert_eq!(gaps, [10, 1, 10, 1, 1, 5, 5, 5, 5, 5, 5, 1, 10, 10]);
    assert_eq!(m.status().checks, 15);
}
