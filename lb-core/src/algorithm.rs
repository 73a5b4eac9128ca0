//! The one small trait every balancing algorithm implements ([`Algorithm`]), what it sees
//! ([`Candidate`], [`PickContext`]), and the tables the built-in algorithms precompute, for an
//! algorithm of one's own that wants them ([`Cycle`], [`LeastConnTable`], [`MaglevTable`],
//! [`RandomTable`]).

use std::sync::Arc;

use crate::backend::Load;

pub use crate::consistent_hash::{DEFAULT_TABLE_SIZE, MaglevTable};
pub use crate::cycle::Cycle;
pub use crate::least_conn::LeastConnTable;
pub use crate::random::RandomTable;

/// One available backend as an algorithm sees it.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its position among all members of the snapshot (stable while the snapshot lives).
    pub(crate) slot: usize,
    /// Its effective weight (the configured weight scaled by slow start), at least 1.
    pub weight: u32,
    /// Its configured weight (what static algorithms use).
    pub configured_weight: u32,
    /// Its connection limit, if it has one (HAProxy `maxconn`; used by [`First`](crate::First)).
    pub maxconn: Option<u32>,
    /// A stable hash of its key (its `Display` form): what consistent hashing places.
    pub id_hash: u64,
    /// Its live load.
    pub load: Arc<Load>,
}

impl Candidate {
    /// Its position among all members of the snapshot ([`Snapshot::backends`](crate::backend::Snapshot::backends)).
    pub fn slot(&self) -> usize {
        self.slot
    }
}

/// What a request tells the algorithm.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickContext<'a> {
    /// The bytes to hash for consistent-hash algorithms (source address, URI, header value...;
    /// see `HashKey` with the `http` feature). `None`: hash algorithms fall back to round robin.
    pub key: Option<&'a [u8]>,
    /// Member slots not to pick (already tried by a retry, not ready).
    pub exclude: &'a [usize],
}

impl<'a> PickContext<'a> {
    /// A context with a hash key.
    pub fn with_key(key: &'a [u8]) -> Self {
        PickContext {
            key: Some(key),
            exclude: &[],
        }
    }

    /// Whether `candidate` is excluded.
    pub fn excludes(&self, candidate: &Candidate) -> bool {
        !self.exclude.is_empty() && self.exclude.contains(&candidate.slot)
    }
}

/// A balancing algorithm: builds its tables for a set of candidates, then picks among them.
///
/// `build` runs on every membership, weight or health change, off the pick path; `pick` runs
/// per request, possibly from several threads at once (state that picks change lives in atomics
/// or a lock inside the table).
pub trait Algorithm: Send + Sync + 'static {
    /// What `build` precomputes (a rotation, a hash table...).
    type Table: Send + Sync;

    /// Whether `pick` reads latencies ([`Load::latency`]): only then are requests timed.
    fn uses_latency(&self) -> bool {
        false
    }

    /// Builds the table for `candidates`; `previous` is the table of the snapshot being
    /// replaced, for algorithms that carry a position over.
    fn build(&self, candidates: &[Candidate], previous: Option<&Self::Table>) -> Self::Table;

    /// The index in `candidates` to send the request to, or `None` when every candidate is
    /// excluded. `candidates` is never empty.
    fn pick(
        &self,
        table: &Self::Table,
        candidates: &[Candidate],
        context: &PickContext<'_>,
    ) -> Option<usize>;
}

/// [`PickContext`] as the built-in algorithms' `pick` spells it, short enough for the
/// signature to stand on one line.
pub(crate) type Cx<'a> = PickContext<'a>;

/// Walks from `start` over `n` positions and returns the first not excluded.
pub(crate) fn first_allowed(
    candidates: &[Candidate],
    context: &PickContext<'_>,
    start: usize,
) -> Option<usize> {
    let n = candidates.len();
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| !context.excludes(&candidates[i]))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Candidates without a set, for the algorithms' own tests.
    use super::*;

    pub(crate) fn candidates(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(slot, &weight)| Candidate {
                slot,
                weight,
                configured_weight: weight,
                maxconn: None,
                id_hash: crate::hash::stable_hash(format!("s{slot}").as_bytes(), 0),
                load: Arc::new(Load::default()),
            })
            .collect()
    }

    /// `n` picks as letters a, b, c...
    pub(crate) fn sequence<A: Algorithm>(a: &A, weights: &[u32], n: usize) -> String {
        let c = candidates(weights);
        let table = a.build(&c, None);
        (0..n)
            .map(|_| {
                let i = a.pick(&table, &c, &PickContext::default()).expect("a pick");
                char::from(b'a' + i as u8)
            })
            .collect()
    }
}
