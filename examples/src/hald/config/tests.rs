use super::*;
use crate::diagnostics::{assert_mentions, refused};

const VRRP: &str = r#"
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 101
virtual_addresses = ["10.99.0.200/24"]

[[instance]]
name = "VI_2"
interface = "eth0"
vrid = 52
virtual_addresses = ["10.99.0.201/24"]
"#;

const LISTEN: &str = r#"
[[listen]]
name = "web"
bind = "10.99.0.200:80"
mode = "http"
check = { tcp = true, interval = "1s" }
servers = [
  { name = "web1", addr = "10.99.1.1:8080" },
  { name = "web2", addr = "10.99.1.2:8080" },
]

[[listen]]
name = "any"
bind = "0.0.0.0:8443"
servers = [{ name = "s", addr = "10.99.1.3:443" }]
"#;

fn file(hald: &str) -> String {
    format!("{hald}\n{VRRP}\n{LISTEN}")
}

/// [`file`] with `keys` added to VI_1 (after its priority), parsed: it must be valid.
fn parsed_with_vi1_keys(hald: &str, keys: &str) -> Config {
    let text = file(hald).replace("priority = 101\n", &format!("priority = 101\n{keys}"));
    parse("hald.toml", &text).expect("valid")
}

#[test]
fn both_halves_and_hald_s_own_table_are_read() {
    let text = file(
        r#"[hald]
drain = "5s"
watchdog = { interval = "200ms", timeout = "400ms", weight = -50 }

[[hald.track]]
instance = "VI_1"
listener = "web"
weight = -10
all_down = 0
"#,
    );
    let c = parse("hald.toml", &text).expect("valid");
    assert_eq!(c.vrrp.instances.len(), 2);
    assert_eq!(c.balancer.listeners.len(), 2);
    assert_eq!(c.drain, Duration::from_secs(5));
    assert_eq!(
        c.watchdog,
        Some(Watchdog {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(400),
            weight: -50
        })
    );
    // The trackers went to VI_1: all down (FAULT), one per server, and the watchdog.
    let vi1 = &c.vrrp.instances[0].track;
    assert_eq!(
        vi1,
        &vec![
            ("hald:watchdog".to_owned(), -50),
            ("listener:web".to_owned(), 0),
            ("server:web/web1".to_owned(), -10),
            ("server:web/web2".to_owned(), -10),
        ]
    );
    assert_eq!(
        c.vrrp.instances[1].track,
        vec![("hald:watchdog".to_owned(), -50)]
    );
    // The listener on VI_1's address is VI_1's; the one on 0.0.0.0 nobody's.
    assert_eq!(c.listeners_of("VI_1"), ["web"]);
    assert!(c.listeners_of("VI_2").is_empty());
}

#[test]
fn defaults_a_ten_second_drain_and_the_watchdog_on_with_fault() {
    let c = parse("hald.toml", &file("")).expect("valid");
    assert_eq!(c.drain, DEFAULT_DRAIN);
    assert_eq!(c.watchdog, Some(Watchdog::default()));
    assert_eq!(c.watchdog.map(|w| w.weight), Some(0));
    let off = parse(
        "hald.toml",
        &file("[hald]\nwatchdog = { enabled = false }\n"),
    )
    .expect("valid");
    assert_eq!(off.watchdog, None);
    assert!(off.vrrp.instances[0].track.is_empty());
}

