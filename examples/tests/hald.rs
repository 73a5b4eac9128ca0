//! hald in namespaces: two balancer hosts (h1 priority 150, h2 100) share 10.99.0.200 and
//! each balances HTTP on it over three backends that run in the client's namespace.
//! - A planned handover under load (SIGTERM to the Master) fails no request: the listeners
//!   hand their clients over (new clients' SYNs ignored, `Connection: close`), then priority
//!   0 goes out and the address moves.
//! - The balancer's own backend health moves VRRP: with every server of its listener down,
//!   h1 is in FAULT and h2 holds the address; the servers back, h1 takes it again.
//! - The Master's hald SIGKILLed (the balancer process killed): its crash guard sends priority
//!   0 and removes the address, h2 holds it after Skew_Time.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;
mod lbdlab;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::vrrp::{Lab, assert_has};
use lbdlab::{Backend, Client};
use tokio::net::TcpStream;

/// One VRRP instance of a test's hald: name, VRID, priority, virtual address (CIDR).
type Instance = (&'static str, u8, u8, &'static str);

/// One listener: name, bind address, and its servers' address (without port) and ports; it
/// is tracked by the instance of the same position (all servers down = FAULT).
type Listener = (&'static str, &'static str, &'static str, [u16; 3]);

/// hald's configuration for `host`: `instances` (VRRPv3, 100 ms) and `listeners` (HTTP, TCP
/// checks at 200 ms, rise 2, fall 2), each listener tracked by the instance at its position.
fn config(lab: &Lab, host: &str, instances: &[Instance], listeners: &[Listener]) -> String {
    let mut text = format!(
        "status_socket = \"{}\"\n\n[hald]\ndrain = \"5s\"\n",
        lab.socket(host).display()
    );
    for ((instance, ..), (listener, ..)) in instances.iter().zip(listeners) {
        text.push_str(&format!(
            "\n[[hald.track]]\ninstance = \"{instance}\"\nlistener = \"{listener}\"\nall_down = 0\n"
        ));
    }
    for (name, vrid, priority, vip) in instances {
        text.push_str(&format!(
            "\n[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\nadvert_interval = \"100ms\"\nvirtual_addresses = [\"{vip}\"]\n"
        ));
    }
    for (name, bind, server_ip, ports) in listeners {
        let servers: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{{ name = \"s{}\", addr = \"{}\" }}",
                    i + 1,
                    socket(server_ip, *p)
                )
            })
            .collect();
        text.push_str(&format!(
            "\n[[listen]]\nname = \"{name}\"\nbind = \"{bind}\"\nmode = \"http\"\ncheck = {{ tcp = true, interval = \"200ms\", rise = 2, fall = 2 }}\nservers = [{}]\n",
            servers.join(", ")
        ));
    }
    text
}

