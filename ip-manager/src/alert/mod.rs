//! Alerts (feature `alerts`): a mail (keepalived's `notification_email` / `smtp_alert`,
//! HAProxy's `email-alert`) or a webhook (an HTTP POST of a JSON object, for Alertmanager,
//! Slack or Teams relays) for every state change, sent in the background.
//!
//! [`Alerts::send`] never waits: each destination has a queue of its own
//! ([`QUEUE`] alerts) and a task that delivers from it, trying again after 1, 2, 4 s ...
//! ([`AlertsBuilder::attempts`] in all) before giving up. A full queue drops the new alert.
//! Every loss is counted ([`Alerts::stats`]) and reported on the failure channel
//! ([`AlertsBuilder::failures`]), so a dead SMTP server costs a log line, never a delayed
//! transition or unbounded memory.
//!
//! ```no_run
//! use ip_manager::alert::{Alert, Alerts, Mail};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let alerts = Alerts::builder("vrrpd")
//!     .mail(Mail::new("127.0.0.1:25", "vrrpd@lb1.example", ["ops@example.com"])?)
//!     .webhook("http://127.0.0.1:9093/hook".parse()?)
//!     .start();
//! alerts.send(Alert::new("VI_1: BACKUP -> MASTER").field("instance", "VI_1"));
//! alerts.flush(std::time::Duration::from_secs(5)).await; // before exiting
//! # Ok(())
//! # }
//! ```

mod mail;
mod webhook;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use mail::{Mail, MailSecurity};
pub use webhook::{Url, Webhook};

/// How many alerts wait per destination before new ones are dropped.
pub const QUEUE: usize = 64;

/// Attempts per alert and destination by default (the first and three more, after 1, 2, 4 s).
pub const DEFAULT_ATTEMPTS: u32 = 4;

/// One thing to tell the operator: a subject line and named fields, with when and where it
/// happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alert {
    /// One line: what happened (`"VI_1: BACKUP -> MASTER"`).
    pub subject: String,
    /// The details, in order (`instance`, `from`, `to`, `reason`, ...).
    pub fields: Vec<(String, String)>,
    /// When it happened.
    pub at: SystemTime,
}

impl Alert {
    /// An alert about `subject`, happening now, with no fields yet.
    pub fn new(subject: impl Into<String>) -> Alert {
        Alert {
            subject: subject.into(),
            fields: Vec::new(),
            at: SystemTime::now(),
        }
    }

    /// Adds the field `name` = `value`.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, value: impl fmt::Display) -> Alert {
        self.fields.push((name.into(), value.to_string()));
        self
    }

    /// A VRRP state change of `instance` (feature `vrrp`): fields `instance`, `from`, `to`,
    /// `reason`.
    #[cfg(feature = "vrrp")]
    pub fn transition(
        instance: &str,
        from: vrrp_core::State,
        to: vrrp_core::State,
        reason: &vrrp_core::Reason,
    ) -> Alert {
        Alert::new(format!("{instance}: {from} -> {to}"))
            .field("instance", instance)
            .field("from", from)
            .field("to", to)
            .field("reason", reason)
    }
}

/// Why an alert did not reach a destination.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The destination's configuration is not usable (an address, a mailbox).
    #[error("{0}")]
    Config(String),
    /// Delivering failed (connection, TLS, the server's answer).
    #[error("{destination}: {detail}")]
    Delivery {
        /// `mail smtp.example:25` or `webhook http://...`.
        destination: String,
        /// What went wrong.
        detail: String,
    },
}

/// An alert that was lost, and why (on the [`AlertsBuilder::failures`] channel).
#[derive(Debug)]
#[non_exhaustive]
pub struct AlertFailure {
    /// The alert's subject.
    pub subject: String,
    /// The destination (`mail ...`, `webhook ...`).
    pub destination: String,
    /// The last error, or "queue full".
    pub error: String,
}

/// Counters over all destinations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertStats {
    /// Deliveries that succeeded.
    pub sent: u64,
    /// Attempts that failed and were tried again.
    pub retried: u64,
    /// Alerts given up after every attempt failed.
    pub failed: u64,
    /// Alerts dropped because a destination's queue was full.
    pub dropped: u64,
}

/// A destination: delivers one alert, once (the queue tries again).
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// `mail host:port`, `webhook URL`: for logs.
    fn describe(&self) -> String;
    /// Delivers `alert`, from daemon `source` on host `host`.
    async fn deliver(&self, source: &str, host: &str, alert: &Alert) -> Result<(), AlertError>;
}

#[derive(Default)]
struct Counters {
    /// Alerts queued and not yet delivered or given up (all destinations).
    pending: AtomicU64,
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Builds [`Alerts`]: the daemon's name, its destinations, how hard to try.
#[must_use = "call `start` to get the alerts"]
pub struct AlertsBuilder {
    source: String,
    host: String,
    sinks: Vec<Arc<dyn Sink>>,
    attempts: u32,
    first_retry: Duration,
    failures: Option<mpsc::Sender<AlertFailure>>,
}

impl fmt::Debug for AlertsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sinks: Vec<String> = self.sinks.iter().map(|s| s.describe()).collect();
        f.debug_struct("AlertsBuilder")
            .field("source", &self.source)
            .field("sinks", &sinks)
            .finish_non_exhaustive()
    }
}

impl AlertsBuilder {
    /// Mails alerts with `mail`.
    pub fn mail(self, mail: Mail) -> AlertsBuilder {
        self.sink(mail)
    }

