//! [`ConsistentHash`]: Maglev hashing over a request key (HAProxy `balance source`, `uri`,
//! `hdr(name)`, `url_param` with `hash-type consistent`).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::algorithm::{Algorithm, Candidate, Cx};
use crate::hash::stable_hash;

/// Maglev's lookup table size: a prime, so every skip is coprime with it. 65,537 entries keep
/// each server's share within a fraction of a percent of even for up to a few hundred servers.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// Consistent hashing with Maglev (Eisenbud et al., NSDI 2016): a lookup table of a prime size
/// in which every server claims entries in the order of its own permutation, weighted servers
/// claiming proportionally more per round.
///
/// Why Maglev rather than a ketama ring: the table gives each server its share to within one
/// entry (a ring with 160 points per server is typically off by several percent), a lookup is
/// one hash and one index (no binary search), and building it is O(table size). The cost is
/// slightly more disruption than ideal when membership changes: measured in
/// `tests/consistent_hash.rs`, adding or removing one of N servers moves at most 1/N + 2 % of
/// keys (the bound the tests enforce for N = 3..100).
///
/// The hash is stable (no random seed, fixed algorithm; see the `hash` module): the same key
/// goes to the same server in every process and after restarts, as long as the servers' keys
/// (their `Display` form) and weights are the same. Requests without a key fall back to round
/// robin. When the key's server is excluded (tried already, not ready) the next entries of the
/// table are walked, as HAProxy walks its ring to the next server.
#[derive(Clone, Copy, Debug)]
pub struct ConsistentHash {
    table_size: usize,
}

impl Default for ConsistentHash {
    fn default() -> Self {
        ConsistentHash {
            table_size: DEFAULT_TABLE_SIZE,
        }
    }
}

impl ConsistentHash {
    /// With the default table size (65,537).
    pub fn new() -> Self {
        ConsistentHash::default()
    }

    /// With another table size; it should be a prime well above 100 × the number of servers.
    /// Sizes below 2 are raised to 2.
    pub fn with_table_size(table_size: usize) -> Self {
        ConsistentHash {
            table_size: table_size.max(2),
        }
    }

    /// The server slot in `candidates` a key maps to, ignoring exclusions.
    pub fn lookup(&self, table: &MaglevTable, key: &[u8]) -> Option<usize> {
        let entries = &table.entries;
        if entries.is_empty() {
            return None;
        }
        let h = stable_hash(key, KEY_SEED) % entries.len() as u64;
        Some(entries[h as usize] as usize)
    }
}

/// The Maglev lookup table.
#[derive(Debug)]
pub struct MaglevTable {
    entries: Vec<u32>,
    cursor: AtomicUsize,
}

const OFFSET_SEED: u64 = 1;
const SKIP_SEED: u64 = 2;
const KEY_SEED: u64 = 3;

impl Algorithm for ConsistentHash {
    type Table = MaglevTable;

    fn build(&self, candidates: &[Candidate], _previous: Option<&MaglevTable>) -> MaglevTable {
        MaglevTable {
            entries: populate(candidates, self.table_size),
            cursor: AtomicUsize::new(0),
        }
    }

    fn pick(&self, t: &MaglevTable, candidates: &[Candidate], cx: &Cx<'_>) -> Option<usize> {
        let m = t.entries.len();
        let start = match cx.key {
            Some(key) => (stable_hash(key, KEY_SEED) % m as u64) as usize,
            None => {
                // No key: plain rotation over the servers.
                let n = candidates.len();
                let at = t.cursor.fetch_add(1, Ordering::Relaxed);
                return crate::algorithm::first_allowed(candidates, cx, at % n);
            }
        };
        let first = t.entries[start] as usize;
        if !cx.excludes(&candidates[first]) {
            return Some(first);
        }
        (1..m)
            .map(|k| t.entries[(start + k) % m] as usize)
            .find(|&i| !cx.excludes(&candidates[i]))
    }
}

