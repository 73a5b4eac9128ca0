//! Bad input on the wire: while a vrrpd Master (h1) and Backup (h2) run VRRPv2 with
//! `auth_pass`, the client namespace floods the VRRP group with 100,000 bad packets in a few
//! seconds: truncated, wrong version, bad checksum, wrong TTL, wrong password claiming
//! priority 254 (the dangerous one: accepted, it would take the VIP), an unknown VRID, and
//! random bytes. Neither daemon may change state, the VIP stays on h1, every kind shows up
//! in the logs at most a few times (rate-limited), and the CPU time the daemons spend per
//! bad packet stays small.
//!
//! Needs root, iproute2 and python3; under `CI` a missing prerequisite fails the test.

mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::vrrp::{Lab, MODES, Mode};

const V2_AUTH: Mode = MODES[3];

/// The sender: raw IP protocol 112 to 224.0.0.18, COUNT packets cycling through the kinds.
const FLOOD: &str = r#"
import os, socket, struct, sys
count = int(sys.argv[1])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def v2(prio, password, vrid=51, version=2):
    body = struct.pack("!BBBBBBH", (version << 4) | 1, vrid, prio, 1, 1, 1, 0)
    body += socket.inet_aton("10.99.0.200") + password.ljust(8, b"\0")[:8]
    c = csum(body)
    return body[:6] + struct.pack("!H", c) + body[8:]
good_sum_wrong_pass = v2(254, b"intruder")
bad_checksum = bytearray(v2(254, b"secret12")); bad_checksum[6] ^= 0xff
kinds = [
    good_sum_wrong_pass,
    bytes(bad_checksum),
    v2(254, b"secret12")[:7],                 # truncated
    v2(254, b"secret12", version=7),          # unknown version
    v2(254, b"secret12", vrid=52),            # nobody's VRID
    os.urandom(40),                           # noise
]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
low_ttl = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
low_ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
for sock in (s, low_ttl):  # the client has no multicast route: name its interface
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.100"))
for i in range(count):
    k = i % (len(kinds) + 1)
    if k == len(kinds):
        low_ttl.sendto(v2(254, b"secret12"), ("224.0.0.18", 0))  # valid but TTL 64
    else:
        s.sendto(kinds[k], ("224.0.0.18", 0))
"#;

/// User + system CPU time of process `pid`, from /proc.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the comm.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

#[test]
fn a_flood_of_bad_packets_changes_nothing_and_costs_little() {
    let Some(netlab) = lab::netlab_or_skip(
        "a_flood_of_bad_packets_changes_nothing_and_costs_little",
        &[("ip", "-V"), ("python3", "--version")],
    ) else {
        return;
    };
    let m = V2_AUTH;
    let mut lab = Lab::up(netlab, "vfl", m);
    let (master, backup) = lab.vrrpd_pair(m, 101, 100);
    std::thread::sleep(Duration::from_millis(1500));
    let pids = [lab.children[master].id(), lab.children[backup].id()];
    let before = pids.map(cpu);
    let transitions = |host: &str| {
        lab.log(&format!("{host}.vrrpd.log"))
            .matches("state changed")
            .count()
    };
    let settled = [transitions("h1"), transitions("h2")];

    const PACKETS: usize = 100_000;
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("cl"), "python3", "-c", FLOOD])
        .arg(PACKETS.to_string())
        .output()
        .expect("python3 runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "flood: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let spent = [0, 1].map(|i| cpu(pids[i]) - before[i]);

    assert!(
        lab.has_vip("h1") && !lab.has_vip("h2"),
        "the VIP stayed on h1"
    );
    assert_eq!(
        [transitions("h1"), transitions("h2")],
        settled,
        "no state change during the flood"
    );
    for host in ["h1", "h2"] {
        let log = lab.log(&format!("{host}.vrrpd.log"));
        for reason in ["authentication", "checksum", "ttl"] {
            let n = log
                .lines()
                .filter(|l| {
                    l.contains("dropped an advert") && l.contains(&format!("reason=\"{reason}\""))
                })
                .count();
            assert!(
                (1..=2).contains(&n),
                "{host}: {n} log lines for {reason} drops (rate-limited: 1 per 10 s)\n{log}"
            );
        }
    }
    // Each daemon reads every packet; a microsecond-scale budget per packet keeps a flood at
    // line rate from starving the adverts.
    let per_packet = spent.map(|s| s.as_secs_f64() * 1e6 / PACKETS as f64);
    eprintln!(
        "{PACKETS} bad packets in {took:?}: vrrpd CPU {spent:?} ({per_packet:.1?} µs per packet)"
    );
    for (host, us) in ["h1", "h2"].iter().zip(per_packet) {
        assert!(us < 20.0, "{host}: {us:.1} µs of CPU per bad packet");
    }
}
