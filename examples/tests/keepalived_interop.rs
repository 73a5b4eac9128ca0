//! Live interop: a real keepalived (whatever version the machine has; 2.2.7 on Debian 12) runs
//! five VRRP instances in a network namespace, `vrrpdump` captures its adverts from a second
//! namespace on the same bridge, and every advert is validated by `vrrp-core` field by field
//! against keepalived's config. Then keepalived is stopped and its priority-0 adverts are
//! checked. So a keepalived upgrade that changes the wire format fails here, not in production.
//!
//! Needs root, `ip` and `keepalived`; under `CI` a missing prerequisite fails the test.
//! Traffic stays on the test's own bridge between namespaces it creates.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vrrp_core::packet::{
    Accepted, Authentication, ChecksumKind, ChecksumMode, DecodeError, IpHeader, MULTICAST_V4,
    MULTICAST_V6, Password, ReceivePolicy, Version,
};

/// One keepalived instance of the test config and what its adverts must carry.
struct Instance {
    vrid: u8,
    version: Version,
    priority: u8,
    interval_centis: u16,
    vips: &'static [&'static str],
    password: Option<&'static str>,
    unicast_peer: Option<&'static str>,
}

const H1: &str = "10.99.0.11";
const H2: &str = "10.99.0.12";

const INSTANCES: &[Instance] = &[
    // VRRPv2 multicast, no authentication.
    Instance {
        vrid: 51,
        version: Version::V2,
        priority: 151,
        interval_centis: 100,
        vips: &["10.99.0.200"],
        password: None,
        unicast_peer: None,
    },
    // VRRPv2 with the simple text password.
    Instance {
        vrid: 52,
        version: Version::V2,
        priority: 152,
        interval_centis: 100,
        vips: &["10.99.0.201"],
        password: Some("secret12"),
        unicast_peer: None,
    },
    // VRRPv3 over IPv4, 100 ms, three addresses.
    Instance {
        vrid: 53,
        version: Version::V3,
        priority: 153,
        interval_centis: 10,
        vips: &["10.99.0.202", "10.99.0.203", "10.99.0.204"],
        password: None,
        unicast_peer: None,
    },
    // VRRPv3 over IPv6, from the link-local address.
    Instance {
        vrid: 54,
        version: Version::V3,
        priority: 154,
        interval_centis: 100,
        vips: &["fd99::200"],
        password: None,
        unicast_peer: None,
    },
    // VRRPv2 unicast to h2.
    Instance {
        vrid: 55,
        version: Version::V2,
        priority: 155,
        interval_centis: 100,
        vips: &["10.99.0.205"],
        password: None,
        unicast_peer: Some(H2),
    },
];

fn keepalived_conf() -> String {
    let mut c = String::from("global_defs {\n  router_id interop_h1\n}\n");
    for i in INSTANCES {
        let secs = f64::from(i.interval_centis) / 100.0;
        c += &format!(
            "vrrp_instance VI_{vrid} {{\n  state MASTER\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int {secs}\n  version {ver}\n",
            vrid = i.vrid,
            prio = i.priority,
            ver = i.version.number(),
        );
        if let Some(p) = i.password {
            c += &format!("  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}\n");
        }
        if let Some(peer) = i.unicast_peer {
            c += &format!("  unicast_src_ip {H1}\n  unicast_peer {{\n    {peer}\n  }}\n");
        }
        c += "  virtual_ipaddress {\n";
        for vip in i.vips {
            let len = if vip.contains(':') { 64 } else { 24 };
            c += &format!("    {vip}/{len} dev eth0\n");
        }
        c += "  }\n}\n";
    }
    c
}

/// The namespace lab, keepalived and vrrpdump; all torn down on drop, also on panic.
struct Lab {
    prefix: String,
    netlab: PathBuf,
    dir: PathBuf,
    keepalived: Option<Child>,
    dump: Option<Child>,
}

