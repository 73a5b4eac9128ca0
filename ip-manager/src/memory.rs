//! [`MemoryManager`]: an in-memory [`IpManager`] for the unit tests of code that uses one.
//! It touches no interface; this crate's own tests exercise the real backends.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use tokio::sync::mpsc::UnboundedSender;

use crate::{Change, Changes, Error, IpManager, Reconcile, Vip};

/// Holds the "added" addresses in a set; `add` and `remove` are idempotent like the real
/// backends. [`history`](Self::history) records every call, for assertions. Its watch
/// ([`IpManager::watch`]) notifies every `add` and `remove` (index 0), so a test removes an
/// address "behind the back" of a reconciler by calling `remove` itself.
#[derive(Debug, Default)]
pub struct MemoryManager {
    state: Mutex<(BTreeSet<Vip>, Vec<String>)>,
    watchers: Mutex<Vec<UnboundedSender<Change>>>,
    /// What [`IpManager::reconcile`] says; `None`: [`Reconcile::notified`].
    reconcile: Option<Reconcile>,
}

impl MemoryManager {
    /// An empty manager.
    pub fn new() -> MemoryManager {
        MemoryManager::default()
    }

    /// Says `reconcile` to a reconciler (a polled or [`shared`](Reconcile::shared) backend,
    /// for tests) instead of [`Reconcile::notified`].
    #[must_use]
    pub fn reconciled_as(mut self, reconcile: Reconcile) -> MemoryManager {
        self.reconcile = Some(reconcile);
        self
    }

    fn notify(&self, change: Change) {
        if let Ok(mut watchers) = self.watchers.lock() {
            watchers.retain(|w| w.send(change.clone()).is_ok());
        }
    }

    /// Every call so far, as `"add 10.0.0.1/24 dev eth0"` / `"remove ..."`.
    pub fn history(&self) -> Vec<String> {
        self.state.lock().map(|s| s.1.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl IpManager for MemoryManager {
    async fn add(&self, vip: &Vip) -> Result<(), Error> {
        if let Ok(mut s) = self.state.lock() {
            s.0.insert(vip.clone());
            s.1.push(format!("add {vip}"));
        }
        self.notify(Change::Added {
            address: vip.address,
            index: 0,
        });
        Ok(())
    }

    async fn remove(&self, vip: &Vip) -> Result<(), Error> {
        if let Ok(mut s) = self.state.lock() {
            s.0.retain(|v| !(v.address == vip.address && v.interface == vip.interface));
            s.1.push(format!("remove {vip}"));
        }
        self.notify(Change::Removed {
            address: vip.address,
            index: 0,
        });
        Ok(())
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, Error> {
        Ok(self
            .state
            .lock()
            .map(|s| {
                s.0.iter()
                    .filter(|v| v.interface == interface)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn reconcile(&self) -> Reconcile {
        self.reconcile.unwrap_or_else(Reconcile::notified)
    }

    fn watch(&self) -> Result<Option<Changes>, Error> {
        if !self.reconcile().notified {
            return Ok(None);
        }
        let (sender, changes) = Changes::channel();
        if let Ok(mut watchers) = self.watchers.lock() {
            watchers.push(sender);
        }
        Ok(Some(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idempotent_like_the_real_backends() {
        let m = MemoryManager::new();
        let v = Vip::parse("10.0.0.1/24", "eth0").unwrap();
        m.add(&v).await.unwrap();
        m.add(&v).await.unwrap();
        assert_eq!(m.list("eth0").await.unwrap(), std::slice::from_ref(&v));
        assert!(m.owns(&v).await.unwrap());
        m.remove(&v).await.unwrap();
        m.remove(&v).await.unwrap();
        assert!(!m.owns(&v).await.unwrap());
        assert_eq!(m.history().len(), 4);
    }
}