/// `ip:port`, bracketing an IPv6 address.
fn socket(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The usual setup: VI_1 on 10.99.0.200 at `priority`, listener `web` on it over the servers
/// at 10.99.0.100:`ports`.
fn one(priority: u8, ports: [u16; 3]) -> (Vec<Instance>, Vec<Listener>) {
    (
        vec![("VI_1", 51, priority, "10.99.0.200/24")],
        vec![("web", "10.99.0.200:80", "10.99.0.100", ports)],
    )
}

/// Starts hald on `host` with [`config`] (written to `HOST.toml`, which `Lab::status` reads).
fn hald(lab: &mut Lab, host: &str, setup: (Vec<Instance>, Vec<Listener>)) -> usize {
    hald_with(lab, host, setup, "")
}

/// [`hald`] with drained preemption on (`[hald.handover]`, the default port).
fn hald_with_handover(lab: &mut Lab, host: &str, setup: (Vec<Instance>, Vec<Listener>)) -> usize {
    hald_edited(lab, host, setup, |text| {
        text.replace("[hald]\n", "[hald]\nhandover = { enabled = true }\n")
    })
}

/// [`hald`] with `extra` lines in every listener (after its `mode`).
fn hald_with(
    lab: &mut Lab,
    host: &str,
    setup: (Vec<Instance>, Vec<Listener>),
    extra: &str,
) -> usize {
    hald_edited(lab, host, setup, |text| {
        text.replace("mode = \"http\"\n", &format!("mode = \"http\"\n{extra}"))
    })
}

/// hald on `host` with [`config`] changed by `edit`, written to `HOST.toml`.
fn hald_edited(
    lab: &mut Lab,
    host: &str,
    (instances, listeners): (Vec<Instance>, Vec<Listener>),
    edit: impl FnOnce(String) -> String,
) -> usize {
    let path = lab.dir.join(format!("{host}.toml"));
    std::fs::write(&path, edit(config(lab, host, &instances, &listeners))).expect("config");
    lab.spawn(
        host,
        env!("CARGO_BIN_EXE_hald"),
        &format!("{host}.hald.log"),
        |c| {
            c.arg("--config").arg(&path);
        },
    )
}

/// Once the servers passed their first checks, 8 clients load 10.99.0.200:80 for `seconds`;
/// returns 2 s into it.
fn load_on_the_vip(lab: &Lab, seconds: u64) -> std::thread::JoinHandle<Load> {
    std::thread::sleep(Duration::from_secs(1));
    let addr = "10.99.0.200:80".parse().expect("addr");
    let run = load(lab, addr, 8, Duration::from_secs(seconds));
    std::thread::sleep(Duration::from_secs(2));
    run
}

/// Backends named s1.. on `ip`:`ports`, in the client's namespace (reachable from both
/// balancers), until the returned sender is dropped.
fn backends(lab: &Lab, ip: &'static str, ports: [u16; 3]) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, started) = mpsc::channel();
    lab::spawn_in_namespace(&lab.ns("cl"), move || async move {
        let mut all = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let addr: SocketAddr = socket(ip, *port).parse().expect("addr");
            all.push(Backend::start(&format!("s{}", i + 1), addr).await);
        }
        let _ = ready.send(());
        // Serve until told to stop (the channel closes).
        let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
        drop(all);
    });
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("backends started");
    stop
}

/// What the load saw.
#[derive(Debug, Default)]
struct Load {
    answered: usize,
    failures: Vec<String>,
    /// The longest time without any answer, and when it began (since the load's start).
    longest_gap: Duration,
    /// Connections the proxy asked to close (`Connection: close`).
    told_to_close: usize,
    /// Requests sent again because their reused connection closed before an answer.
    resent: usize,
}

impl Load {
    /// Prints what the load saw during `what` and fails the test on any failed request
    /// (`log`: the daemon's, for the message) or when it hardly ran.
    fn check(&self, what: &str, log: &str) {
        eprintln!(
            "{what}: {} answered, {} failed, {} told to close, {} resent, longest gap {:?}",
            self.answered,
            self.failures.len(),
            self.told_to_close,
            self.resent,
            self.longest_gap
        );
        assert!(
            self.failures.is_empty(),
            "failed requests: {:?}\nthe log:\n{log}",
            self.failures
        );
        assert!(self.answered > 200, "{self:?}");
    }
}

/// `clients` keep-alive HTTP clients in the client's namespace, each sending `GET /` to the
/// VIP one after the other for `duration`. As browsers and curl do (RFC 9112 §9.3.1), a
/// request on a reused connection that closes before any byte of an answer is sent once more
/// on a new connection; anything else that is not a 200 is a failure.
fn load(
    lab: &Lab,
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
) -> std::thread::JoinHandle<Load> {
    lab::spawn_in_namespace(&lab.ns("cl"), move || async move {
        let start = Instant::now();
        let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let answers = answers.clone();
            tasks.push(tokio::spawn(async move {
                let mut load = Load::default();
                let mut connection: Option<(TcpStream, Client)> = None;
                while start.elapsed() < duration {
                    let reused = connection.is_some();
                    let (stream, client) = match connection.as_mut() {
                        Some(c) => c,
                        None => {
                            let connect = TcpStream::connect(addr);
                            match tokio::time::timeout(Duration::from_secs(10), connect).await {
                                Ok(Ok(s)) => connection.insert((s, Client::default())),
                                Ok(Err(e)) => {
                                    load.failures.push(format!("connect: {e}"));
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                    continue;
                                }
                                Err(_) => {
                                    load.failures.push("connect: timed out".into());
                                    continue;
                                }
                            }
                        }
                    };
                    let answer = tokio::time::timeout(
                        Duration::from_secs(5),
                        client.request(stream, "/", &[]),
                    )
                    .await
                    .unwrap_or_else(|_| Err(std::io::Error::other("no answer in 5 s")));
                    match answer {
                        Ok((200, headers, _)) => {
                            load.answered += 1;
                            answers.lock().expect("lock").push(start.elapsed());
                            if headers.get("connection").is_some_and(|v| v == "close") {
                                load.told_to_close += 1;
                                connection = None;
                            }
                        }
                        Ok((status, _, body)) => {
                            load.failures.push(format!("status {status}: {body}"));
                            connection = None;
                        }
                        Err(e) if reused && e.to_string() == "closed before an answer" => {
                            // Closed while idle: send it again on a new connection.
                            load.resent += 1;
                            connection = None;
                        }
                        Err(e) => {
                            load.failures.push(e.to_string());
                            connection = None;
                        }
                    }
                }
                load
            }));
        }
        let mut total = Load::default();
        for t in tasks {
            let l = t.await.expect("a load client");
            total.answered += l.answered;
            total.failures.extend(l.failures);
            total.told_to_close += l.told_to_close;
            total.resent += l.resent;
        }
        let mut at = answers.lock().expect("lock").clone();
        at.sort();
        total.longest_gap = at
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(Duration::ZERO);
        total
    })
}