/// Maglev's population: each candidate walks its permutation (offset + j × skip mod M) and
/// claims the first free entry, in rounds (candidates in the order of their `id_hash`); a
/// candidate of weight w claims w / max weight entries per round on average (credit carried
/// over), so shares follow weights.
fn populate(candidates: &[Candidate], m: usize) -> Vec<u32> {
    let n = candidates.len();
    if n == 0 {
        return Vec::new();
    }
    let m64 = m as u64;
    let offset: Vec<u64> = candidates
        .iter()
        .map(|c| stable_hash(&c.id_hash.to_le_bytes(), OFFSET_SEED) % m64)
        .collect();
    let skip: Vec<u64> = candidates
        .iter()
        .map(|c| stable_hash(&c.id_hash.to_le_bytes(), SKIP_SEED) % (m64 - 1) + 1)
        .collect();
    let max_weight = candidates
        .iter()
        .map(|c| c.weight.max(1))
        .max()
        .unwrap_or(1);
    // Servers take turns in the order of their identities, not of their positions, so the
    // table depends only on which servers (and weights) there are: two balancers that learnt
    // the same servers in another order, or a server removed and added back, map alike.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| candidates[i].id_hash);
    let mut next = vec![0u64; n];
    let mut credit = vec![0f64; n];
    let mut entries = vec![u32::MAX; m];
    let mut filled = 0;
    // A server whose weight is too small for even one entry (weight ratios beyond the table
    // size) still gets one, so that it stays reachable when the others are excluded.
    let total_weight: f64 = candidates.iter().map(|c| f64::from(c.weight.max(1))).sum();
    for &i in &order {
        if filled < m && f64::from(candidates[i].weight.max(1)) * m as f64 / total_weight < 1.0 {
            claim(&mut entries, &mut next[i], offset[i], skip[i], i, m64);
            filled += 1;
        }
    }
    'rounds: loop {
        for &i in &order {
            credit[i] += f64::from(candidates[i].weight.max(1)) / f64::from(max_weight);
            while credit[i] >= 1.0 {
                credit[i] -= 1.0;
                if filled == m {
                    break 'rounds;
                }
                claim(&mut entries, &mut next[i], offset[i], skip[i], i, m64);
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
    }
    entries
}

/// Walks candidate `i`'s permutation (offset + j × skip mod M) to the first free entry.
fn claim(entries: &mut [u32], next: &mut u64, offset: u64, skip: u64, i: usize, m: u64) {
    loop {
        let e = ((offset + *next * skip) % m) as usize;
        *next += 1;
        if entries[e] == u32::MAX {
            entries[e] = i as u32;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::PickContext;
    use crate::algorithm::testing::candidates;

    #[test]
    fn every_entry_is_claimed_and_shares_follow_weights() {
        let c = candidates(&[1, 1, 2]);
        let t = ConsistentHash::new().build(&c, None);
        let mut counts = [0usize; 3];
        for &e in &t.entries {
            counts[e as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), DEFAULT_TABLE_SIZE);
        // 1 : 1 : 2 to within one entry per round.
        let quarter = DEFAULT_TABLE_SIZE as f64 / 4.0;
        for (i, want) in [quarter, quarter, 2.0 * quarter].into_iter().enumerate() {
            assert!((counts[i] as f64 - want).abs() <= 2.0, "{counts:?}");
        }
    }

    #[test]
    fn the_table_does_not_depend_on_the_order_of_the_candidates() {
        let forward = candidates(&[1, 2, 1, 1]);
        let mut backward = forward.clone();
        backward.reverse();
        let h = ConsistentHash::new();
        let servers = |c: &[Candidate]| -> Vec<u64> {
            let t = h.build(c, None);
            t.entries.iter().map(|&i| c[i as usize].id_hash).collect()
        };
        assert_eq!(servers(&forward), servers(&backward));
    }

    #[test]
    fn a_server_too_light_for_a_share_still_gets_an_entry() {
        // 1 : 1,000,000 over 65,537 entries: its share rounds to nothing, but it is reachable.
        let c = candidates(&[1_000_000, 1]);
        let t = ConsistentHash::new().build(&c, None);
        assert_eq!(t.entries.iter().filter(|&&e| e == 1).count(), 1);
        let exclude = [c[0].slot];
        let cx = PickContext {
            key: Some(b"k"),
            exclude: &exclude,
        };
        assert_eq!(ConsistentHash::new().pick(&t, &c, &cx), Some(1));
    }

    #[test]
    fn an_excluded_server_sends_its_keys_to_the_next_entries() {
        let c = candidates(&[1, 1, 1]);
        let h = ConsistentHash::new();
        let t = h.build(&c, None);
        let key = b"10.0.0.7";
        let home = h.pick(&t, &c, &PickContext::with_key(key)).unwrap();
        let exclude = [c[home].slot];
        let cx = PickContext {
            key: Some(key),
            exclude: &exclude,
        };
        let other = h.pick(&t, &c, &cx).unwrap();
        assert_ne!(other, home);
        // Deterministic: the same detour every time.
        assert_eq!(h.pick(&t, &c, &cx), Some(other));
    }
}
