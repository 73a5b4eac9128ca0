//! [`Monitor`]: runs one [`Check`] on an anchored, jittered schedule with HAProxy's `inter`,
//! `fastinter`, `downinter`, `rise` and `fall`; publishes the [`Status`] on a
//! `tokio::sync::watch` and every [`Transition`] on a stream.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::jitter::Jitter;
use crate::transition::{Transition, Transitions};
use crate::{Check, ConfigError};

/// Up or down, as the rise/fall counting decided: `lb_core::Health`, re-exported, so that a
/// monitor's verdict is what a balancer's `BackendSet` takes, without a conversion.
pub use lb_core::Health;

/// When the first check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Start {
    /// At a random point within the first interval, so that thousands of monitors started
    /// together spread out instead of firing at once (HAProxy spreads its first checks too).
    #[default]
    Spread,
    /// At once (a single check whose first answer matters, and tests).
    Now,
    /// After this delay: a caller that starts N monitors can space them evenly itself.
    After(Duration),
}

/// The schedule, thresholds and identity of a monitor.
///
/// Defaults are HAProxy's: `inter 2s rise 2 fall 3`, a 2 s timeout, and servers start **up**.
/// keepalived starts a tracked script **failed** until it has succeeded `rise` times: set
/// `initial: Health::Down` for that.
///
/// Built from [`Default`] with the setters, which read as HAProxy's server line:
///
/// ```
/// use std::time::Duration;
/// use health_check::MonitorConfig;
///
/// // `check inter 1s fastinter 200ms rise 2 fall 3`
/// let config = MonitorConfig::default()
///     .interval(Duration::from_secs(1))
///     .fastinter(Duration::from_millis(200))
///     .rise(2)
///     .fall(3);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// Time between checks (HAProxy `inter`).
    pub interval: Duration,
    /// Time between checks while the state is changing, i.e. some successes counted towards
    /// `rise` or failures towards `fall` (HAProxy `fastinter`; `interval` when `None`).
    pub fastinter: Option<Duration>,
    /// Time between checks while down (HAProxy `downinter`; `interval` when `None`).
    pub downinter: Option<Duration>,
    /// How long one check may take; longer counts as a failure and the check is dropped
    /// (an [`ExecCheck`](crate::ExecCheck)'s process group is killed).
    pub timeout: Duration,
    /// Consecutive successes that bring a down target up (at least 1).
    pub rise: u32,
    /// Consecutive failures that take an up target down (at least 1).
    pub fall: u32,
    /// The state before the first check.
    pub initial: Health,
    /// When the first check runs.
    pub start: Start,
    /// HAProxy's `spread-checks`: every check moves by a random amount within this percentage
    /// of its interval, either way (0 to 50). The moves do not accumulate: the schedule stays
    /// anchored to the start.
    pub spread_percent: u8,
    /// A name for logs, stats pages and consumers of transitions (`None`: the check's
    /// [`describe`](Check::describe)). A weight is the consumer's to give: a VRRP tracker's
    /// (`vrrp_core::router::Tracker`), a balancer's server (`lb_core::BackendSet`).
    pub id: Option<String>,
    /// Seeds the random moves (`Start::Spread`, `spread_percent`), so that a test of one's
    /// own system replays the same schedule; `None` (the default): seeded per monitor from
    /// the process's random keys.
    pub seed: Option<u64>,
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
            start: Start::Spread,
            spread_percent: 0,
            id: None,
            seed: None,
        }
    }
}

/// Builder methods that set a field of [`MonitorConfig`]: to their argument, or to the value
/// after `=`.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty $(= $value:expr)?;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $field(mut self, $field: $ty) -> MonitorConfig {
            self.$field = setters!(@value $field $($value)?);
            self
        }
    )*};
    (@value $field:ident) => { $field };
    (@value $field:ident $value:expr) => { $value };
}

impl MonitorConfig {
    setters! {
        /// [`interval`](Self::interval): time between checks (HAProxy `inter`).
        interval: Duration;
        /// [`timeout`](Self::timeout): how long one check may take.
        timeout: Duration;
        /// [`rise`](Self::rise): successes that bring a down target up.
        rise: u32;
        /// [`fall`](Self::fall): failures that take an up target down.
        fall: u32;
        /// [`initial`](Self::initial): the state before the first check.
        initial: Health;
        /// [`start`](Self::start): when the first check runs.
        start: Start;
        /// [`spread_percent`](Self::spread_percent): HAProxy's `spread-checks`.
        spread_percent: u8;
        /// [`fastinter`](Self::fastinter): time between checks while the state is changing.
        fastinter: Duration = Some(fastinter);
        /// [`downinter`](Self::downinter): time between checks while down.
        downinter: Duration = Some(downinter);
        /// [`id`](Self::id): the name for logs and consumers.
        id: impl Into<String> = Some(id.into());
    }

    /// [`seed`](Self::seed): the same seed, the same random moves.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> MonitorConfig {
        self.seed = Some(seed);
        self
    }

    /// Checks the values: non-zero intervals and timeout, `rise` and `fall` at least 1,
    /// `spread_percent` at most 50.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let intervals = [
            ("interval", Some(self.interval)),
            ("fastinter", self.fastinter),
            ("downinter", self.downinter),
            ("timeout", Some(self.timeout)),
        ];
        for (field, value) in intervals {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.rise == 0 {
            return Err(ConfigError::Threshold { field: "rise" });
        }
        if self.fall == 0 {
            return Err(ConfigError::Threshold { field: "fall" });
        }
        if self.spread_percent > 50 {
            return Err(ConfigError::Spread {
                percent: self.spread_percent,
            });
        }
        Ok(())
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
    /// The same moment on the wall clock, for display.
    pub since_system: SystemTime,
}