/// The state of VI_1 in `host`'s status.
fn state(lab: &Lab, host: &str) -> String {
    let status = lab.status(host);
    status["instances"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == "VI_1"))
        .and_then(|i| i["state"].as_str())
        .unwrap_or("?")
        .to_owned()
}

/// Stops `h1` (the Master of the listener on `addr`) while 8 clients load it: what they saw.
fn handover_under_load(lab: &mut Lab, h1: usize, addr: &str) -> Load {
    let addr: SocketAddr = addr.parse().expect("addr");
    let run = load(lab, addr, 8, Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(2));
    let took = lab.stop(h1);
    let load = run.join().expect("the load");
    let log = lab.log("h1.hald.log");
    load.check(
        &format!("planned handover on {addr} (h1 stopped in {took:?})"),
        &log,
    );
    assert!(
        load.told_to_close > 0,
        "nobody was told to close: {load:?}\n{log}"
    );
    assert!(log.contains("connections drained"), "{log}");
    // Generous: the clients told to close come back within a SYN retransmission (1 s).
    assert!(load.longest_gap < Duration::from_secs(3), "{load:?}");
    load
}

/// Two halds (h1 150, h2 100) over VIP `vip` (CIDR) with listener `web` on `bind` and the
/// servers at `server_ip` in the client's namespace; h1 stopped under load: no request fails
/// and the VIP moves to h2.
fn planned_handover(
    test: &str,
    tag: &str,
    mode: lab::vrrp::Mode,
    vip: &'static str,
    bind: &'static str,
    server_ip: &'static str,
) {
    let Some(mut lab) = Lab::or_skip(test, tag, mode) else {
        return;
    };
    let ports = [18081, 18082, 18083];
    let _backends = backends(&lab, server_ip, ports);
    let setup = |priority| {
        (
            vec![("VI_1", 51, priority, vip)],
            vec![("web", bind, server_ip, ports)],
        )
    };
    let h1 = hald(&mut lab, "h1", setup(150));
    hald(&mut lab, "h2", setup(100));
    lab.wait_vip("h1", "h2", Duration::from_secs(10));
    // The servers pass their first checks (rise 2 at 200 ms) on both hosts.
    std::thread::sleep(Duration::from_secs(1));
    handover_under_load(&mut lab, h1, bind);
    assert!(
        lab.has_vip("h2") && !lab.has_vip("h1"),
        "the VIP did not move to h2"
    );
}

/// A lab `tag` with the three backends on 10.99.0.100 in its client namespace, when `test` can
/// run here (root, iproute2): the lab, the backends' ports and their stopper.
fn lab_with_backends(test: &str, tag: &str) -> Option<(Lab, [u16; 3], mpsc::Sender<()>)> {
    let netlab = lab::netlab_or_skip(test, &[("ip", "-V")])?;
    let lab = Lab::new(netlab, tag);
    let ports = [18081, 18082, 18083];
    let backends = backends(&lab, "10.99.0.100", ports);
    Some((lab, ports, backends))
}

