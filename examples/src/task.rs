//! A spawned task that lives as long as the value that holds it.

use std::future::Future;

use tokio::task::JoinHandle;

/// A task aborted when this is dropped: the watcher or feeder of the struct that holds it.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Spawns `task` on the current tokio runtime.
    pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) -> AbortOnDrop {
        AbortOnDrop(tokio::spawn(task))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
