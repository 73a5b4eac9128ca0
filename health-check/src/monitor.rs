//! [`Monitor`]: runs one [`Check`] on an anchored schedule with HAProxy's `inter`, `fastinter`,
//! `downinter`, `rise` and `fall`, and publishes the [`Status`] on a `tokio::sync::watch`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Check;

/// Up or down, as the rise/fall counting decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Serving.
    Up,
    /// Not serving.
    Down,
}

/// The schedule and thresholds. Defaults are HAProxy's (`inter 2s rise 2 fall 3`, servers
/// start up); keepalived starts a tracked script failed instead: set `initial: Health::Down`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Time between checks (HAProxy `inter`).
    pub interval: Duration,
    /// Time between checks while the state is changing, i.e. some successes counted towards
    /// `rise` or failures towards `fall` (HAProxy `fastinter`; `interval` when `None`).
    pub fastinter: Option<Duration>,
    /// Time between checks while down (HAProxy `downinter`; `interval` when `None`).
    pub downinter: Option<Duration>,
    /// How long one check may take; longer counts as a failure.
    pub timeout: Duration,
    /// Consecutive successes that bring a down target up.
    pub rise: u32,
    /// Consecutive failures that take an up target down.
    pub fall: u32,
    /// The state before the first check.
    pub initial: Health,
}

impl Default for MonitorConfig {
    fn default() -> MonitorConfig {
        MonitorConfig {
            interval: Duration::from_secs(2),
            fastinter: None,
            downinter: None,
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            initial: Health::Up,
        }
    }
}

/// What the monitor knows, republished after every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The current decision.
    pub health: Health,
    /// Consecutive successes so far (reset by a failure).
    pub successes: u32,
    /// Consecutive failures so far (reset by a success).
    pub failures: u32,
    /// Checks run.
    pub checks: u64,
    /// The last failure's text, for stats pages.
    pub last_error: Option<String>,
    /// When `health` last changed (the start, before any change).
    pub since: Instant,
}

/// A running monitor; dropping it stops the checks.
#[derive(Debug)]
pub struct Monitor {
    status: watch::Receiver<Status>,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Starts checking at once, then on the schedule. Needs a tokio runtime.
    pub fn spawn(check: Arc<dyn Check>, config: MonitorConfig) -> Monitor {
        let start = Instant::now();
        let initial = Status {
            health: config.initial,
            successes: 0,
            failures: 0,
            checks: 0,
            last_error: None,
            since: start,
        };
        let (tx, status) = watch::channel(initial);
        let task = tokio::spawn(run(check, config, tx, start));
        Monitor { status, task }
    }

    /// A receiver of the latest status: `borrow()` for now, `changed().await` for updates.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    check: Arc<dyn Check>,
    config: MonitorConfig,
    tx: watch::Sender<Status>,
    start: Instant,
) {
    let mut s = tx.borrow().clone();
    // Anchored: each deadline is the previous deadline plus the interval, not "now plus the
    // interval" after the check, so the schedule does not drift by the checks' run time.
    let mut deadline = start;
    loop {
        tokio::time::sleep_until(deadline).await;
        let result = match tokio::time::timeout(config.timeout, check.check()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", config.timeout)),
        };
        s.checks += 1;
        match result {
            Ok(()) => {
                s.successes += 1;
                s.failures = 0;
                if s.health == Health::Down && s.successes >= config.rise {
                    s.health = Health::Up;
                    s.since = Instant::now();
                }
            }
            Err(e) => {
                s.failures += 1;
                s.successes = 0;
                s.last_error = Some(e);
                if s.health == Health::Up && s.failures >= config.fall {
                    s.health = Health::Down;
                    s.since = Instant::now();
                }
            }
        }
        if tx.send(s.clone()).is_err() {
            return; // nobody listens any more
        }
        let changing = match s.health {
            Health::Up => s.failures > 0,
            Health::Down => s.successes > 0,
        };
        let step = if changing {
            config.fastinter.unwrap_or(config.interval)
        } else if s.health == Health::Down {
            config.downinter.unwrap_or(config.interval)
        } else {
            config.interval
        };
        deadline += step;
        // A check that overran its slot: skip the missed slots rather than burst.
        let now = Instant::now();
        while deadline < now {
            deadline += step;
        }
    }
}