impl Lab {
    fn up(netlab: PathBuf) -> Lab {
        let prefix = format!("ki{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("keepalived-interop-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test's temp dir");
        let lab = Lab {
            prefix,
            netlab,
            dir,
            keepalived: None,
            dump: None,
        };
        lab.netlab("down"); // a crashed earlier run with the same pid
        lab.netlab("up");
        lab
    }

    fn netlab(&self, action: &str) {
        let status = Command::new("bash")
            .arg(&self.netlab)
            .args([action, "2"])
            .env("LAB_PREFIX", &self.prefix)
            .env("LAB_IPV6", "1")
            .status()
            .expect("running netlab.sh");
        assert!(
            status.success() || action == "down",
            "netlab.sh {action} failed: {status}"
        );
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn start_keepalived(&mut self) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, keepalived_conf()).expect("writing keepalived.conf");
        let log = std::fs::File::create(self.dir.join("keepalived.log")).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("h1"), "keepalived"])
            .args([
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--vrrp",
                "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(self.dir.join("keepalived.pid"))
            .arg("-r")
            .arg(self.dir.join("vrrp.pid"))
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting keepalived");
        self.keepalived = Some(child);
    }

    /// Starts vrrpdump in h2; its lines arrive on the returned channel.
    fn start_dump(&mut self, timeout: Duration) -> mpsc::Receiver<String> {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("h2"),
                env!("CARGO_BIN_EXE_vrrpdump"),
            ])
            .args(["--timeout", &timeout.as_secs_f64().to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vrrpdump");
        let stdout = child.stdout.take().expect("piped stdout");
        self.dump = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// SIGTERM to keepalived (by the PID this test started), as `systemctl stop` does.
    fn stop_keepalived(&mut self) {
        if let Some(child) = &self.keepalived {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    fn keepalived_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in [self.keepalived.as_mut(), self.dump.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.netlab("down");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A vrrpdump line: `key=value` pairs (no value of a VRRP line holds a space).
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// The IP header fields and VRRP bytes of one captured advert.
fn captured(line: &str) -> (IpHeader, Vec<u8>) {
    let f = fields(line);
    let addr = |k: &str| -> IpAddr {
        f.get(k)
            .unwrap_or_else(|| panic!("no {k} in {line}"))
            .parse()
            .expect("an address")
    };
    let ttl = f
        .get("ttl")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("ttl in {line}"));
    let hex = f.get("hex").unwrap_or_else(|| panic!("no hex in {line}"));
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    (
        IpHeader {
            source: addr("src"),
            destination: addr("dst"),
            ttl,
        },
        bytes,
    )
}

fn policy(i: &Instance) -> ReceivePolicy {
    let mut p = ReceivePolicy::new(i.version);
    if let Some(pw) = i.password {
        p.authentication = Authentication::SimpleText(Password::new(pw).expect("valid password"));
    }
    p
}

/// Everything one advert of instance `i` must satisfy, as keepalived's config implies.
fn check_advert(i: &Instance, ip: &IpHeader, accepted: &Accepted<'_>, shutdown: bool) {
    let a = &accepted.advertisement;
    let what = format!("vrid {} from {}", i.vrid, ip.source);
    assert_eq!(ip.ttl, 255, "{what}");
    assert_eq!(a.version(), i.version, "{what}");
    let prio = if shutdown { 0 } else { i.priority };
    assert_eq!(a.priority().get(), prio, "{what}");
    assert_eq!(a.advert_interval().centis(), i.interval_centis, "{what}");
    let vips: Vec<IpAddr> = i
        .vips
        .iter()
        .map(|v| v.parse().expect("VIP literal"))
        .collect();
    assert_eq!(a.addresses().collect::<Vec<_>>(), vips, "{what}");
    let ipv6 = vips[0].is_ipv6();
    let expected_kind = match i.version {
        Version::V2 => ChecksumKind::MessageOnly,
        Version::V3 => ChecksumKind::PseudoHeader, // keepalived's default, IPv4 and IPv6
    };
    assert_eq!(accepted.checksum, expected_kind, "{what}");
    match (ipv6, i.unicast_peer) {
        (true, _) => {
            let IpAddr::V6(src) = ip.source else {
                panic!("{what}: IPv4 source")
            };
            assert!(
                src.is_unicast_link_local(),
                "{what}: RFC 5798 §5.1.2.1 link-local source"
            );
            assert_eq!(ip.destination, IpAddr::from(MULTICAST_V6), "{what}");
        }
        (false, Some(peer)) => {
            assert_eq!(ip.source, H1.parse::<IpAddr>().expect("literal"), "{what}");
            assert_eq!(
                ip.destination,
                peer.parse::<IpAddr>().expect("literal"),
                "{what}"
            );
        }
        (false, None) => {
            assert_eq!(ip.source, H1.parse::<IpAddr>().expect("literal"), "{what}");
            assert_eq!(ip.destination, IpAddr::from(MULTICAST_V4), "{what}");
        }
    }
    match (i.version, i.password) {
        (Version::V2, Some(pw)) => {
            let mut wire = [0u8; 8];
            wire[..pw.len()].copy_from_slice(pw.as_bytes());
            assert_eq!(a.auth_data(), Some(&wire), "{what}");
        }
        (Version::V2, None) => assert_eq!(a.auth_data(), Some(&[0u8; 8]), "{what}"),
        (Version::V3, _) => assert_eq!(a.auth_data(), None, "{what}"),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok()
}

/// Skips with a loud message, or fails under CI where the test must run.
fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI must run the keepalived interop test, but {why}");
    }
    eprintln!("\n*** SKIPPED keepalived interop: {why} (CI=1 turns this into a failure) ***\n");
}

fn netlab_path() -> Option<PathBuf> {
    let shared = match std::env::var_os("HA_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()?
            .parent()?
            .join("shared"),
    };
    let p = shared.join("lab").join("netlab.sh");
    p.is_file().then_some(p)
}

#[test]
fn keepalived_adverts_decode_and_validate_then_shut_down_with_priority_zero() {
    if !is_root() {
        return skip("it needs root for network namespaces");
    }
    if !have("keepalived", "--version") || !have("ip", "-V") {
        return skip("keepalived or iproute2 is not installed");
    }
    let Some(netlab) = netlab_path() else {
        return skip("shared/lab/netlab.sh is not beside the repository (set HA_SHARED_DIR)");
    };
    let mut lab = Lab::up(netlab);
    let lines = lab.start_dump(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300)); // vrrpdump's socket is open
    lab.start_keepalived();

    // Phase 1: at least 3 adverts from every instance, each fully valid.
    let mut seen: BTreeMap<u8, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut v3_ipv4_sample = None;
    while INSTANCES
        .iter()
        .any(|i| seen.get(&i.vrid).copied().unwrap_or(0) < 3)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!(
                "adverts seen per VRID after 12 s: {seen:?}\nkeepalived log:\n{}",
                lab.keepalived_log()
            );
        };
        assert!(
            !line.contains("error="),
            "vrrpdump could not decode keepalived's advert: {line}"
        );
        let (ip, bytes) = captured(&line);
        let vrid = bytes.get(1).copied().unwrap_or(0);
        let Some(inst) = INSTANCES.iter().find(|i| i.vrid == vrid) else {
            continue;
        };
        let accepted = policy(inst)
            .accept(&ip, &bytes)
            .unwrap_or_else(|e| panic!("vrid {vrid}: {e}\n{line}"));
        check_advert(inst, &ip, &accepted, false);
        if vrid == 53 {
            v3_ipv4_sample = Some((ip, bytes));
        }
        *seen.entry(vrid).or_default() += 1;
    }

    // keepalived is in the pseudo-header camp: an RFC 9568 receiver drops its v3/IPv4 adverts,
    // and says how to fix it.
    let (ip, bytes) = v3_ipv4_sample.expect("vrid 53 was seen");
    let mut rfc = ReceivePolicy::new(Version::V3);
    rfc.checksum = ChecksumMode::Rfc9568;
    let err = rfc
        .accept(&ip, &bytes)
        .expect_err("RFC 9568 mode must refuse keepalived's form");
    assert!(
        matches!(
            err,
            DecodeError::ChecksumModeMismatch {
                peer_kind: ChecksumKind::PseudoHeader,
                ..
            }
        ),
        "{err}"
    );

    // Phase 2: SIGTERM; every Master announces priority 0 (RFC 5798 §6.4.3).
    lab.stop_keepalived();
    let mut shutdown: BTreeMap<u8, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while INSTANCES.iter().any(|i| !shutdown.contains_key(&i.vrid)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!(
                "priority-0 adverts per VRID after SIGTERM: {shutdown:?}\n{}",
                lab.keepalived_log()
            );
        };
        let (ip, bytes) = captured(&line);
        let vrid = bytes.get(1).copied().unwrap_or(0);
        let Some(inst) = INSTANCES.iter().find(|i| i.vrid == vrid) else {
            continue;
        };
        let accepted = policy(inst)
            .accept(&ip, &bytes)
            .unwrap_or_else(|e| panic!("{e}\n{line}"));
        if accepted.advertisement.priority().is_shutdown() {
            check_advert(inst, &ip, &accepted, true);
            *shutdown.entry(vrid).or_default() += 1;
        }
    }
    eprintln!(
        "keepalived adverts validated per VRID: {seen:?}; priority-0 on shutdown: {shutdown:?}"
    );
}
