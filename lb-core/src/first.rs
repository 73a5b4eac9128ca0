//! [`First`]: HAProxy's `first`.

use crate::algorithm::{Algorithm, Candidate, PickContext};

/// The first server (in the order they were added) that still has room below its `maxconn`
/// gets the request (HAProxy `balance first`): traffic fills servers one after another, so the
/// rest can be powered down. A server without `maxconn` has room without limit. When all are
/// full the one with the most room left (the least over its limit) is picked: a
/// `MaxConn` layer in front queues the request as HAProxy does.
#[derive(Clone, Copy, Debug, Default)]
pub struct First;

impl Algorithm for First {
    type Table = ();

    fn build(&self, _candidates: &[Candidate], _previous: Option<&()>) {}

    fn pick(&self, _: &(), candidates: &[Candidate], cx: &PickContext<'_>) -> Option<usize> {
        let mut fallback: Option<(usize, i64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            if cx.excludes(c) {
                continue;
            }
            let Some(max) = c.maxconn else {
                return Some(i);
            };
            let room = i64::from(max) - c.load.in_flight() as i64;
            if room > 0 {
                return Some(i);
            }
            if fallback.is_none_or(|(_, r)| room > r) {
                fallback = Some((i, room));
            }
        }
        fallback.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::algorithm::testing::candidates;

    /// Changes `c`'s requests in flight by `n`.
    fn load(c: &Candidate, n: isize) {
        let counter = c.load.in_flight_counter();
        if n >= 0 {
            counter.fetch_add(n.unsigned_abs(), Ordering::Relaxed);
        } else {
            counter.fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
        }
    }

    #[test]
    fn fills_the_first_server_up_to_maxconn_then_the_next() {
        let mut c = candidates(&[1, 1, 1]);
        for x in &mut c {
            x.maxconn = Some(2);
        }
        let mut picks = Vec::new();
        for _ in 0..6 {
            let i = First.pick(&(), &c, &PickContext::default()).unwrap();
            load(&c[i], 1);
            picks.push(i);
        }
        assert_eq!(picks, [0, 0, 1, 1, 2, 2]);
        // All full: the least over its limit.
        load(&c[0], -1);
        load(&c[1], 1);
        load(&c[0], 1);
        load(&c[2], 2);
        assert_eq!(First.pick(&(), &c, &PickContext::default()), Some(0));
        // A freed slot on the first server brings traffic back to it.
        load(&c[0], -2);
        assert_eq!(First.pick(&(), &c, &PickContext::default()), Some(0));
    }
}
