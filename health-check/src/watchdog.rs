//! [`Watchdog`]: whether a tokio runtime still runs tasks, asked from an OS thread of its own.
//!
//! A check run by a [`Monitor`](crate::Monitor) is a task: on a runtime that no longer runs
//! tasks (a blocking call in a handler, a busy loop, a deadlock on a std mutex) it cannot
//! notice anything. The watchdog's thread hands the runtime a tiny task every `period` and
//! waits `timeout` for it to run; `fall` misses in a row make it down, `rise` answers in a
//! row up again, and each change is handed to a callback *on the watchdog's thread*, which
//! must not need the watched runtime either (e.g. `vrrp_core`'s blocking tracker set: see
//! [`vrrp::watchdog`](crate::vrrp::watchdog) with feature `vrrp`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::Health;

/// When a [`Watchdog`] probes and how it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchdogConfig {
    /// Between probes; default 100 ms.
    pub period: Duration,
    /// How long a probe task may wait to run; default 500 ms.
    pub timeout: Duration,
    /// Missed probes in a row that make it down; default 1.
    pub fall: u32,
    /// Answered probes in a row that make it up again; default 2.
    pub rise: u32,
}

impl Default for WatchdogConfig {
    fn default() -> WatchdogConfig {
        WatchdogConfig {
            period: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            fall: 1,
            rise: 2,
        }
    }
}

impl WatchdogConfig {
    /// Probes every `period`, each allowed `timeout`.
    #[must_use]
    pub fn every(mut self, period: Duration, timeout: Duration) -> WatchdogConfig {
        self.period = period;
        self.timeout = timeout;
        self
    }

    /// `rise` answers to come up, `fall` misses to go down (each at least 1).
    #[must_use]
    pub fn rise_fall(mut self, rise: u32, fall: u32) -> WatchdogConfig {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
        self
    }
}

/// A running watchdog; dropping it stops its thread without waiting for it: no call of
/// `on_change` starts after the drop, and the thread ends at once, or when its probe in
/// progress has its answer or its `timeout`. (Dropping it on the runtime it watches must not
/// wait: that probe needs the runtime.)
#[derive(Debug)]
#[must_use = "dropping the watchdog stops it"]
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    /// Dropped with the watchdog: wakes the thread from its pause between probes.
    _wake: mpsc::Sender<()>,
}

impl Watchdog {
    /// Watches `runtime` from a new OS thread, calling `on_change(health, why)` on that thread
    /// when the verdict changes. It starts up (no call until the first change).
    ///
    /// ```
    /// use std::time::Duration;
    /// use health_check::{Health, Watchdog, WatchdogConfig};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build()?;
    /// let config = WatchdogConfig::default().every(Duration::from_millis(20), Duration::from_millis(50));
    /// let (tell, told) = std::sync::mpsc::channel();
    /// let _watchdog = Watchdog::spawn(runtime.handle().clone(), config, move |health, why| {
    ///     let _ = tell.send((health, why.to_owned())); // lower the VRRP priority here
    /// })?;
    /// // A handler that blocks the only worker for 300 ms:
    /// runtime.spawn(async { std::thread::sleep(Duration::from_millis(300)) });
    /// let (health, why) = told.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!(health, Health::Down);
    /// assert_eq!(why, "the runtime ran no task within 50ms");
    /// let (health, _) = told.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!(health, Health::Up); // running tasks again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(
        runtime: tokio::runtime::Handle,
        config: WatchdogConfig,
        mut on_change: impl FnMut(Health, &str) + Send + 'static,
    ) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (wake, pause) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("health-watchdog".into())
            .spawn(move || {
                let mut health = Health::Up;
                let (mut answered, mut missed) = (0u32, 0u32);
                while !stopped.load(Ordering::Relaxed) {
                    let (tx, rx) = mpsc::sync_channel(1);
                    drop(runtime.spawn(async move {
                        let _ = tx.send(());
                    }));
                    let verdict = match rx.recv_timeout(config.timeout) {
                        Ok(()) => Ok(()),
                        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                            "the runtime ran no task within {:?}",
                            config.timeout
                        )),
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            Err("the runtime has shut down".to_owned())
                        }
                    };
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    match verdict {
                        Ok(()) => {
                            (answered, missed) = (answered + 1, 0);
                            if health == Health::Down && answered >= config.rise {
                                health = Health::Up;
                                on_change(health, "the runtime runs tasks again");
                            }
                        }
                        Err(why) => {
                            (answered, missed) = (0, missed + 1);
                            if health == Health::Up && missed >= config.fall {
                                health = Health::Down;
                                on_change(health, &why);
                            }
                        }
                    }
                    // The pause, cut short when the watchdog is dropped.
                    if let Err(mpsc::RecvTimeoutError::Disconnected) =
                        pause.recv_timeout(config.period)
                    {
                        return;
                    }
                }
            })?;
        Ok(Watchdog { stop, _wake: wake })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_it_on_the_runtime_it_watches_does_not_wait_for_its_probe() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let config =
                WatchdogConfig::default().every(Duration::from_millis(10), Duration::from_secs(2));
            let watchdog = Watchdog::spawn(tokio::runtime::Handle::current(), config, |_, _| {})
                .expect("thread");
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The runtime is busy dropping: a probe in progress cannot be answered.
            let started = std::time::Instant::now();
            drop(watchdog);
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "{:?}",
                started.elapsed()
            );
        });
    }
}
