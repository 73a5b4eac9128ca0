//! The two capabilities vrrpd needs, checked before anything starts: CAP_NET_RAW (the VRRP
//! raw sockets, gratuitous ARP) and CAP_NET_ADMIN (adding and removing the virtual
//! addresses). Without the check a daemon lacking CAP_NET_ADMIN would start, win an election
//! and only then fail to add its addresses.

/// CAP_NET_ADMIN's bit (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
/// CAP_NET_RAW's bit.
const CAP_NET_RAW: u32 = 13;

/// The capabilities vrrpd needs and what for.
const NEEDED: [(u32, &str, &str); 2] = [
    (
        CAP_NET_RAW,
        "CAP_NET_RAW",
        "the VRRP raw sockets and gratuitous ARP",
    ),
    (
        CAP_NET_ADMIN,
        "CAP_NET_ADMIN",
        "adding and removing the virtual addresses",
    ),
];

/// Whether this process runs as root: its effective UID (the second number of
/// `/proc/self/status`'s `Uid:` line) is 0. What network namespaces need (the lab tests,
/// ha-demo).
pub fn effective_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The needed capabilities missing from `status` (the text of `/proc/self/status`), as
/// `(name, what for)`; all of them when the `CapEff` line is missing or unreadable.
pub fn missing_in(status: &str) -> Vec<(&'static str, &'static str)> {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    NEEDED
        .iter()
        .filter(|(bit, _, _)| effective & (1 << bit) == 0)
        .map(|&(_, name, why)| (name, why))
        .collect()
}

/// Checks this process's effective capabilities: `Err` with the message to print (naming
/// each missing capability, what it is for, and the fix) when one is missing.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let missing = missing_in(&status);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    Err(format!(
        "vrrpd needs {} and does not have it: run it as root, or as a service user with \
         AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN in its systemd unit (see the README)",
        list.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let root = "Name:\tvrrpd\nCapEff:\t000001ffffffffff\n";
        assert!(missing_in(root).is_empty());
        let raw_only = "CapEff:\t0000000000002000\n";
        assert_eq!(
            missing_in(raw_only).iter().map(|m| m.0).collect::<Vec<_>>(),
            ["CAP_NET_ADMIN"]
        );
        let none = "CapEff:\t0000000000000000\n";
        assert_eq!(missing_in(none).len(), 2);
        assert_eq!(missing_in("no such line").len(), 2);
    }
}
