//! The story both ways tell, and how it is printed: two routers share one virtual address,
//! the Master crashes, the Backup takes over after Master_Down_Interval (RFC 5798 §6.4.2).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use vrrp_core::packet::{AdvertInterval, Priority, Version, Vrid};

/// The virtual router both routers run.
pub(crate) const VRID: Vrid = match Vrid::new(51) {
    Some(v) => v,
    None => panic!("51 is a valid VRID"),
};
/// The virtual address.
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 200);
/// Its prefix length on the segment.
pub(crate) const VIP_PREFIX: u8 = 24;
/// The VRRPv3 advertisement interval: 100 ms, so the story takes seconds.
pub(crate) fn advert_interval() -> AdvertInterval {
    // 10 centiseconds is always valid; the fallback is never taken.
    AdvertInterval::from_centis(10).unwrap_or(AdvertInterval::DEFAULT)
}
/// The client that sends echo requests to the virtual address (namespaces only).
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);

/// One router of the story.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// `r1`, `r2`: also the suffix of its namespace.
    pub(crate) name: &'static str,
    /// Its address on the segment.
    pub(crate) address: Ipv4Addr,
    /// Its VRRP priority.
    pub(crate) priority: u8,
}

impl Node {
    /// The timeline's line for its start: `r1 (10.99.0.11, priority 150) starts`.
    pub(crate) fn starts(&self) -> String {
        format!(
            "{} ({}, priority {}) starts",
            self.name, self.address, self.priority
        )
    }
}

/// The Master-to-be (higher priority) and the Backup.
pub(crate) const ROUTERS: [Node; 2] = [
    Node {
        name: "r1",
        address: Ipv4Addr::new(10, 99, 0, 11),
        priority: 150,
    },
    Node {
        name: "r2",
        address: Ipv4Addr::new(10, 99, 0, 12),
        priority: 100,
    },
];

/// Master_Down_Interval of a Backup with `priority`: 3 intervals + Skew_Time.
pub(crate) fn master_down_interval(priority: u8) -> Duration {
    vrrp_core::router::master_down_interval(Version::V3, Priority::new(priority), advert_interval())
}

/// Something that happened, `at` after the story began.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Line {
    /// Since the story began.
    pub(crate) at: Duration,
    /// What happened.
    pub(crate) text: String,
}

/// What the client saw while sending echo requests to the virtual address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ClientView {
    /// The longest gap between two echo replies, across the crash.
    pub(crate) outage: Duration,
    /// Echo requests that got no reply.
    pub(crate) lost: u64,
    /// Requests per second.
    pub(crate) rate: u32,
}

/// How the story went.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    /// `namespaces` or `simulator`.
    pub(crate) mode: &'static str,
    /// The timeline, in order.
    pub(crate) lines: Vec<Line>,
    /// From the crash to the Backup entering Master.
    pub(crate) takeover: Duration,
    /// The client's view (namespaces only).
    pub(crate) client: Option<ClientView>,
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The timeline, sorted by time.
pub(crate) fn timeline(lines: &[Line]) -> String {
    let mut out = String::new();
    let mut lines = lines.to_vec();
    lines.sort_by_key(|l| l.at);
    let _ = writeln!(out, "\n   time  what happened");
    for l in &lines {
        let _ = writeln!(out, "{:>6.3}s  {}", l.at.as_secs_f64(), l.text);
    }
    out
}

/// The report: the timeline, the measured figures, the theory they are checked against, and a
/// last `result:` line with the figures for scripts.
pub(crate) fn report(o: &Outcome) -> String {
    format!(
        "{}result: mode={}{}\n",
        report_body(o),
        o.mode,
        result_fields(o)
    )
}

/// [`report`] without its `result:` line.
pub(crate) fn report_body(o: &Outcome) -> String {
    let mut out = timeline(&o.lines);
    let backup = ROUTERS[1];
    let interval = advert_interval().as_duration();
    let mdi = master_down_interval(backup.priority);
    let skew = mdi - interval * 3;
    let _ = writeln!(
        out,
        "\n{} took over {} after the crash.",
        backup.name,
        ms(o.takeover)
    );
    if let Some(c) = o.client {
        let _ = writeln!(
            out,
            "The client saw an outage of {}: the longest gap between replies to its {} echo requests/s ({} unanswered).",
            ms(c.outage),
            c.rate,
            c.lost
        );
    }
    let _ = writeln!(
        out,
        "Theory (RFC 5798 §6.4.2): {} becomes Master when it has heard no advert for\n\
         Master_Down_Interval = 3 x {} + Skew_Time ((256 - {}) / 256 x {} = {}) = {}.\n\
         The last advert left 0 to {} before the crash, so the takeover comes {} to {} after it.",
        backup.name,
        ms(interval),
        backup.priority,
        ms(interval),
        ms(skew),
        ms(mdi),
        ms(interval),
        ms(mdi.saturating_sub(interval)),
        ms(mdi)
    );
    out
}

/// The figures of the `result:` line:
/// ` takeover=0.3102s outage=0.3090s lost=30 master_down_interval=0.3609s`.
pub(crate) fn result_fields(o: &Outcome) -> String {
    let mut out = format!(" takeover={:.4}s", o.takeover.as_secs_f64());
    if let Some(c) = o.client {
        let _ = write!(
            out,
            " outage={:.4}s lost={}",
            c.outage.as_secs_f64(),
            c.lost
        );
    }
    let mdi = master_down_interval(ROUTERS[1].priority);
    let _ = write!(out, " master_down_interval={:.4}s", mdi.as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backups_master_down_interval_is_three_intervals_and_its_skew() {
        // (256 - 100) / 256 x 100 ms = 60.9375 ms.
        assert_eq!(master_down_interval(100), Duration::from_micros(360_937));
    }

    #[test]
    fn the_report_ends_with_the_figures() {
        let o = Outcome {
            mode: "simulator",
            lines: vec![
                Line {
                    at: Duration::from_millis(2050),
                    text: "r1 crashes".into(),
                },
                Line {
                    at: Duration::from_millis(0),
                    text: "r1 starts".into(),
                },
            ],
            takeover: Duration::from_millis(300),
            client: None,
        };
        let r = report(&o);
        assert!(r.find("r1 starts") < r.find("r1 crashes"), "{r}");
        assert!(r.contains("r2 took over 300.0 ms after the crash."), "{r}");
        assert!(
            r.ends_with("result: mode=simulator takeover=0.3000s master_down_interval=0.3609s\n"),
            "{r}"
        );
    }
}
