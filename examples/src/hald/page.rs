//! hald's VRRP instances on the balancer's stats page: a section of the page (and of its JSON)
//! with one row per instance in the color of its state, and vrrpd's metrics on its `/metrics`,
//! so that a state change and a server change show in the same place.

use std::time::{Duration, UNIX_EPOCH};

use lb_core::stats_page::{Row, Section, Snapshot, SnapshotSource, Tone};
use tokio::sync::watch;

use crate::vrrpd::metrics;
use crate::vrrpd::status::Status;

/// The title of the VRRP section.
pub const TITLE: &str = "VRRP instances";

/// The page's view of the VRRP half: its latest status, as the VRRP thread publishes it.
#[derive(Debug)]
pub struct VrrpPage(pub watch::Receiver<Option<Status>>);

impl SnapshotSource for VrrpPage {
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new(UNIX_EPOCH, Duration::ZERO);
        if let Some(status) = &*self.0.borrow() {
            snapshot.sections = vec![section(status)];
        }
        snapshot
    }

    fn extra_metrics(&self, out: &mut String) {
        if let Some(status) = &*self.0.borrow() {
            out.push_str(&metrics::render(status));
        }
    }
}

/// The section: per instance its name, interface, VRID, state, priority (effective of base),
/// virtual addresses (with `*` on those not held), the tracked objects that are down, and its
/// last change.
pub fn section(status: &Status) -> Section {
    let mut section = Section::new(
        TITLE,
        [
            "instance",
            "interface",
            "VRID",
            "state",
            "priority",
            "virtual addresses",
            "down",
            "last change",
        ],
    );
    for i in &status.instances {
        let state = i.state.clone().unwrap_or_else(|| "STOPPED".to_owned());
        let tone = match state.as_str() {
            "MASTER" => Tone::Up,
            "BACKUP" => Tone::Idle,
            "FAULT" => Tone::Down,
            _ => Tone::Maint,
        };
        let priority = match i.effective_priority {
            Some(p) if p != i.base_priority => format!("{p} of {}", i.base_priority),
            _ => i.base_priority.to_string(),
        };
        let addresses: Vec<String> = i
            .virtual_addresses
            .iter()
            .map(|a| match a.held {
                Some(false) if state == "MASTER" => format!("{}*", a.address),
                _ => a.address.clone(),
            })
            .collect();
        let down: Vec<&str> = i
            .tracked_checks
            .iter()
            .chain(&i.tracked_interfaces)
            .filter(|t| t.up == Some(false))
            .map(|t| t.name.as_str())
            .collect();
        let last = i.last_transition.as_ref().map_or_else(String::new, |t| {
            format!(
                "{} -> {} ({}), {:.0} s ago",
                t.from, t.to, t.reason, t.seconds_ago
            )
        });
        section.rows.push(
            Row::new([
                i.name.clone(),
                i.interface.clone(),
                i.vrid.to_string(),
                state,
                priority,
                addresses.join(" "),
                down.join(" "),
                last,
            ])
            .with_tone(tone),
        );
    }
    section
}
