//! The VIP move, for real: `ip-manager`'s netlink backend (through `vipctl`) adds
//! 10.99.0.200/24 and fd99::200/64 on host h1 of a namespace lab, a client pings them; the VIP
//! moves to h2 with keepalived's announcements, and the client's neighbour table must point at
//! h2's MAC within 50 ms while its pings continue. A tshark capture on the client checks the
//! announcements themselves.
//!
//! Needs root, iproute2, ping and tshark; under `CI` a missing prerequisite fails the test.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VIP4: &str = "10.99.0.200";
const VIP6: &str = "fd99::200";

struct Lab {
    prefix: String,
    netlab: PathBuf,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Lab {
    fn up(netlab: PathBuf) -> Lab {
        let prefix = format!("vm{}", std::process::id() % 100_000);
        let dir = lab::fresh_dir(&format!("vip-move-{prefix}"));
        let lab = Lab {
            prefix,
            netlab,
            children: Vec::new(),
            dir,
        };
        lab::netlab_up(&lab.netlab, &lab.prefix);
        lab
    }

    fn netlab(&self, action: &str) -> Output {
        lab::netlab(&self.netlab, &self.prefix, action)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// Runs `args` in namespace `host` and returns its output.
    fn run(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {args:?} in {host}: {e}"))
    }

    fn vipctl(&self, host: &str, args: &[&str]) {
        let mut all = vec![env!("CARGO_BIN_EXE_vipctl")];
        all.extend_from_slice(args);
        let out = self.run(host, &all);
        assert!(
            out.status.success(),
            "vipctl {args:?} in {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn(&mut self, host: &str, args: &[&str]) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {args:?} in {host}: {e}"));
        self.children.push(child);
        self.children.len() - 1
    }

    fn wait(&mut self, index: usize) -> Output {
        let child = self.children.remove(index);
        child.wait_with_output().expect("waiting for a lab process")
    }

    fn mac(&self, host: &str) -> String {
        let out = self.run(host, &["cat", "/sys/class/net/eth0/address"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The client's neighbour entry's MAC for `ip`, if any.
    fn client_neighbour(&self, ip: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", &self.ns("cl"), "neigh", "show", ip])
            .output()
            .expect("ip neigh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }

    /// Moves `cidr` from h1 to h2 and returns the time from the start of h2's `add` until the
    /// client's neighbour entry for `ip` holds h2's MAC.
    fn move_vip(&self, cidr: &str, ip: &str, new_mac: &str) -> Duration {
        self.vipctl("h1", &["remove", "eth0", cidr]);
        let started = Instant::now();
        let mut add = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("h2"),
                env!("CARGO_BIN_EXE_vipctl"),
                "add",
                "eth0",
                cidr,
                "--announce-once",
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("starting vipctl add");
        let mut moved = None;
        while started.elapsed() < Duration::from_secs(2) {
            if self.client_neighbour(ip).as_deref() == Some(new_mac) {
                moved = Some(started.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let status = add.wait().expect("vipctl add");
        assert!(status.success(), "vipctl add {cidr} in h2 failed");
        moved.unwrap_or_else(|| {
            panic!(
                "client still has {:?} for {ip} after 2 s",
                self.client_neighbour(ip)
            )
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.netlab("down");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tshark's fields for the frames of `filter` in `pcap`.
fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    lab::vrrp::tshark(pcap, filter, fields)
        .iter()
        .map(|f| f.join("\t"))
        .collect()
}

#[test]
fn vip_moves_and_the_client_follows_within_50ms_with_keepalived_announcements() {
    // `-V` is "version" for ip and ping; tshark's is `--version` (its -V captures verbosely).
    let tools = [("ip", "-V"), ("ping", "-V"), ("tshark", "--version")];
    let Some(netlab) = lab::netlab_or_skip("the VIP move test", &tools) else {
        return;
    };
    let mut lab = Lab::up(netlab);
    let (mac1, mac2) = (lab.mac("h1"), lab.mac("h2"));

    // h1 holds both VIPs; the client reaches them and learns h1's MAC.
    lab.vipctl("h1", &["add", "eth0", "10.99.0.200/24", "--announce-once"]);
    lab.vipctl("h1", &["add", "eth0", "fd99::200/64", "--announce-once"]);
    lab.vipctl("h1", &["add", "eth0", "10.99.0.200/24"]); // idempotent
    // The interface by index works the same (eth0 is the lab's only link after lo).
    let index = String::from_utf8_lossy(
        &lab.run("h1", &["cat", "/sys/class/net/eth0/ifindex"])
            .stdout,
    )
    .trim()
    .to_owned();
    lab.vipctl("h1", &["add", &index, "10.99.0.200/24"]);
    for args in [
        ["ping", "-c", "1", "-W", "1", VIP4],
        ["ping", "-c", "1", "-W", "1", VIP6],
    ] {
        let out = lab.run("cl", &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(lab.client_neighbour(VIP4).as_deref(), Some(mac1.as_str()));
    assert_eq!(lab.client_neighbour(VIP6).as_deref(), Some(mac1.as_str()));

    // Capture on the client, and keep pinging through the move (bounded: 400 probes, 5 s).
    let pcap = lab.dir.join("move.pcap");
    let pcap_str = pcap.to_string_lossy().into_owned();
    let capture = lab.spawn(
        "cl",
        &[
            "tshark",
            "-q",
            "-i",
            "eth0",
            "-f",
            "arp or icmp6",
            "-a",
            "duration:5",
            "-w",
            &pcap_str,
        ],
    );
    let pinger = lab.spawn(
        "cl",
        &["ping", "-n", "-i", "0.01", "-c", "400", "-w", "5", VIP4],
    );
    // Linux ignores an ARP update for an entry changed less than `locktime` (1 s) ago.
    std::thread::sleep(Duration::from_millis(1500));

    let t4 = lab.move_vip("10.99.0.200/24", VIP4, &mac2);
    let t6 = lab.move_vip("fd99::200/64", VIP6, &mac2);
    eprintln!("add -> client neighbour entry on the new MAC: IPv4 {t4:?}, IPv6 {t6:?}");
    assert!(t4 < Duration::from_millis(50), "IPv4 took {t4:?}");
    assert!(t6 < Duration::from_millis(50), "IPv6 took {t6:?}");

    let ping = lab.wait(pinger);
    let text = String::from_utf8_lossy(&ping.stdout).into_owned();
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_owned();
    let numbers: Vec<u32> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (sent, received) = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(0),
    );
    assert!(
        sent >= 200 && received * 100 >= sent * 95,
        "pings must continue through the move: {summary}"
    );
    eprintln!("pings during the move: {summary}");

    let _ = lab.wait(capture);
    // keepalived's form: 5 ARP requests from h2, sender = target = VIP, target MAC broadcast.
    let garps = tshark(
        &pcap,
        &format!("arp.isgratuitous == 1 && eth.src == {mac2}"),
        &[
            "arp.opcode",
            "arp.src.proto_ipv4",
            "arp.dst.hw_mac",
            "arp.src.hw_mac",
        ],
    );
    assert_eq!(garps.len(), 5, "{garps:?}");
    assert!(
        garps
            .iter()
            .all(|g| *g == format!("1\t{VIP4}\tff:ff:ff:ff:ff:ff\t{mac2}")),
        "{garps:?}"
    );
    // 5 unsolicited NAs from h2: Override set, target the VIP, checksum good, to ff02::1.
    let nas = tshark(
        &pcap,
        &format!("icmpv6.type == 136 && eth.src == {mac2}"),
        &[
            "ipv6.src",
            "ipv6.dst",
            "ipv6.hlim",
            "icmpv6.nd.na.flag.o",
            "icmpv6.nd.na.flag.s",
            "icmpv6.nd.na.target_address",
            "icmpv6.checksum.status",
            "icmpv6.opt.linkaddr",
        ],
    );
    assert_eq!(nas.len(), 5, "{nas:?}");
    let expect = format!("{VIP6}\tff02::1\t255\tTrue\tFalse\t{VIP6}\t1\t{mac2}");
    let expect_numeric = format!("{VIP6}\tff02::1\t255\t1\t0\t{VIP6}\t1\t{mac2}");
    assert!(
        nas.iter().all(|n| *n == expect || *n == expect_numeric),
        "{nas:?}\nexpected {expect}"
    );
}
