//! vrrpd against vrrpd in a namespace lab: the failovers that need both sides to be vrrpd to
//! be fast, and the link state from netlink.
//! - A tracked process (by pid file) killed on the Master, adverts every second: the Backup
//!   holds the VIP within 100 ms (pidfd on one side, `preempt_on_lower_advert` on the other;
//!   keepalived polling `kill -0` every 2 s takes seconds).
//! - A tracked interface (`track_interfaces`, weight -20) going down and up: the VIP moves
//!   there and back within 100 ms each way.
//! - The Master's own link going down: Fault at once (its VIP removed), the Backup takes over
//!   after Master_Down_Interval; link up: the old Master recovers and preempts back.
//! - A sync group: one member's tracked process dies (weight 0: Fault), the other member
//!   follows it into Fault, and both addresses move together.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use lab::vrrp::{Lab, Mode, V2_1S, V3_IPV4_100MS};

const V3_100MS: Mode = V3_IPV4_100MS;

fn prerequisites(test: &str) -> Option<PathBuf> {
    lab::netlab_or_skip(test, &[("ip", "-V")])
}

/// A stand-in for an application of a host (`NAME`, e.g. haproxy), known by its pid file
/// `HOST.NAME.pid` as keepalived's `kill -0 $PID` knows it; killed when dropped.
struct App {
    process: Child,
    pid_file: PathBuf,
}

impl App {
    fn start(lab: &Lab, host: &str, name: &str) -> App {
        let process = Command::new("sleep").arg("600").spawn().expect("sleep");
        let pid_file = lab.dir.join(format!("{host}.{name}.pid"));
        std::fs::write(&pid_file, format!("{}\n", process.id())).expect("pid file");
        App { process, pid_file }
    }

    /// Kills the process (and reaps it).
    fn kill(&mut self) {
        self.process.kill().expect("kill");
        let _ = self.process.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn a_tracked_process_killed_on_the_master_hands_over_within_100ms_at_1s_adverts() {
    let Some(netlab) = prerequisites(
        "a_tracked_process_killed_on_the_master_hands_over_within_100ms_at_1s_adverts",
    ) else {
        return;
    };
    let m = V2_1S;
    let mut lab = Lab::up(netlab, "vtp", m);
    let mut apps = Vec::new();
    for host in ["h1", "h2"] {
        // The "haproxy" of each host.
        let app = App::start(&lab, host, "haproxy");
        let priority = if host == "h1" { 101 } else { 100 };
        lab.vrrpd_with(
            host,
            priority,
            m,
            &format!(
                "track = [{{ check = \"chk_haproxy\", weight = -4 }}]\n\n[[check]]\nname = \"chk_haproxy\"\nkind = \"process\"\npid_file = \"{}\"\ninterval = \"2s\"\nrise = 1\nfall = 2\n",
                app.pid_file.display()
            ),
        );
        apps.push(app);
    }
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(lab.has_vip("h1") && !lab.has_vip("h2"));

    let killed = Instant::now();
    apps[0].kill();
    lab.wait_vip("h2", "h1", Duration::from_secs(5));
    let took = killed.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    let h2 = lab.log("h2.vrrpd.log");
    assert!(
        h1.contains("tracked check changed") && h1.contains("up=false"),
        "{h1}"
    );
    assert!(
        h2.contains("LowerPriorityMaster"),
        "h2 preempted on the lower advert: {h2}"
    );
    assert!(
        took < Duration::from_millis(100),
        "VIP on h2 {took:?} after the kill\nh1:\n{h1}\nh2:\n{h2}"
    );
    eprintln!("tracked process killed, adverts at 1 s: VIP on the Backup after {took:?}");
}

#[test]
fn a_tracked_interface_moves_the_vip_there_and_back() {
    let Some(netlab) = prerequisites("a_tracked_interface_moves_the_vip_there_and_back") else {
        return;
    };
    let m = V2_1S;
    let mut lab = Lab::up(netlab, "vti", m);
    // An uplink of h1's that VRRP does not run on (a veth pair: no dummy module needed).
    lab.ip("h1", "link add uplink0 type veth peer name uplink1");
    lab.ip("h1", "link set uplink1 up");
    lab.ip("h1", "link set uplink0 up");
    let track = "track_interfaces = [{ name = \"uplink0\", weight = -20 }]\n";
    lab.vrrpd_with("h1", 101, m, track);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(1500));

    let down = Instant::now();
    lab.ip("h1", "link set uplink0 down");
    lab.wait_vip("h2", "h1", Duration::from_secs(5));
    let away = down.elapsed();
    // The uplink is back: 101 again, above the 100 that h2 advertised last: h1 preempts at
    // once rather than at h2's next advert.
    let up = Instant::now();
    lab.ip("h1", "link set uplink0 up");
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
    let back = up.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    assert!(h1.contains("interface=uplink0 up=false"), "{h1}");
    assert!(
        away < Duration::from_millis(100),
        "uplink down: VIP on h2 after {away:?}\n{h1}"
    );
    assert!(
        back < Duration::from_millis(100),
        "uplink up: VIP back on h1 after {back:?}\n{h1}"
    );
    eprintln!("tracked interface: away after {away:?}, back after {back:?}");
}

#[test]
fn the_masters_link_going_down_is_fault_at_once_and_up_again_recovers() {
    let Some(netlab) =
        prerequisites("the_masters_link_going_down_is_fault_at_once_and_up_again_recovers")
    else {
        return;
    };
    let m = V3_100MS;
    let mut lab = Lab::up(netlab, "vld", m);
    lab.vrrpd("h1", 101, m);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(500));