/// A running monitor; dropping it stops the checks (and ends its streams).
#[derive(Debug)]
#[must_use = "dropping the monitor stops its checks"]
pub struct Monitor {
    id: Arc<str>,
    status: watch::Receiver<Status>,
    transitions: Arc<OnceLock<broadcast::Sender<Transition>>>,
    task: JoinHandle<()>,
}

/// How many transitions a slow [`Transitions`] reader may fall behind before it misses some.
const TRANSITION_BACKLOG: usize = 64;

impl Monitor {
    /// Starts checking (see [`Start`]), then on the schedule. Needs a tokio runtime.
    pub fn spawn(check: Arc<dyn Check>, config: MonitorConfig) -> Result<Monitor, ConfigError> {
        config.validate()?;
        let id: Arc<str> = match &config.id {
            Some(id) => id.as_str().into(),
            None => check.describe().into(),
        };
        let start = Instant::now();
        let initial = Status {
            health: config.initial,
            successes: 0,
            failures: 0,
            checks: 0,
            last_error: None,
            since: start,
            since_system: SystemTime::now(),
        };
        let (tx, status) = watch::channel(initial);
        // The transition channel's buffer is made on the first `transitions()` call: most
        // monitors (10,000 backends) are only ever read through the watch.
        let transitions = Arc::new(OnceLock::new());
        let runner = Runner {
            check,
            id: id.clone(),
            jitter: config
                .seed
                .map_or_else(Jitter::from_entropy, Jitter::seeded),
            config,
            status: tx,
            transitions: transitions.clone(),
        };
        let task = tokio::spawn(runner.run(start));
        Ok(Monitor {
            id,
            status,
            transitions,
            task,
        })
    }

    /// The id given in the config, or the check's description.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// A receiver of the latest status: `borrow()` for now, `changed().await` for updates.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A stream of the transitions from now on (up to down and back), with timestamps.
    pub fn transitions(&self) -> Transitions {
        let sender = self
            .transitions
            .get_or_init(|| broadcast::channel(TRANSITION_BACKLOG).0);
        Transitions::new(sender.subscribe())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Runner {
    check: Arc<dyn Check>,
    id: Arc<str>,
    jitter: Jitter,
    config: MonitorConfig,
    status: watch::Sender<Status>,
    transitions: Arc<OnceLock<broadcast::Sender<Transition>>>,
}

impl Runner {
    async fn run(mut self, start: Instant) {
        let config = &self.config;
        let mut s = self.status.borrow().clone();
        // Anchored: each slot is the previous slot plus the step, not "now plus the step" after
        // the check, so the schedule does not drift by the checks' run time. Jitter moves each
        // run around its slot without moving the slots.
        let mut slot = match config.start {
            Start::Now => start,
            Start::After(delay) => start + delay,
            Start::Spread => start + self.jitter.below(config.interval),
        };
        loop {
            let moved = self.jitter.within(step(config, &s), config.spread_percent);
            let due = tokio::time::sleep_until(moved.apply(slot));
            let before = s.health;
            let failed = if s.health == Health::Up {
                tokio::select! {
                    () = due => None,
                    e = self.check.failed() => Some(e),
                }
            } else {
                due.await;
                None
            };
            if let Some(e) = failed {
                // Known failed between checks: down now, and the schedule restarts from here.
                mark_down(&mut s, e.to_string());
                slot = Instant::now();
            } else {
                let result = match tokio::time::timeout(config.timeout, self.check.check()).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {:?}", config.timeout)),
                };
                count(config, &mut s, result);
            }
            if s.health != before {
                s.since = Instant::now();
                s.since_system = SystemTime::now();
                // Nobody listening is fine: the watch still has the state.
                if let Some(sender) = self.transitions.get() {
                    let _ = sender.send(Transition {
                        id: self.id.clone(),
                        from: before,
                        to: s.health,
                        at: s.since,
                        at_system: s.since_system,
                        successes: s.successes,
                        failures: s.failures,
                        checks: s.checks,
                        last_error: s.last_error.clone(),
                    });
                }
            }
            if self.status.send(s.clone()).is_err() {
                return; // the monitor is gone
            }
            let step = step(config, &s);
            slot += step;
            // A check that overran its slot: skip the missed slots rather than burst.
            let now = Instant::now();
            while slot < now {
                slot += step;
            }
        }
    }
}

/// The rise/fall counting of one result.
fn count(config: &MonitorConfig, s: &mut Status, result: Result<(), String>) {
    s.checks += 1;
    match result {
        Ok(()) => {
            s.successes += 1;
            s.failures = 0;
            if s.health == Health::Down && s.successes >= config.rise {
                s.health = Health::Up;
            }
        }
        Err(e) => {
            s.failures += 1;
            s.successes = 0;
            s.last_error = Some(e);
            if s.health == Health::Up && s.failures >= config.fall {
                s.health = Health::Down;
            }
        }
    }
}

/// A failure reported by [`Check::failed`]: down at once, whatever `fall` says.
fn mark_down(s: &mut Status, error: String) {
    s.failures += 1;
    s.successes = 0;
    s.last_error = Some(error);
    s.health = Health::Down;
}

/// The time to the next check: `fastinter` while changing, `downinter` while down.
fn step(config: &MonitorConfig, s: &Status) -> Duration {
    let changing = match s.health {
        Health::Up => s.failures > 0,
        Health::Down => s.successes > 0,
    };
    if changing {
        config.fastinter.unwrap_or(config.interval)
    } else if s.health == Health::Down {
        config.downinter.unwrap_or(config.interval)
    } else {
        config.interval
    }
}
