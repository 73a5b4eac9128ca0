//! Reading what the namespace story's processes wrote: the client's replies and the routers'
//! state changes (vrrpd's log), both timestamped in seconds since the epoch.

use std::time::Duration;

use crate::story::ClientView;

/// One echo reply: when it arrived (seconds since the epoch) and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reply {
    pub(crate) at: f64,
    pub(crate) seq: u64,
}

/// The replies the client printed: `reply 1732370000.123456 12`.
pub(crate) fn replies(output: &str) -> Vec<Reply> {
    output
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("reply ")?.split_whitespace();
            Some(Reply {
                at: words.next()?.parse().ok()?,
                seq: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// The client's view of a crash at `crash` (seconds since the epoch): the longest gap between
/// consecutive replies from the last one before the crash on, and the requests never answered.
/// `None` without a reply on each side of the crash.
pub(crate) fn client_view(replies: &[Reply], crash: f64, rate: u32) -> Option<ClientView> {
    let last_before = replies.iter().rposition(|r| r.at <= crash)?;
    let from = &replies[last_before..];
    if from.len() < 2 {
        return None;
    }
    let gap = from
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .fold(0.0_f64, f64::max);
    let lost = from
        .windows(2)
        .map(|w| w[1].seq.saturating_sub(w[0].seq + 1))
        .sum();
    Some(ClientView {
        outage: Duration::from_secs_f64(gap.max(0.0)),
        lost,
        rate,
    })
}

/// A state change in a vrrpd log.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    /// Seconds since the epoch.
    pub(crate) at: f64,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) reason: String,
}

/// The state changes in a log written with [`EpochTime`](crate::EpochTime) timestamps:
/// `1732370000.123456  INFO state changed instance=VI_1 from=Backup to=Master reason=MasterDown`.
pub(crate) fn changes(log: &str) -> Vec<Change> {
    log.lines()
        .filter(|l| l.contains(" state changed "))
        .filter_map(|l| {
            let at = l.split_whitespace().next()?.parse().ok()?;
            let value = |key: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_owned)
            };
            Some(Change {
                at,
                from: value("from=")?,
                to: value("to=")?,
                // The reason is last and may hold spaces (`Preempted { by: .. }`).
                reason: l.split_once("reason=").map(|(_, r)| r.trim().to_owned())?,
            })
        })
        .collect()
}

/// The lines of a log (timestamped as [`changes`] reads them) that contain `needle`: when
/// (seconds since the epoch) and the message, without the level.
pub(crate) fn events(log: &str, needle: &str) -> Vec<(f64, String)> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let mut words = l.splitn(2, char::is_whitespace);
            let at = words.next()?.parse().ok()?;
            let (_level, message) = words.next()?.trim_start().split_once(' ')?;
            Some((at, message.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_replies_and_the_gap_across_the_crash() {
        let out = "reply 100.000 1\n\
            reply 100.010 2\n\
            reply 100.020 3\n\
            send 20: No route to host\n\
            reply 100.330 34\n\
            reply 100.340 35\n";
        let r = replies(out);
        assert_eq!(r.len(), 5);
        assert_eq!(
            r[3],
            Reply {
                at: 100.33,
                seq: 34
            }
        );
        let v = client_view(&r, 100.015, 100).expect("replies on both sides");
        assert_eq!(v.lost, 30);
        assert!((v.outage.as_secs_f64() - 0.31).abs() < 1e-6, "{v:?}");
        assert_eq!(client_view(&r, 99.0, 100), None, "nothing before the crash");
        assert_eq!(client_view(&r, 101.0, 100), None, "nothing after it");
    }

    #[test]
    fn state_changes_with_their_reasons() {
        let log = "1732370000.100000  INFO driver started interface=eth0 instances=1\n\
            1732370000.101000  INFO state changed instance=VI_1 from=Initialize to=Backup reason=Startup\n\
            1732370000.461000  INFO state changed instance=VI_1 from=Backup to=Master reason=Preempted { by: 10.99.0.11, priority: Priority(150) }\n";
        let c = changes(log);
        assert_eq!(c.len(), 2);
        assert_eq!((c[1].from.as_str(), c[1].to.as_str()), ("Backup", "Master"));
        assert_eq!(
            c[1].reason,
            "Preempted { by: 10.99.0.11, priority: Priority(150) }"
        );
        assert!((c[0].at - 1_732_370_000.101).abs() < 1e-6);
        let drained = events(
            "1732370000.200000  INFO connections drained: sending priority 0 left=0\n",
            "drained",
        );
        assert_eq!(
            drained,
            [(
                1_732_370_000.2,
                "connections drained: sending priority 0 left=0".to_owned()
            )]
        );
    }
}