    let down = Instant::now();
    lab.ip("h1", "link set eth0 down");
    // h1 hears of it from netlink: Fault, its VIP gone, long before h2 notices anything.
    let mut removed = None;
    while down.elapsed() < Duration::from_secs(2) {
        if !lab.has_vip("h1") {
            removed = Some(down.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let removed = removed.expect("h1 removed its VIP");
    lab.wait_vip("h2", "h1", m.election());
    let taken = down.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    assert!(h1.contains("to=Fault"), "{h1}");
    assert!(
        removed < Duration::from_millis(50),
        "VIP removed after {removed:?}\n{h1}"
    );
    // Master_Down_Interval for priority 100 at 100 ms: 361 ms.
    assert!(
        taken < Duration::from_millis(500),
        "h2 took over after {taken:?}"
    );

    let up = Instant::now();
    lab.ip("h1", "link set eth0 up");
    lab.wait_vip("h1", "h2", Duration::from_secs(3));
    let back = up.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    assert!(h1.contains("FaultCleared"), "{h1}");
    eprintln!(
        "link down: h1 Fault and VIP removed after {removed:?}, h2 Master after {taken:?}; link up: h1 back after {back:?}"
    );
}

/// Whether `host` holds `address` on eth0.
fn holds(lab: &Lab, host: &str, address: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &lab.ns(host), "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).contains(address)
}

/// Whether `host` holds `address` and `other` does not.
fn alone(lab: &Lab, host: &str, other: &str, address: &str) -> bool {
    holds(lab, host, address) && !holds(lab, other, address)
}

#[test]
fn a_sync_group_moves_its_members_together() {
    let Some(netlab) = prerequisites("a_sync_group_moves_its_members_together") else {
        return;
    };
    let m = V3_100MS;
    let mut lab = Lab::up(netlab, "vsg", m);
    let mut apps = Vec::new();
    for host in ["h1", "h2"] {
        let app = App::start(&lab, host, "app");
        let pid_file = app.pid_file.clone();
        apps.push(app);
        let priority = if host == "h1" { 101 } else { 100 };
        // VI_1 tracks the application (weight 0: Fault while it is down); VI_2 tracks
        // nothing but is in VI_1's sync group.
        lab.vrrpd_with(
            host,
            priority,
            m,
            &format!(
                "track = [{{ check = \"chk_app\", weight = 0 }}]\n\n[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvrid = 52\npriority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"10.99.0.201/24\"]\n\n[[sync_group]]\nname = \"VG_1\"\ninstances = [\"VI_1\", \"VI_2\"]\n\n[[check]]\nname = \"chk_app\"\nkind = \"process\"\npid_file = \"{}\"\ninterval = \"1s\"\n",
                pid_file.display()
            ),
        );
    }
    lab.wait_vip("h1", "h2", m.election());
    let started = Instant::now();
    while !alone(&lab, "h1", "h2", "10.99.0.201/24") {
        assert!(started.elapsed() < m.election(), "VI_2 never settled on h1");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));

    // The application dies on h1: VI_1 goes to Fault, VI_2 follows it there although nothing
    // of its own failed, and both addresses move to h2 (priority 0 from each: Skew_Time).
    let killed = Instant::now();
    apps[0].kill();
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    while !alone(&lab, "h2", "h1", "10.99.0.201/24") {
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "VI_2 did not follow VI_1; logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let both = killed.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    assert!(
        h1.contains("sync group follows") && h1.contains("SyncGroup"),
        "{h1}"
    );
    assert!(
        both < Duration::from_millis(300),
        "both moved after {both:?}\n{h1}"
    );
    eprintln!("sync group: both addresses on h2 {both:?} after the tracked process died");
}