    /// POSTs alerts as JSON to `url` (5 s timeout; [`Webhook`] for more).
    pub fn webhook(self, url: webhook::Url) -> AlertsBuilder {
        self.sink(Webhook::new(url))
    }

    /// Any destination.
    pub fn sink(mut self, sink: impl Sink) -> AlertsBuilder {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// The host name alerts name (default: the kernel's host name).
    pub fn host(mut self, host: impl Into<String>) -> AlertsBuilder {
        self.host = host.into();
        self
    }

    /// Attempts per alert and destination (at least 1; default [`DEFAULT_ATTEMPTS`]), the
    /// waits between them doubling from `first_retry` (default 1 s).
    pub fn attempts(mut self, attempts: u32, first_retry: Duration) -> AlertsBuilder {
        self.attempts = attempts.max(1);
        self.first_retry = first_retry;
        self
    }

    /// Where lost alerts are reported (without waiting: when this channel is full too, the
    /// report is dropped; the counters still count it).
    pub fn failures(mut self, to: mpsc::Sender<AlertFailure>) -> AlertsBuilder {
        self.failures = Some(to);
        self
    }

    /// Starts one delivery task per destination (needs a tokio runtime).
    pub fn start(self) -> Alerts {
        let counters = Arc::new(Counters::default());
        let source: Arc<str> = self.source.into();
        let host: Arc<str> = self.host.into();
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for sink in self.sinks {
            let (tx, rx) = mpsc::channel(QUEUE);
            let deliver = Delivery {
                sink: sink.clone(),
                source: source.clone(),
                host: host.clone(),
                attempts: self.attempts,
                first_retry: self.first_retry,
                counters: counters.clone(),
                failures: self.failures.clone(),
            };
            tasks.push(tokio::spawn(deliver.run(rx)));
            queues.push((tx, sink.describe()));
        }
        Alerts {
            queues,
            tasks,
            counters,
            failures: self.failures,
        }
    }
}

/// The running alerts: see the [module](self) docs. Dropping it stops delivering (alerts
/// still queued are lost: [`flush`](Self::flush) first to wait for them).
#[must_use = "dropping the alerts stops their delivery"]
pub struct Alerts {
    queues: Vec<(mpsc::Sender<Alert>, String)>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    failures: Option<mpsc::Sender<AlertFailure>>,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let destinations: Vec<&str> = self.queues.iter().map(|(_, d)| d.as_str()).collect();
        f.debug_struct("Alerts")
            .field("destinations", &destinations)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Alerts {
    /// A builder for daemon `source` (`"vrrpd"`: named in every alert).
    pub fn builder(source: impl Into<String>) -> AlertsBuilder {
        AlertsBuilder {
            source: source.into(),
            host: host_name(),
            sinks: Vec::new(),
            attempts: DEFAULT_ATTEMPTS,
            first_retry: Duration::from_secs(1),
            failures: None,
        }
    }

    /// Queues `alert` for every destination, without waiting; a destination whose queue is
    /// full drops it (counted, reported).
    pub fn send(&self, alert: Alert) {
        for (queue, destination) in &self.queues {
            self.counters.pending.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = queue.try_send(alert.clone()) {
                self.counters.pending.fetch_sub(1, Ordering::Relaxed);
                let alert = match e {
                    mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => a,
                };
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                report(
                    self.failures.as_ref(),
                    &alert,
                    destination,
                    "queue full (the destination is slow or down)".into(),
                );
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> AlertStats {
        let c = &self.counters;
        AlertStats {
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Waits until every alert queued so far is delivered or given up, at most `within` (for
    /// a daemon about to exit: what is left then is lost when the alerts are dropped).
    pub async fn flush(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.counters.pending.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One destination's delivery loop.
struct Delivery {
    sink: Arc<dyn Sink>,
    source: Arc<str>,
    host: Arc<str>,
    attempts: u32,
    first_retry: Duration,
    counters: Arc<Counters>,
    failures: Option<mpsc::Sender<AlertFailure>>,
}

impl Delivery {
    async fn run(self, mut queue: mpsc::Receiver<Alert>) {
        while let Some(alert) = queue.recv().await {
            self.deliver(&alert).await;
            self.counters.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Every attempt at one alert, until one succeeds or none is left.
    async fn deliver(&self, alert: &Alert) {
        let mut wait = self.first_retry;
        for attempt in 1..=self.attempts {
            match self.sink.deliver(&self.source, &self.host, alert).await {
                Ok(()) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) if attempt == self.attempts => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    let error = format!("{e} (gave up after {attempt} attempts)");
                    report(self.failures.as_ref(), alert, &self.sink.describe(), error);
                }
                Err(_) => {
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            }
        }
    }
}

fn report(
    to: Option<&mpsc::Sender<AlertFailure>>,
    alert: &Alert,
    destination: &str,
    error: String,
) {
    if let Some(to) = to {
        let _ = to.try_send(AlertFailure {
            subject: alert.subject.clone(),
            destination: destination.to_owned(),
            error,
        });
    }
}

/// The kernel's host name (`/proc/sys/kernel/hostname`), or `"localhost"`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `at` as RFC 3339 UTC (`2026-12-05T06:01:02.345Z`), for bodies and JSON.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc3339_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_454_062_345);
        assert_eq!(rfc3339(at), "2026-12-05T07:01:02.345Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
