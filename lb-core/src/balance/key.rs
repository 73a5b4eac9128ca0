//! [`HashKeyOf`]: how a request gives consistent hashing its key.

/// Extracts the bytes a consistent-hash algorithm hashes from a request (HAProxy's `balance
/// source`, `uri`, `hdr(name)`, `url_param`). The balancer keeps one buffer and reuses it, so
/// extracting allocates nothing once the buffer has grown.
///
/// Closures `Fn(&Req, &mut Vec<u8>) -> bool` implement it; with the `http` feature,
/// `HashKey` does for `http::Request`.
pub trait HashKeyOf<Req> {
    /// Writes the key of `request` into `out` (empty on entry) and returns `true`, or returns
    /// `false` when the request has no key (the algorithm then falls back to round robin).
    fn hash_key(&self, request: &Req, out: &mut Vec<u8>) -> bool;
}

/// No key: for algorithms that do not hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoKey;

impl<Req> HashKeyOf<Req> for NoKey {
    fn hash_key(&self, _request: &Req, _out: &mut Vec<u8>) -> bool {
        false
    }
}

impl<Req, F> HashKeyOf<Req> for F
where
    F: Fn(&Req, &mut Vec<u8>) -> bool,
{
    fn hash_key(&self, request: &Req, out: &mut Vec<u8>) -> bool {
        self(request, out)
    }
}
