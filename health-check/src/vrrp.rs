//! A [`Monitor`] feeding a VRRP tracked object (feature `vrrp`): the check's verdict moves
//! the router's priority (or puts it in Fault, for weight 0) with no script in between.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vrrp_core::driver::{CommandError, TrackerHandle};

use tokio_stream::{StreamExt, StreamMap, wrappers::WatchStream};

use crate::{Health, Monitor, Status, Watchdog, WatchdogConfig};

/// Feeds `monitor`'s health into `tracker` on a task of its own: the current health at once
/// (a monitor that is already down makes the router lower its priority before any change),
/// then every change.
///
/// The task ends when the monitor is dropped (`Ok`) or the tracker's driver ended, or the
/// router tracks no object of that name (the error).
///
/// ```no_run
/// use std::sync::Arc;
/// use health_check::{Monitor, MonitorConfig, TcpCheck};
/// use vrrp_core::driver::DriverHandle;
/// use vrrp_core::packet::Vrid;
///
/// # fn demo(driver: DriverHandle, vrid: Vrid) -> Result<(), Box<dyn std::error::Error>> {
/// // keepalived: `track_script { chk_haproxy weight -20 }` with the script checking a port.
/// let haproxy = Monitor::spawn(
///     Arc::new(TcpCheck::new("127.0.0.1:80".parse()?)),
///     MonitorConfig::default(),
/// )?;
/// health_check::vrrp::track(&haproxy, driver.tracker(vrid, "chk_haproxy"));
/// # Ok(()) }
/// ```
pub fn track(monitor: &Monitor, tracker: TrackerHandle) -> JoinHandle<Result<(), CommandError>> {
    track_status(monitor.subscribe(), tracker)
}

/// [`track`] from a monitor's status channel ([`Monitor::subscribe`]).
pub fn track_status(
    mut status: watch::Receiver<Status>,
    tracker: TrackerHandle,
) -> JoinHandle<Result<(), CommandError>> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let up = status.borrow_and_update().health == Health::Up;
            if last != Some(up) {
                tracker.set(up).await?;
                last = Some(up);
            }
            if status.changed().await.is_err() {
                return Ok(());
            }
        }
    })
}

/// Feeds "at least one of `monitors` is up" into `tracker`: a balancer's listener, whose
/// router should stand down (weight 0: Fault) or lose priority (a negative weight) only when
/// every backend is down, not when one of them is (that is [`track`] per backend, with its
/// own weight). The current state first, then every change; no monitor at all is down. Ends
/// as [`track`] does, when every monitor is dropped.
///
/// ```no_run
/// use health_check::Monitor;
/// use vrrp_core::driver::TrackerHandle;
///
/// # fn demo(backends: &[Monitor], tracker: TrackerHandle) {
/// // hald: `all backends of listener web down → FAULT`.
/// health_check::vrrp::track_any(backends, tracker);
/// # }
/// ```
pub fn track_any(
    monitors: &[Monitor],
    tracker: TrackerHandle,
) -> JoinHandle<Result<(), CommandError>> {
    track_any_status(monitors.iter().map(Monitor::subscribe).collect(), tracker)
}

/// [`track_any`] from the monitors' status channels.
pub fn track_any_status(
    mut statuses: Vec<watch::Receiver<Status>>,
    tracker: TrackerHandle,
) -> JoinHandle<Result<(), CommandError>> {
    tokio::spawn(async move {
        // Read and marked seen: a change from here on comes through the streams.
        let mut up: Vec<bool> = statuses
            .iter_mut()
            .map(|s| s.borrow_and_update().health == Health::Up)
            .collect();
        let mut changes = StreamMap::new();
        for (i, status) in statuses.into_iter().enumerate() {
            changes.insert(i, WatchStream::from_changes(status));
        }
        let mut last = None;
        loop {
            let any = up.iter().any(|&u| u);
            if last != Some(any) {
                tracker.set(any).await?;
                last = Some(any);
            }
            match changes.next().await {
                Some((i, status)) => up[i] = status.health == Health::Up,
                None => return Ok(()),
            }
        }
    })
}

/// A [`Watchdog`] on `runtime` that sets `tracker` from its own OS thread: down (with a
/// weight 0 tracker, Fault: priority 0 goes out, the peer takes over after Skew_Time) when the
/// runtime stops running tasks, up when it runs them again. Run the VRRP driver on another
/// runtime than the one watched (its own thread), so that it still advertises, and answers
/// the tracker, while the watched one is wedged; each set waits at most the probe timeout.
///
/// ```no_run
/// use health_check::WatchdogConfig;
/// use vrrp_core::driver::TrackerHandle;
///
/// # fn demo(balancer: tokio::runtime::Handle, tracker: TrackerHandle) -> std::io::Result<()> {
/// // hald: the balancer's runtime wedged = this host must not hold the VIP.
/// let _watchdog = health_check::vrrp::watchdog(balancer, WatchdogConfig::default(), tracker)?;
/// # Ok(()) }
/// ```
pub fn watchdog(
    runtime: tokio::runtime::Handle,
    config: WatchdogConfig,
    tracker: TrackerHandle,
) -> std::io::Result<Watchdog> {
    Watchdog::spawn(runtime, config, move |health, _why| {
        // A driver that ended, or did not answer, has no priority left to lower.
        let _ = tracker.set_blocking(health == Health::Up, config.timeout);
    })
}
