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

use lab::vrrp::{Lab, Mode, V2_1S, V3_IPV4_100MS, assert_has};

const V3_100MS: Mode = V3_IPV4_100MS;

/// On h1 (priority 101) and h2 (100): an application `name` each ([`App`]) and vrrpd in mode
/// `m` with the configuration `extra(priority, the app's pid file)` added.
fn vrrpd_with_apps(
    lab: &mut Lab,
    m: Mode,
    name: &str,
    extra: impl Fn(u8, &std::path::Path) -> String,
) -> Vec<App> {
    let mut apps = Vec::new();
    for (host, priority) in [("h1", 101), ("h2", 100)] {
        let app = App::start(lab, host, name);
        lab.vrrpd_with(host, priority, m, &extra(priority, &app.pid_file));
        apps.push(app);
    }
    apps
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
    let test = "a_tracked_process_killed_on_the_master_hands_over_within_100ms_at_1s_adverts";
    let m = V2_1S;
    let Some(mut lab) = Lab::or_skip(test, "vtp", m) else {
        return;
    };
    // The "haproxy" of each host.
    let mut apps = vrrpd_with_apps(&mut lab, m, "haproxy", |_, pid_file| {
        format!(
            "track = [{{ check = \"chk_haproxy\", weight = -4 }}]\n\n[[check]]\nname = \"chk_haproxy\"\nkind = \"process\"\npid_file = \"{}\"\ninterval = \"2s\"\nrise = 1\nfall = 2\n",
            pid_file.display()
        )
    });
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(lab.has_vip("h1") && !lab.has_vip("h2"));

    let took = lab.timed_move(["h2", "h1"], Duration::from_secs(5), || apps[0].kill());
    let h1 = lab.log("h1.vrrpd.log");
    let h2 = lab.log("h2.vrrpd.log");
    assert_has(&h1, &["tracked check changed", "up=false"]);
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
    let test = "a_tracked_interface_moves_the_vip_there_and_back";
    let m = V2_1S;
    let Some(mut lab) = Lab::or_skip(test, "vti", m) else {
        return;
    };
    // An uplink of h1's that VRRP does not run on (a veth pair: no dummy module needed).
    lab.ip("h1", "link add uplink0 type veth peer name uplink1");
    lab.ip("h1", "link set uplink1 up");
    lab.ip("h1", "link set uplink0 up");
    let track = "track_interfaces = [{ name = \"uplink0\", weight = -20 }]\n";
    lab.vrrpd_with("h1", 101, m, track);
    lab.vrrpd("h2", 100, m);
    lab.wait_vip("h1", "h2", m.election());
    std::thread::sleep(Duration::from_millis(1500));

    let within = Duration::from_secs(5);
    let away = lab.timed_move(["h2", "h1"], within, || {
        lab.ip("h1", "link set uplink0 down")
    });
    // The uplink is back: 101 again, above the 100 that h2 advertised last: h1 preempts at
    // once rather than at h2's next advert.
    let back = lab.timed_move(["h1", "h2"], within, || lab.ip("h1", "link set uplink0 up"));
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
    let test = "the_masters_link_going_down_is_fault_at_once_and_up_again_recovers";
    let m = V3_100MS;
    let Some(mut lab) = Lab::or_skip(test, "vld", m) else {
        return;
    };
    lab.vrrpd_pair(m, 101, 100);
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

    let within = Duration::from_secs(3);
    let back = lab.timed_move(["h1", "h2"], within, || lab.ip("h1", "link set eth0 up"));
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

/// Waits until `host` holds `address` and `other` does not, at most until `since` + `within`
/// (`what` says what failed then).
fn wait_alone(
    lab: &Lab,
    [host, other]: [&str; 2],
    address: &str,
    since: Instant,
    within: Duration,
    what: &str,
) {
    let alone = || holds(lab, host, address) && !holds(lab, other, address);
    while !alone() {
        assert!(
            since.elapsed() < within,
            "{what}; logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_sync_group_moves_its_members_together() {
    let test = "a_sync_group_moves_its_members_together";
    let m = V3_100MS;
    let Some(mut lab) = Lab::or_skip(test, "vsg", m) else {
        return;
    };
    // VI_1 tracks the application (weight 0: Fault while it is down); VI_2 tracks nothing but
    // is in VI_1's sync group.
    let mut apps = vrrpd_with_apps(&mut lab, m, "app", |priority, pid_file| {
        format!(
            "track = [{{ check = \"chk_app\", weight = 0 }}]\n\n[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvrid = 52\npriority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"10.99.0.201/24\"]\n\n[[sync_group]]\nname = \"VG_1\"\ninstances = [\"VI_1\", \"VI_2\"]\n\n[[check]]\nname = \"chk_app\"\nkind = \"process\"\npid_file = \"{}\"\ninterval = \"1s\"\n",
            pid_file.display()
        )
    });
    lab.wait_vip("h1", "h2", m.election());
    let vi_2 = "10.99.0.201/24";
    wait_alone(
        &lab,
        ["h1", "h2"],
        vi_2,
        Instant::now(),
        m.election(),
        "VI_2 never settled on h1",
    );
    std::thread::sleep(Duration::from_millis(500));

    // The application dies on h1: VI_1 goes to Fault, VI_2 follows it there although nothing
    // of its own failed, and both addresses move to h2 (priority 0 from each: Skew_Time).
    let killed = Instant::now();
    apps[0].kill();
    lab.wait_vip("h2", "h1", Duration::from_secs(2));
    let within = Duration::from_secs(2);
    wait_alone(
        &lab,
        ["h2", "h1"],
        vi_2,
        killed,
        within,
        "VI_2 did not follow VI_1",
    );
    let both = killed.elapsed();
    let h1 = lab.log("h1.vrrpd.log");
    assert_has(&h1, &["sync group follows", "SyncGroup"]);
    assert!(
        both < Duration::from_millis(300),
        "both moved after {both:?}\n{h1}"
    );
    eprintln!("sync group: both addresses on h2 {both:?} after the tracked process died");
}
