//! The stable hash behind consistent hashing and backend identities: FNV-1a over the bytes,
//! then MurmurHash3's 64-bit finaliser for avalanche. No random seed, no dependence on the
//! Rust version or the platform: the same key maps to the same backend in every process, across
//! restarts and upgrades (std's `DefaultHasher` promises none of that).

/// Hashes `bytes` with `seed` (different seeds give independent hashes, as Maglev needs two).
pub(crate) fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h ^ bytes.len() as u64)
}

/// MurmurHash3's finaliser: every input bit affects every output bit.
pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_values_never_change() {
        // Pinned: changing these would remap every consistent-hash key of every user.
        assert_eq!(stable_hash(b"", 0), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(b"10.0.0.1", 0), 0x0b1e_6835_2c4b_42e3);
        assert_ne!(stable_hash(b"web1", 0), stable_hash(b"web1", 1));
    }
}
