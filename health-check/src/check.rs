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
}
