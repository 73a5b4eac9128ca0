//! Live keepalived interop: the real `keepalived` installed on this machine (2.2.7 on Debian 12)
//! runs five VRRP instances at once in a network namespace (VRRPv2 multicast, VRRPv2 with a
//! simple-text password, VRRPv3/IPv4 at 100 ms with three addresses, VRRPv3/IPv6, VRRPv2
//! unicast). `vrrpdump` captures its adverts from a second namespace on the same bridge, and
//! every advert is decoded and validated here by `vrrp-core`'s `ReceivePolicy` and checked field
//! by field against keepalived's config. Then keepalived gets SIGTERM and its priority-0
//! adverts (RFC 5798 §6.4.3) must validate too. So a keepalived upgrade that changes what goes
//! on the wire fails this test, not a deployment.
//!
//! Needs root, `ip` (iproute2), `keepalived` and `shared/lab/netlab.sh` beside the repository
//! (or `HA_SHARED_DIR`). Without them the test skips loudly; under `CI` it fails instead.
//! Traffic stays between the namespaces the test creates; they are torn down on drop, also on
//! panic.

mod lab;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use vrrp_core::packet::{
    Accepted, AuthType, Authentication, ChecksumKind, ChecksumMode, DecodeError, IpHeader,
    MULTICAST_V4, MULTICAST_V6, Password, Priority, ReceivePolicy, Version,
};

/// h1 (keepalived) and h2 (vrrpdump) on the lab bridge, as `netlab.sh` numbers them.
const H1: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);
const H2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 12);
const PASSWORD: &str = "secret12";

/// `vrrpdump`'s own bound: it exits after this long whatever happens. keepalived starts every
/// instance in BACKUP and takes over after Master_Down_Interval (~3.4 s at `advert_int 1`), so
/// two adverts of every instance plus the shutdown adverts have arrived after about 5 s.
const DUMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the priority-0 adverts after SIGTERM.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);
/// Adverts of each instance to validate before stopping keepalived.
const ADVERTS_PER_INSTANCE: usize = 2;

/// One `vrrp_instance` of the keepalived config, and so what its adverts must carry.
struct Instance {
    vrid: u8,
    version: Version,
    priority: u8,
    /// `advert_int` in centiseconds: VRRPv2 carries whole seconds, VRRPv3 centiseconds.
    interval_centis: u16,
    vips: &'static [&'static str],
    password: Option<&'static str>,
    unicast_peer: Option<Ipv4Addr>,
}

impl Instance {
    fn is_ipv6(&self) -> bool {
        self.vips.iter().any(|v| v.contains(':'))
    }

    fn vips(&self) -> Vec<IpAddr> {
        self.vips
            .iter()
            .map(|v| v.parse().expect("VIP literal in the test table"))
            .collect()
    }

    /// What an instance configured like this one requires of received adverts, with
    /// keepalived's default checksum form (pseudo-header for VRRPv3 over IPv4).
    fn policy(&self) -> ReceivePolicy {
        let mut policy = ReceivePolicy::new(self.version);
        policy.checksum = ChecksumMode::PseudoHeader;
        if let Some(p) = self.password {
            policy.authentication =
                Authentication::SimpleText(Password::new(p).expect("password of the test table"));
        }
        policy
    }

    fn name(&self) -> String {
        let family = if self.is_ipv6() { "IPv6" } else { "IPv4" };
        format!(
            "vrid {} (VRRPv{} {family})",
            self.vrid,
            self.version.number()
        )
    }
}

/// Distinct VRIDs and priorities, so every advert tells which instance sent it.
const INSTANCES: [Instance; 5] = [
    Instance {
        vrid: 51,
        version: Version::V2,
        priority: 151,
        interval_centis: 100,
        vips: &["10.99.0.200"],
        password: None,
        unicast_peer: None,
    },
    Instance {
        vrid: 52,
        version: Version::V2,
        priority: 152,
        interval_centis: 100,
        vips: &["10.99.0.201"],
        password: Some(PASSWORD),
        unicast_peer: None,
    },
    Instance {
        vrid: 53,
        version: Version::V3,
        priority: 153,
        interval_centis: 10,
        vips: &["10.99.0.202", "10.99.0.210", "10.99.0.211"],
        password: None,
        unicast_peer: None,
    },
    Instance {
        vrid: 54,
        version: Version::V3,
        priority: 154,
        interval_centis: 100,
        vips: &["fd99::200"],
        password: None,
        unicast_peer: None,
    },
    Instance {
        vrid: 55,
        version: Version::V2,
        priority: 155,
        interval_centis: 100,
        vips: &["10.99.0.203"],
        password: None,
        unicast_peer: Some(H2),
    },
];

