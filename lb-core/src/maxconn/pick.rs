//! [`pick_free`]: the algorithm's pick among the backends that have a free slot.

use std::hash::Hash;

use super::Attempt;
use crate::backend::{Backend, Snapshot};
use crate::{Algorithm, NoBackend, PickContext};

/// Picks a backend for a request with hash key `key`, skipping those at their `maxconn`
/// (HAProxy: a full server is passed over by the balancing algorithm; the request queues only
/// when every candidate is full).
///
/// `take` tries to take a slot on the backend the algorithm picked: `Some(Attempt::Taken)`
/// ends the pick, `Some(Attempt::Full)` passes over a full backend, `None` over one the
/// caller cannot use. `exclude` holds the slots ([`Snapshot::slot`]) to skip from the start
/// (e.g. a server that just failed); the ones passed over are added to it.
///
/// Returns [`Attempt::Full`] when every available candidate was full, and
/// [`NoBackend`] when none is available or every one was excluded or unusable.
///
/// ```
/// use lb_core::maxconn::{Attempt, Gauge, pick_free};
/// use lb_core::{BackendSet, RoundRobin};
///
/// let set = BackendSet::new(RoundRobin);
/// set.insert("a", 1)?;
/// set.insert("b", 1)?;
/// let slots = [Gauge::default(), Gauge::default()]; // maxconn 1 each
/// let snapshot = set.snapshot();
/// let mut picks = Vec::new();
/// for _ in 0..3 {
///     let take = |b: &_| {
///         let name: &str = *lb_core::backend::Backend::key(b);
///         let gauge = &slots[usize::from(name == "b")];
///         Some(if gauge.try_enter(1) { Attempt::Taken(name) } else { Attempt::Full })
///     };
///     match pick_free(&snapshot, set.algorithm(), None, &mut Vec::new(), take)? {
///         Attempt::Taken(name) => picks.push(name),
///         Attempt::Full => picks.push("queue"),
///     }
/// }
/// assert_eq!(picks, ["a", "b", "queue"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pick_free<'s, K, A, T>(
    snapshot: &'s Snapshot<K, A>,
    algorithm: &A,
    key: Option<&[u8]>,
    exclude: &mut Vec<usize>,
    mut take: impl FnMut(&'s Backend<K>) -> Option<Attempt<T>>,
) -> Result<Attempt<T>, NoBackend>
where
    K: Clone + Eq + Hash,
    A: Algorithm,
{
    let mut full = false;
    loop {
        let context = PickContext {
            key,
            exclude: exclude.as_slice(),
        };
        let backend = match snapshot.pick(algorithm, &context) {
            Ok(backend) => backend,
            Err(NoBackend::AllExcluded { .. }) if full => return Ok(Attempt::Full),
            Err(e) => return Err(e),
        };
        let Some(slot) = snapshot.slot(backend.key()) else {
            return Err(NoBackend::AllExcluded {
                available: snapshot.available(),
            });
        };
        match take(backend) {
            Some(Attempt::Taken(taken)) => return Ok(Attempt::Taken(taken)),
            Some(Attempt::Full) => full = true,
            None => {}
        }
        exclude.push(slot);
    }
}
