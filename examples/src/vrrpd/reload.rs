//! How one configuration becomes another: instances matched by name, each kept, updated in
//! place, rebuilt, started or stopped ([`Plan`]). A start is a plan from nothing.

use super::config::Instance;

/// How the instances of two configurations relate, by name (each list in the new file's
/// order, `stop` in the old one's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// The same definition.
    pub(super) keep: Vec<String>,
    /// Only what the daemon does around the router changed (`notify`, `garp`).
    pub(super) update: Vec<String>,
    /// The router's definition changed: removed, then started anew.
    pub(super) rebuild: Vec<String>,
    /// New.
    pub(super) start: Vec<String>,
    /// Gone.
    pub(super) stop: Vec<String>,
}

impl Plan {
    /// The plan from `old` to `new`.
    pub(super) fn new(old: &[Instance], new: &[Instance]) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrpd::config;

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