#[test]
fn mistakes_of_every_part_come_together_with_their_lines() {
    let text = r#"frontend = "x"
[hald]
drain = "soon"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 300
virtual_addresses = ["10.99.0.200/24"]

[[listen]]
name = "web"
bind = "10.99.0.200:80"
balance = "fastest"
servers = [{ name = "web1", addr = "10.99.1.1:8080" }]
"#;
    let errors = refused(parse, "hald.toml", text);
    assert_mentions(&errors, "hald.toml:1:1: frontend: unknown key");
    assert_mentions(&errors, "hald.toml:3:9: hald.drain");
    assert_mentions(&errors, "hald.toml:8:8: instance[0].vrid");
    assert_mentions(&errors, "hald.toml:14:11: listen[0].balance");
    // In the order of the file.
    let lines: Vec<usize> = errors
        .iter()
        .filter_map(|e| e.split(':').nth(1)?.parse().ok())
        .collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

#[test]
fn a_track_names_what_exists_and_a_listener_with_checks() {
    let text = file(
        r#"[[hald.track]]
instance = "VI_9"
listener = "web"

[[hald.track]]
instance = "VI_1"
listener = "any"

[[hald.track]]
instance = "VI_1"
listener = "nope"
weight = 5
"#,
    );
    let errors = refused(parse, "hald.toml", &text);
    assert_mentions(
        &errors,
        "hald.toml:2:12: hald.track[0].instance: no [[instance]] is named \"VI_9\"",
    );
    assert_mentions(
        &errors,
        "hald.track[1].listener: listener \"any\" has no `check`",
    );
    assert_mentions(
        &errors,
        "hald.track[2].listener: no [[listen]] is named \"nope\"",
    );
    assert_mentions(
        &errors,
        "hald.track[2].weight: 5: expected 0 (FAULT) or a priority to lose",
    );
}

#[test]
fn keys_in_multi_line_values_and_strings_do_not_start_a_part() {
    let text = r#"[hald]
drain = "3s"

[[listen]]
name = "web"
bind = "10.99.0.200:80"
servers = [
  { name = "web1", addr = "10.99.1.1:8080" },
]

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = [
  "10.99.0.200/24",
]
notify = { master = "echo '[listen] = x'" }
"#;
    let c = parse("hald.toml", text).expect("valid");
    assert_eq!(c.drain, Duration::from_secs(3));
    assert_eq!(c.balancer.listeners[0].servers.len(), 1);
    assert_eq!(c.vrrp.instances[0].virtual_addresses.len(), 1);
}

#[test]
fn an_instance_takes_every_vrrpd_key_virtual_mac_and_vip_backend_included() {
    let c = parsed_with_vi1_keys(
        "",
        "virtual_mac = true\nvip_backend = { kind = \"exec\", add = \"/bin/true\", remove = \"/bin/true\" }\n",
    );
    let vi1 = &c.vrrp.instances[0];
    assert!(vi1.virtual_mac);
    assert_eq!(vi1.runs_on(), "vrrp.51");
    assert!(matches!(
        vi1.vip_backend,
        crate::vrrpd::vip_backend::VipBackend::Exec(_)
    ));
    // The listener still follows the instance's address.
    assert_eq!(c.listeners_of("VI_1"), ["web"]);
}

#[test]
fn handover_gives_preempting_instances_time_to_drain_unless_they_set_their_own() {
    let c = parsed_with_vi1_keys(
        "[hald]\ndrain = \"4s\"\nhandover = { peers = [\"10.99.0.12\"] }\n",
        "preempt_delay = \"30s\"\n",
    );
    assert_eq!(
        c.handover,
        Some(Handover {
            port: ip_manager::failover::handover::DEFAULT_PORT,
            peers: vec!["10.99.0.12".parse().expect("addr")],
        })
    );
    let delays: Vec<Duration> = c.vrrp.instances.iter().map(|i| i.preempt_delay).collect();
    assert_eq!(delays, [Duration::from_secs(30), Duration::from_secs(6)]);

    let off = parse(
        "hald.toml",
        &file("[hald]\nhandover = { enabled = false }\n"),
    )
    .expect("valid");
    assert_eq!(off.handover, None);
    assert!(off.vrrp.instances.iter().all(|i| i.preempt_delay.is_zero()));
}

#[test]
fn a_bad_handover_port_or_peer_is_named_with_its_line() {
    let text = file("[hald]\nhandover = { port = 0, peers = [\"peer-b\"] }\n");
    let errors = refused(parse, "hald.toml", &text);
    assert_mentions(
        &errors,
        "hald.toml:2:12: hald.handover.port: 0 is not a port: use 1..=65535",
    );
    assert_mentions(
        &errors,
        "hald.handover.peers[0]: \"peer-b\" is not an IP address",
    );
}
