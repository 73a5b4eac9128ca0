//! The [`Check`] trait: one probe of one thing, run by a [`Monitor`](crate::Monitor).

use async_trait::async_trait;

use crate::CheckError;

/// One probe. Implement it for your own checks; the monitor adds the schedule, the timeout and
/// the rise/fall counting, so `check` only says whether the target is healthy right now.
#[async_trait]
pub trait Check: Send + Sync + 'static {
    /// Probes once: `Ok` if healthy.
    async fn check(&self) -> Result<(), CheckError>;

    /// A short description for logs and stats pages, e.g. `tcp 127.0.0.1:8080`.
    fn describe(&self) -> String;

    /// Resolves when the target is known to have failed *between* two checks, with the reason:
    /// a watched process exited. The [`Monitor`](crate::Monitor) awaits it while the target is
    /// up and marks it down at once, without waiting for `fall` failed checks (HAProxy's
    /// `on-error mark-down`; keepalived's `track_process`). Coming back up still takes `rise`
    /// successful checks.
    ///
    /// Called afresh after every check while up, and dropped when the next check is due, so
    /// an implementation watches the target *as it is now* and must resolve at once if it is
    /// already gone. The default never resolves: most checks can only be polled.
    async fn failed(&self) -> CheckError {
        std::future::pending().await
    }
}