#[test]
fn a_killed_hald_s_crash_guard_hands_the_address_over() {
    let test = "a_killed_hald_s_crash_guard_hands_the_address_over";
    let Some((mut lab, ports, _backends)) = lab_with_backends(test, "hg") else {
        return;
    };
    let h1 = hald(&mut lab, "h1", one(150, ports));
    hald(&mut lab, "h2", one(100, ports));
    lab.wait_vip("h1", "h2", Duration::from_secs(5));
    let (took, log) = lab.kill_guarded_master(h1, "h1.hald.log");
    // Skew_Time of h2 is 61 ms; without the guard, Master_Down_Interval is 361 ms.
    assert!(took < Duration::from_millis(330), "{took:?}\n{log}");
    eprintln!("hald SIGKILLed: the address on h2 alone after {took:?}");
}

#[test]
fn a_planned_handover_under_load_fails_no_request() {
    planned_handover(
        "hald planned handover",
        "hh",
        lab::vrrp::V3_IPV4_100MS,
        "10.99.0.200/24",
        "10.99.0.200:80",
        "10.99.0.100",
    );
}

#[test]
fn ipv6_a_vip_listener_servers_and_checks_hand_over_without_a_failed_request() {
    planned_handover(
        "hald over IPv6",
        "h6",
        lab::vrrp::MODES[1],
        "fd99::200/64",
        "[fd99::200]:80",
        "fd99::100",
    );
}