/// keepalived.conf for [`INSTANCES`], in the style of `shared/vectors/keepalived/*/h1.conf`.
/// `version` per instance: keepalived 2.2.7 mixes VRRPv2 and VRRPv3 instances in one process.
fn keepalived_conf() -> String {
    let mut c = String::from("global_defs {\n  router_id keepalived_live_h1\n}\n");
    for i in &INSTANCES {
        let advert_int = f64::from(i.interval_centis) / 100.0;
        c += &format!(
            "vrrp_instance VI_{vrid} {{\n  state MASTER\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int {advert_int}\n  version {version}\n",
            vrid = i.vrid,
            prio = i.priority,
            version = i.version.number(),
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

/// The namespace lab with keepalived and vrrpdump in it. Drop stops both (by the PIDs this test
/// started) and tears the namespaces down, also on panic, after printing the logs if panicking.
struct Lab {
    prefix: String,
    netlab: PathBuf,
    dir: PathBuf,
    keepalived: Option<Child>,
    dump: Option<Child>,
}

impl Lab {
    /// `netlab.sh up 2` with IPv6, under a prefix no existing namespace uses.
    fn up(netlab: PathBuf) -> Lab {
        let prefix = free_prefix();
        let dir = std::env::temp_dir().join(format!("keepalived-live-{prefix}"));
        // No namespace has this prefix, so no running test owns a dir of this name.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", dir.display()));
        let lab = Lab {
            prefix,
            netlab,
            dir,
            keepalived: None,
            dump: None,
        };
        // The guard exists before `up`, so a half-built lab is torn down too.
        let out = lab.netlab("up");
        assert!(
            out.status.success(),
            "netlab.sh up 2 (LAB_PREFIX={}) failed: {}\n{}",
            lab.prefix,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn netlab(&self, action: &str) -> std::process::Output {
        lab::netlab(&self.netlab, &self.prefix, action)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// `ip netns exec <ns> <program>`: `ip` execs the program, so the child's PID is its PID.
    fn exec_in(&self, host: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), program]);
        cmd
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_else(|e| format!("({e})"))
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        let path = self.log_path(name);
        std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
    }

    /// eth0's MAC and IPv6 link-local address in `host`.
    fn eth0_of(&self, host: &str) -> (String, IpAddr) {
        let show = |args: &[&str]| -> String {
            let out = Command::new("ip")
                .args(["-n", &self.ns(host), "-o"])
                .args(args)
                .output()
                .expect("running ip");
            assert!(out.status.success(), "ip {args:?} failed");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let link = show(&["link", "show", "dev", "eth0"]);
        let mac = word_after(&link, "link/ether")
            .unwrap_or_else(|| panic!("no MAC in {link:?}"))
            .to_owned();
        let addrs = show(&["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
        let ll = word_after(&addrs, "inet6")
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no IPv6 link-local address in {addrs:?}"));
        (mac, ll)
    }

    /// Checks the config with `keepalived -t`, starts it in h1 and waits until it runs (its
    /// parent wrote the PID file), failing with its log if it exits or never gets there.
    fn start_keepalived(&mut self) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, keepalived_conf()).expect("writing keepalived.conf");
        let test = self
            .exec_in("h1", "keepalived")
            .arg("--config-test")
            .arg("-f")
            .arg(&conf)
            .output()
            .expect("running keepalived --config-test");
        assert!(
            test.status.success(),
            "keepalived rejects the test's config ({}):\n{}\n{}",
            test.status,
            String::from_utf8_lossy(&test.stderr),
            keepalived_conf()
        );
        let pid_file = self.dir.join("keepalived.pid");
        let log = self.log_file("keepalived.log");
        let child = self
            .exec_in("h1", "keepalived")
            .args([
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--no-syslog",
            ])
            .args(["--vrrp", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(&pid_file)
            .arg("-r")
            .arg(self.dir.join("keepalived_vrrp.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log fd"))
            .stderr(log)
            .spawn()
            .expect("starting keepalived");
        let pid = child.id();
        self.keepalived = Some(child);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(status) = self.keepalived_exit() {
                panic!(
                    "keepalived exited at start ({status}):\n{}",
                    self.log("keepalived.log")
                );
            }
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                assert_eq!(
                    text.trim(),
                    pid.to_string(),
                    "keepalived's PID file names another process than the one started"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "keepalived wrote no PID file within 3 s:\n{}",
                self.log("keepalived.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keepalived_exit(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.keepalived.as_mut()?;
        child.try_wait().expect("polling keepalived")
    }

    /// SIGTERM to the keepalived this test started, as `systemctl stop` sends.
    fn terminate_keepalived(&self) {
        if let Some(child) = &self.keepalived {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("running kill");
            assert!(status.success(), "kill -TERM keepalived failed: {status}");
        }
    }

    /// Starts vrrpdump in h2 (it sees the multicast adverts and the unicast ones to H2); its
    /// lines arrive on the returned channel, which closes when vrrpdump exits.
    fn start_dump(&mut self) -> Receiver<String> {
        let mut child = self
            .exec_in("h2", env!("CARGO_BIN_EXE_vrrpdump"))
            .args(["--timeout", &DUMP_TIMEOUT.as_secs().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.log_file("vrrpdump.stderr"))
            .spawn()
            .expect("starting vrrpdump");
        let stdout = child.stdout.take().expect("vrrpdump's piped stdout");
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut dump) = self.dump.take() {
            let _ = dump.kill();
            let _ = dump.wait();
        }
        if let Some(mut keepalived) = self.keepalived.take() {
            if keepalived.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &keepalived.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(3);
                while keepalived.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            // Still running after SIGTERM: SIGKILL; `netlab.sh down` kills its VRRP child.
            let _ = keepalived.kill();
            let _ = keepalived.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- keepalived log ({}):\n{}\n--- vrrpdump stderr:\n{}",
                self.log_path("keepalived.log").display(),
                self.log("keepalived.log"),
                self.log("vrrpdump.stderr")
            );
        }
        let down = self.netlab("down");
        if !down.status.success() {
            eprintln!(
                "netlab.sh down (LAB_PREFIX={}) failed: {}",
                self.prefix,
                String::from_utf8_lossy(&down.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `kl<pid>` (at most 7 characters, so `veth-kl12345cl` fits in 15), or the next number if a
/// namespace of that prefix exists (a crashed run's leftovers are not ours to remove).
fn free_prefix() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("running ip netns list");
    let list = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let pid = std::process::id();
    (0..100)
        .map(|k| format!("kl{}", (pid + k) % 100_000))
        .find(|p| !names.iter().any(|n| n.starts_with(p.as_str())))
        .expect("a free namespace prefix among 100")
}

fn word_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()
}

/// One vrrpdump line: its `key=value` fields, the IP header fields and the VRRP bytes.
struct Captured {
    line: String,
    fields: BTreeMap<String, String>,
    ip: IpHeader,
    vrrp: Vec<u8>,
}

impl Captured {
    fn parse(line: String) -> Captured {
        assert!(
            !line.contains("error="),
            "vrrpdump could not decode keepalived's advert: {line}"
        );
        // No value of a decoded line holds a space.
        let fields: BTreeMap<String, String> = line
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let get = |k: &str| -> &str {
            fields
                .get(k)
                .unwrap_or_else(|| panic!("no {k}= in vrrpdump line: {line}"))
        };
        let addr = |k: &str| -> IpAddr {
            get(k)
                .parse()
                .unwrap_or_else(|e| panic!("{k}= is not an address ({e}): {line}"))
        };
        let ip = IpHeader {
            source: addr("src"),
            destination: addr("dst"),
            ttl: get("ttl")
                .parse()
                .unwrap_or_else(|e| panic!("ttl= ({e}): {line}")),
        };
        let vrrp = from_hex(get("hex")).unwrap_or_else(|| panic!("hex= is not hex: {line}"));
        Captured {
            line,
            fields,
            ip,
            vrrp,
        }
    }

    fn field(&self, k: &str) -> &str {
        self.fields.get(k).map_or("", String::as_str)
    }

    /// The instance that sent it: VRID (second byte) and address family.
    fn instance(&self) -> &'static Instance {
        let vrid = self.vrrp.get(1).copied().unwrap_or(0);
        INSTANCES
            .iter()
            .find(|i| i.vrid == vrid && i.is_ipv6() == self.ip.source.is_ipv6())
            .unwrap_or_else(|| panic!("an advert no configured instance sends: {}", self.line))
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// What keepalived's adverts are sent from: h1's eth0 (the config has no `use_vmac`).
struct Sender {
    mac: String,
    link_local: IpAddr,
}

/// Every check one advert of `inst` must pass: `ReceivePolicy::accept` (TTL, version, length,
/// checksum, authentication) and then each field against keepalived's config.
fn validate<'a>(inst: &Instance, c: &'a Captured, from: &Sender, shutdown: bool) -> Accepted<'a> {
    let what = format!("{}: {}", inst.name(), c.line);
    let accepted = inst
        .policy()
        .accept(&c.ip, &c.vrrp)
        .unwrap_or_else(|e| panic!("vrrp-core drops keepalived's advert ({e:?}): {what}"));
    let a = &accepted.advertisement;

    assert_eq!(c.ip.ttl, 255, "TTL (RFC 5798 §5.1.1.3) {what}");
    assert_eq!(a.version(), inst.version, "version {what}");
    assert_eq!(a.vrid().get(), inst.vrid, "VRID {what}");
    let priority = if shutdown {
        Priority::SHUTDOWN
    } else {
        Priority::new(inst.priority)
    };
    assert_eq!(a.priority(), priority, "priority {what}");
    assert_eq!(
        a.advert_interval().centis(),
        inst.interval_centis,
        "interval {what}"
    );
    let vips = inst.vips();
    assert_eq!(usize::from(a.address_count()), vips.len(), "count {what}");
    assert_eq!(a.addresses().collect::<Vec<_>>(), vips, "addresses {what}");

    // keepalived's checksum forms: VRRPv2 has only the message-only one; VRRPv3 uses the
    // pseudo-header form over IPv4 (its default, without v3_checksum_as_v2) and IPv6.
    let kind = match inst.version {
        Version::V2 => ChecksumKind::MessageOnly,
        Version::V3 => ChecksumKind::PseudoHeader,
    };
    assert_eq!(accepted.checksum, kind, "checksum form {what}");

    let auth = match (inst.version, inst.password) {
        (Version::V3, _) => None,
        (Version::V2, None) => Some(AuthType::NoAuthentication),
        (Version::V2, Some(_)) => Some(AuthType::SimpleText),
    };
    assert_eq!(a.auth_type(), auth, "auth type {what}");
    if let Some(p) = inst.password {
        let mut wire = [0u8; 8];
        wire[..p.len()].copy_from_slice(p.as_bytes());
        assert_eq!(a.auth_data(), Some(&wire), "password on the wire {what}");
    } else if inst.version == Version::V2 {
        assert_eq!(a.auth_data(), Some(&[0u8; 8]), "auth data {what}");
    }

    match (c.ip.source, inst.unicast_peer) {
        (IpAddr::V6(src), _) => {
            assert!(
                src.is_unicast_link_local(),
                "IPv6 source must be link-local (RFC 5798 §5.1.2.1) {what}"
            );
            assert_eq!(c.ip.source, from.link_local, "h1's link-local {what}");
            assert_eq!(c.ip.destination, IpAddr::from(MULTICAST_V6), "{what}");
        }
        (IpAddr::V4(_), peer) => {
            assert_eq!(c.ip.source, IpAddr::from(H1), "source {what}");
            let dst = peer.unwrap_or(MULTICAST_V4);
            assert_eq!(c.ip.destination, IpAddr::from(dst), "destination {what}");
        }
    }
    // RFC 5798 §7.3 wants the virtual MAC; keepalived without use_vmac sends from eth0's own.
    let family_octet = if inst.is_ipv6() { 2 } else { 1 };
    let vmac = format!("00:00:5e:00:{family_octet:02x}:{:02x}", inst.vrid);
    let mac = c.field("mac");
    assert!(
        mac == from.mac || mac == vmac,
        "source MAC is neither h1's eth0 ({}) nor {vmac}: {what}",
        from.mac
    );

    // vrrpdump printed what vrrp-core decodes.
    let addrs: Vec<String> = vips.iter().map(ToString::to_string).collect();
    let expected = [
        ("version", inst.version.number().to_string()),
        ("vrid", inst.vrid.to_string()),
        ("prio", priority.get().to_string()),
        ("interval_cs", inst.interval_centis.to_string()),
        ("addrs", addrs.join(",")),
        ("checksum", format!("{:#06x}", a.checksum())),
        (
            "checksum_kind",
            match kind {
                ChecksumKind::PseudoHeader => "pseudo-header",
                ChecksumKind::MessageOnly => "message-only",
            }
            .to_owned(),
        ),
        (
            "auth",
            match auth {
                None => "none-v3",
                Some(AuthType::NoAuthentication) => "none",
                Some(AuthType::SimpleText) => "simple-text",
                Some(AuthType::IpAuthenticationHeader) => "ah",
            }
            .to_owned(),
        ),
    ];
    for (key, value) in expected {
        assert_eq!(c.field(key), value, "vrrpdump's {key}= {what}");
    }
    accepted
}

/// The documented interop facts the checksum and authentication settings rest on, on real
/// keepalived packets rather than hand-built ones.
fn check_policy_facts(inst: &Instance, c: &Captured) {
    let what = format!("{}: {}", inst.name(), c.line);
    let mut rfc9568 = inst.policy();
    rfc9568.checksum = ChecksumMode::Rfc9568;
    let result = rfc9568.accept(&c.ip, &c.vrrp);
    if inst.version == Version::V3 && !inst.is_ipv6() {
        // keepalived is in the pseudo-header camp: an RFC 9568 instance drops its VRRPv3/IPv4
        // adverts, and the error names the setting that accepts them.
        match result {
            Err(DecodeError::ChecksumModeMismatch {
                peer_kind: ChecksumKind::PseudoHeader,
                mode: ChecksumMode::Rfc9568,
                hint,
            }) => assert_eq!(hint, "pseudo-header", "{what}"),
            other => panic!("RFC 9568 mode must refuse keepalived's form, got {other:?}: {what}"),
        }
    } else {
        // The two camps agree everywhere else: VRRPv2, and VRRPv3 over IPv6.
        assert!(
            result.is_ok(),
            "RFC 9568 mode drops it ({result:?}): {what}"
        );
    }

    match inst.password {
        Some(_) => {
            let mut wrong = inst.policy();
            wrong.authentication =
                Authentication::SimpleText(Password::new("secret13").expect("test password"));
            assert_eq!(
                wrong.accept(&c.ip, &c.vrrp),
                Err(DecodeError::PasswordMismatch),
                "{what}"
            );
            let open = ReceivePolicy::new(inst.version);
            assert_eq!(
                open.accept(&c.ip, &c.vrrp),
                Err(DecodeError::AuthTypeMismatch {
                    expected: AuthType::NoAuthentication,
                    found: AuthType::SimpleText
                }),
                "{what}"
            );
        }
        None if inst.version == Version::V2 => {
            let mut locked = inst.policy();
            locked.authentication =
                Authentication::SimpleText(Password::new(PASSWORD).expect("test password"));
            assert_eq!(
                locked.accept(&c.ip, &c.vrrp),
                Err(DecodeError::AuthTypeMismatch {
                    expected: AuthType::SimpleText,
                    found: AuthType::NoAuthentication
                }),
                "{what}"
            );
        }
        None => {}
    }
}

fn keepalived_version() -> String {
    Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr) + String::from_utf8_lossy(&o.stdout);
            text.lines().next().unwrap_or("?").to_owned()
        })
        .unwrap_or_else(|e| format!("({e})"))
}

/// Next vrrpdump line before `deadline`; `None` once the deadline passes or vrrpdump exits.
fn next_line(lines: &Receiver<String>, deadline: Instant) -> Option<String> {
    let left = deadline.saturating_duration_since(Instant::now());
    lines.recv_timeout(left).ok()
}

#[test]
fn keepalived_adverts_decode_and_validate_then_priority_0_on_sigterm() {
    let tools = [("ip", "-V"), ("keepalived", "--version")];
    let Some(netlab) = lab::netlab_or_skip("the live keepalived test", &tools) else {
        return;
    };
    let started = Instant::now();
    let mut lab = Lab::up(netlab);
    let (mac, link_local) = lab.eth0_of("h1");
    let from = Sender { mac, link_local };
    let lines = lab.start_dump();
    let dump_deadline = Instant::now() + DUMP_TIMEOUT;
    // vrrpdump's AF_PACKET socket is open long before the first advert: keepalived's
    // instances stay in BACKUP for over 3 s (Master_Down_Interval) after it starts.
    lab.start_keepalived();

    // Phase 1: every instance's adverts, each one fully validated.
    let mut seen: BTreeMap<u8, usize> = BTreeMap::new();
    let mut samples: BTreeMap<u8, Captured> = BTreeMap::new();
    let count = |seen: &BTreeMap<u8, usize>, i: &Instance| seen.get(&i.vrid).copied().unwrap_or(0);
    while INSTANCES
        .iter()
        .any(|i| count(&seen, i) < ADVERTS_PER_INSTANCE)
    {
        let Some(line) = next_line(&lines, dump_deadline) else {
            panic!(
                "vrrpdump stopped after {DUMP_TIMEOUT:?} with adverts per VRID {seen:?}; every \
                 instance must send {ADVERTS_PER_INSTANCE}"
            );
        };
        let captured = Captured::parse(line);
        let inst = captured.instance();
        validate(inst, &captured, &from, false);
        *seen.entry(inst.vrid).or_default() += 1;
        samples.entry(inst.vrid).or_insert(captured);
    }
    for inst in &INSTANCES {
        check_policy_facts(inst, &samples[&inst.vrid]);
    }

    // Phase 2: on SIGTERM a Master sends priority 0 so a Backup takes over at once
    // (RFC 5798 §6.4.3 "Shutdown"); vrrpdump is still listening.
    lab.terminate_keepalived();
    let mut shutdown: BTreeMap<u8, Captured> = BTreeMap::new();
    let shutdown_deadline = (Instant::now() + SHUTDOWN_WAIT).min(dump_deadline);
    while INSTANCES.iter().any(|i| !shutdown.contains_key(&i.vrid)) {
        let Some(line) = next_line(&lines, shutdown_deadline) else {
            break;
        };
        let captured = Captured::parse(line);
        let inst = captured.instance();
        let shutting_down = captured.vrrp.get(2) == Some(&0);
        validate(inst, &captured, &from, shutting_down);
        if shutting_down {
            shutdown.entry(inst.vrid).or_insert(captured);
        }
    }
    let v2_multicast = [51, 52];
    for vrid in v2_multicast {
        assert!(
            shutdown.contains_key(&vrid),
            "no priority-0 advert from VRRPv2 multicast vrid {vrid} within {SHUTDOWN_WAIT:?} of \
             SIGTERM; priority 0 seen from {:?}",
            shutdown.keys().collect::<Vec<_>>()
        );
    }
    // keepalived sends priority 0 from every instance in MASTER, all five here.
    assert_eq!(
        shutdown.keys().copied().collect::<Vec<_>>(),
        INSTANCES.iter().map(|i| i.vrid).collect::<Vec<_>>(),
        "priority-0 adverts after SIGTERM, by VRID"
    );

    eprintln!(
        "{}: validated adverts per VRID {seen:?}, priority 0 from {:?}, in {:.1?}",
        keepalived_version(),
        shutdown.keys().collect::<Vec<_>>(),
        started.elapsed()
    );
    for c in samples.values().chain(shutdown.values()) {
        eprintln!("  {}", c.line);
    }
}
