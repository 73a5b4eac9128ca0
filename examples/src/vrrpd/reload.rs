//! SIGHUP: the configuration file is read again and the running instances follow it.
//!
//! Instances are matched by name:
//! - the same definition: untouched (the router runs on in its state, its counters continue);
//! - only `notify` or `garp` changed: updated in place, the router untouched;
//! - anything else changed: the router is removed gracefully (a Master sends priority 0 and
//!   removes its addresses) and a new one starts (in Backup, as at start);
//! - new: started; gone: removed gracefully.
//!
//! Each driver (interface and address family) gets and loses routers without disturbing the
//! others on it (`vrrp_core::driver::Command::{Add, Remove}`); a driver left without
//! instances stops, a new interface gets a new driver. A `[[check]]` whose definition changed
//! gets a new monitor (and its routers its state); unchanged ones keep theirs.
//!
//! A file that does not parse, or an instance that cannot be set up (an interface without an
//! address, say), refuses the whole reload: every error is logged (`file:line:column` for the
//! file's) and the running configuration stays as it was. `status_socket` and `metrics` are
//! read at start only.

use std::path::Path;

use tracing::{error, info, warn};

use super::config::{self, Instance};
use super::instances::Instances;
use super::registry::Registry;

/// How the instances of two configurations relate, by name (each list in the new file's
/// order, `stop` in the old one's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The same definition.
    pub keep: Vec<String>,
    /// Only what the daemon does around the router changed (`notify`, `garp`).
    pub update: Vec<String>,
    /// The router's definition changed: removed, then started anew.
    pub rebuild: Vec<String>,
    /// New.
    pub start: Vec<String>,
    /// Gone.
    pub stop: Vec<String>,
}

impl Plan {
    /// The plan from `old` to `new`.
    pub fn new(old: &[Instance], new: &[Instance]) -> Plan {
        let mut plan = Plan::default();
        for n in new {
            let name = n.name.clone();
            match old.iter().find(|o| o.name == n.name) {
                None => plan.start.push(name),
                Some(o) if o == n => plan.keep.push(name),
                Some(o) if router_part(o) == router_part(n) => plan.update.push(name),
                Some(_) => plan.rebuild.push(name),
            }
        }
        for o in old {
            if !new.iter().any(|n| n.name == o.name) {
                plan.stop.push(o.name.clone());
            }
        }
        plan
    }
}

/// An instance without what can change under a running router. Whatever is not cleared here
/// (including keys added later) rebuilds the router when it changes: the safe default.
fn router_part(i: &Instance) -> Instance {
    let mut i = i.clone();
    i.notify_master = None;
    i.notify_backup = None;
    i.notify_fault = None;
    i.garp_repeat = 0;
    i.garp_delay = std::time::Duration::ZERO;
    i
}

/// Reads `path` again and applies it; on any error the running configuration stays.
pub(super) async fn reload(
    path: &Path,
    running: &config::Config,
    instances: &mut Instances,
    registry: &Registry,
) -> Option<config::Config> {
    let file = path.display().to_string();
    info!(file = %file, "SIGHUP: reloading the configuration");
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let e = format!("cannot read {file}: {e}");
            error!("reload refused, the running configuration stays: {e}");
            registry.record_reload(vec![e]);
            return None;
        }
    };
    let new = match config::parse(&file, &text) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                error!("{e}");
            }
            error!(
                "reload refused, the running configuration stays: {} error(s) in {file}",
                errors.len()
            );
            registry.record_reload(errors.iter().map(ToString::to_string).collect());
            return None;
        }
    };
    for w in &new.warnings {
        warn!("{w}");
    }
    apply(new, running, instances, registry).await
}

/// Applies `new`, a checked configuration (read by [`reload`], or by a daemon that embeds
/// vrrpd's part of its file); on any error the running configuration stays.
pub(super) async fn apply(
    new: config::Config,
    running: &config::Config,
    instances: &mut Instances,
    registry: &Registry,
) -> Option<config::Config> {
    if new.status_socket != running.status_socket
        || new.metrics != running.metrics
        || new.crash_guard != running.crash_guard
        || new.crash_hold_down != running.crash_hold_down
    {
        warn!(
            "status_socket, metrics, crash_guard and crash_hold_down are read at start: restart vrrpd to apply their change"
        );
    }
    match instances.apply(&new).await {
        Ok(plan) => {
            info!(
                kept = ?plan.keep,
                updated = ?plan.update,
                rebuilt = ?plan.rebuild,
                started = ?plan.start,
                stopped = ?plan.stop,
                "configuration reloaded"
            );
            registry.record_reload(Vec::new());
            Some(new)
        }
        Err(errors) => {
            for e in &errors {
                error!("{e}");
            }
            error!(
                "reload refused, the running configuration stays: {} instance(s) could not be set up",
                errors.len()
            );
            registry.record_reload(errors);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(text: &str) -> Vec<Instance> {
        config::parse("t.toml", text).expect("valid").instances
    }

    fn one(name: &str, vrid: u8, extra: &str) -> String {
        format!(
            "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\nvirtual_addresses = [\"10.0.0.{vrid}/24\"]\n{extra}"
        )
    }

    #[test]
    fn instances_are_matched_by_name_and_sorted_by_what_changed() {
        let old = instances(&format!(
            "{}{}{}{}",
            one("same", 1, ""),
            one("notify", 2, ""),
            one("prio", 3, "priority = 100\n"),
            one("gone", 4, "")
        ));
        let new = instances(&format!(
            "{}{}{}{}",
            one("new", 5, ""),
            one("prio", 3, "priority = 150\n"),
            one(
                "notify",
                2,
                "notify = { master = \"/bin/true\" }\ngarp = { repeat = 1 }\n"
            ),
            one("same", 1, "")
        ));
        assert_eq!(
            Plan::new(&old, &new),
            Plan {
                keep: vec!["same".into()],
                update: vec!["notify".into()],
                rebuild: vec!["prio".into()],
                start: vec!["new".into()],
                stop: vec!["gone".into()],
            }
        );
    }

    #[test]
    fn a_start_is_a_plan_from_nothing() {
        let new = instances(&one("a", 1, ""));
        let plan = Plan::new(&[], &new);
        assert_eq!(plan.start, ["a"]);
        assert!(plan.keep.is_empty() && plan.stop.is_empty());
    }
}