#[test]
fn active_active_each_host_masters_one_address_and_takes_both_on_a_handover() {
    let Some((mut lab, ports, _backends)) = lab_with_backends("hald active-active", "ha") else {
        return;
    };
    // Seed 003: two instances with swapped priorities, each host Master of one address.
    let setup = |p1, p2| {
        (
            vec![
                ("VI_1", 51, p1, "10.99.0.200/24"),
                ("VI_2", 52, p2, "10.99.0.201/24"),
            ],
            vec![
                ("web1", "10.99.0.200:80", "10.99.0.100", ports),
                ("web2", "10.99.0.201:80", "10.99.0.100", ports),
            ],
        )
    };
    let h1 = hald(&mut lab, "h1", setup(101, 100));
    hald(&mut lab, "h2", setup(100, 101));
    let holds = |lab: &Lab, host: &str, vip: &str| lab.addresses(host).contains(vip);
    let deadline = Instant::now() + Duration::from_secs(10);
    let one_each = |lab: &Lab| {
        holds(lab, "h1", "10.99.0.200/24")
            && holds(lab, "h2", "10.99.0.201/24")
            && !holds(lab, "h1", "10.99.0.201/24")
            && !holds(lab, "h2", "10.99.0.200/24")
    };
    while !one_each(&lab) {
        assert!(
            Instant::now() < deadline,
            "not one address each: h1 {}, h2 {}",
            lab.addresses("h1"),
            lab.addresses("h2")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    // Both balance: h2's address keeps serving while h1 hands its own over.
    let other = load(
        &lab,
        "10.99.0.201:80".parse().expect("addr"),
        2,
        Duration::from_secs(6),
    );
    handover_under_load(&mut lab, h1, "10.99.0.200:80");
    let other = other.join().expect("the load on h2's address");
    assert!(
        other.failures.is_empty() && other.answered > 100,
        "{other:?}"
    );
    assert!(
        holds(&lab, "h2", "10.99.0.200/24") && holds(&lab, "h2", "10.99.0.201/24"),
        "h2 does not hold both: {}",
        lab.addresses("h2")
    );
}

#[test]
fn all_servers_of_the_listener_down_puts_the_instance_in_fault() {
    let Some(netlab) = lab::netlab_or_skip("hald health to FAULT", &[("ip", "-V")]) else {
        return;
    };
    let mut lab = Lab::new(netlab, "hf");
    let (up, h1_ports) = ([18081, 18082, 18083], [18091, 18092, 18093]);
    let _backends = backends(&lab, "10.99.0.100", up);
    // h1's servers do not answer: its listener is down, so is VI_1 (FAULT) despite 150.
    let page = "127.0.0.1:18404";
    hald_with(
        &mut lab,
        "h1",
        one(150, h1_ports),
        &format!("stats = {{ bind = \"{page}\" }}\n"),
    );
    hald(&mut lab, "h2", one(100, up));
    lab.wait_vip("h2", "h1", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&lab, "h1") != "FAULT" {
        assert!(
            Instant::now() < deadline,
            "h1 not in FAULT: {:#}",
            lab.status("h1")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lab.has_vip("h2") && !lab.has_vip("h1"));
    let status = lab.status("h1");
    let text = status.to_string();
    assert!(
        text.contains("listener:web"),
        "the tracker is not shown: {status:#}"
    );

    // h1's servers come up: two checks later it leaves FAULT and preempts h2.
    let _h1_backends = backends(&lab, "10.99.0.100", h1_ports);
    let took = lab.wait_vip("h1", "h2", Duration::from_secs(10));
    eprintln!("h1 took the VIP back {took:?} after its servers came up");
    assert_eq!(state(&lab, "h1"), "MASTER");
}

#[test]
fn a_reload_that_lowers_the_masters_priority_drains_first() {
    let Some((mut lab, ports, _backends)) = lab_with_backends("hald reload handover", "hr") else {
        return;
    };
    let h1 = hald(&mut lab, "h1", one(150, ports));
    hald(&mut lab, "h2", one(100, ports));
    lab.wait_vip("h1", "h2", Duration::from_secs(10));
    let run = load_on_the_vip(&lab, 5);
    let (instances, listeners) = one(50, ports);
    let path = lab.dir.join("h1.toml");
    std::fs::write(&path, config(&lab, "h1", &instances, &listeners)).expect("config");
    lab.signal(h1, "-HUP");
    let load = run.join().expect("the load");
    let log = lab.log("h1.hald.log");
    load.check("reload to priority 50", &log);
    assert!(
        log.contains("the reload hands instances over: draining first"),
        "{log}"
    );
    assert!(
        load.failures.is_empty(),
        "failed requests: {:?}\nh1's log:\n{log}",
        load.failures
    );
    assert!(
        lab.has_vip("h2") && !lab.has_vip("h1"),
        "h1: {}\nh2: {}\nh1's log:\n{log}\nh2's log:\n{}",
        lab.addresses("h1"),
        lab.addresses("h2"),
        lab.log("h2.hald.log")
    );
    assert_eq!(state(&lab, "h1"), "BACKUP");
}

#[test]
fn a_preempting_peer_lets_the_master_drain_first_and_no_request_fails() {
    let Some((mut lab, ports, _backends)) = lab_with_backends("hald drained preemption", "hp")
    else {
        return;
    };
    // h1 (100) alone is Master and serves under load; h2 (150) comes back and preempts.
    hald_with_handover(&mut lab, "h1", one(100, ports));
    lab.wait_vip("h1", "h2", Duration::from_secs(10));
    let run = load_on_the_vip(&lab, 7);
    hald_with_handover(&mut lab, "h2", one(150, ports));
    let took = lab.wait_vip("h2", "h1", Duration::from_secs(15));
    let load = run.join().expect("the load");
    let (h1_log, h2_log) = (lab.log("h1.hald.log"), lab.log("h2.hald.log"));
    load.check(
        &format!("drained preemption (h2 Master {took:?} after its start)"),
        &h1_log,
    );
    assert!(
        load.told_to_close > 0,
        "nobody was told to close: {load:?}\n{h1_log}"
    );
    assert_has(
        &h1_log,
        &[
            "a preempting peer asks for the address: draining first",
            "drained: resigned (priority 0)",
        ],
    );
    assert_has(
        &h2_log,
        &["asked the Master to drain and resign", "accepted"],
    );
    // h1 resigned after its drain, long before h2's preempt_delay (drain 5 s + 2 s) was over.
    assert!(
        took < Duration::from_secs(6),
        "h2 took over after {took:?}\n{h2_log}"
    );
    assert_eq!(state(&lab, "h1"), "BACKUP");
}

#[test]
fn check_prints_every_mistake_with_its_line_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("hald-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("hald.toml");
    std::fs::write(
        &file,
        "[hald]\ndrain = \"soon\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_addresses = [\"10.0.0.1/24\"]\n\n[[listen]]\nname = \"web\"\nbind = \"10.0.0.1:80\"\nservers = [{ name = \"s\", addr = \"10.0.0.2:80\" }]\n\n[[hald.track]]\ninstance = \"VI_1\"\nlistener = \"web\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hald"))
        .arg("--check")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("hald runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let f = file.display();
    assert!(stderr.contains(&format!("{f}:2:9: hald.drain")), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{f}:17:12: hald.track[0].listener: listener \"web\" has no `check`"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hald: 2 error(s)"), "{stderr}");
}
