//! hald in namespaces: two balancer hosts (h1 priority 150, h2 100) share 10.99.0.200 and
//! each balances HTTP on it over three backends that run in the client's namespace.
//! - A planned handover under load (SIGTERM to the Master) fails no request: the listeners
//!   hand their clients over (new clients' SYNs ignored, `Connection: close`), then priority
//!   0 goes out and the address moves.
//! - The balancer's own backend health moves VRRP: with every server of its listener down,
//!   h1 is in FAULT and h2 holds the address; the servers back, h1 takes it again.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;
mod lbdlab;

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::vrrp::Lab;
use lbdlab::{Backend, Client};
use tokio::net::TcpStream;

const VIP: &str = "10.99.0.200";

/// hald's configuration for `host`: VI_1 at `priority`, listener `web` on the VIP over the
/// servers at 10.99.0.100:`ports`, all of them down = FAULT.
fn config(lab: &Lab, host: &str, priority: u8, ports: [u16; 3]) -> String {
    let servers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{{ name = \"s{}\", addr = \"10.99.0.100:{p}\" }}", i + 1))
        .collect();
    format!(
        r#"status_socket = "{socket}"

[hald]
drain = "5s"

[[hald.track]]
instance = "VI_1"
listener = "web"
all_down = 0

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = "100ms"
virtual_addresses = ["{VIP}/24"]

[[listen]]
name = "web"
bind = "{VIP}:80"
mode = "http"
check = {{ tcp = true, interval = "200ms", rise = 2, fall = 2 }}
servers = [{servers}]
"#,
        socket = lab.socket(host).display(),
        servers = servers.join(", ")
    )
}

/// Starts hald on `host` with [`config`] (written to `HOST.toml`, which `Lab::status` reads).
fn hald(lab: &mut Lab, host: &str, priority: u8, ports: [u16; 3]) -> usize {
    let path = lab.dir.join(format!("{host}.toml"));
    std::fs::write(&path, config(lab, host, priority, ports)).expect("config");
    lab.spawn(
        host,
        env!("CARGO_BIN_EXE_hald"),
        &format!("{host}.hald.log"),
        |c| {
            c.arg("--config").arg(&path);
        },
    )
}

/// Backends named s1.. on 10.99.0.100:`ports`, in the client's namespace (reachable from both
/// balancers), until the returned sender is dropped.
fn backends(lab: &Lab, ports: [u16; 3]) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, started) = mpsc::channel();
    let ns = format!("/run/netns/{}", lab.ns("cl"));
    std::thread::spawn(move || {
        let file = std::fs::File::open(&ns).expect("namespace file");
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut all = Vec::new();
            for (i, port) in ports.iter().enumerate() {
                let addr: SocketAddr = format!("10.99.0.100:{port}").parse().expect("addr");
                all.push(Backend::start(&format!("s{}", i + 1), addr).await);
            }
            let _ = ready.send(());
            // Serve until told to stop (the channel closes).
            let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
            drop(all);
        });
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
}

/// `clients` keep-alive HTTP clients in the client's namespace, each sending `GET /` to the
/// VIP one after the other for `duration`. As browsers and curl do (RFC 9112 §9.3.1), a
/// request on a reused connection that closes before any byte of an answer is sent once more
/// on a new connection; anything else that is not a 200 is a failure.
fn load(lab: &Lab, clients: usize, duration: Duration) -> std::thread::JoinHandle<Load> {
    let ns = format!("/run/netns/{}", lab.ns("cl"));
    std::thread::spawn(move || {
        let file = std::fs::File::open(&ns).expect("namespace file");
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let addr: SocketAddr = format!("{VIP}:80").parse().expect("addr");
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

#[test]
fn a_planned_handover_under_load_fails_no_request() {
    let Some(netlab) = lab::netlab_or_skip("hald planned handover", &[("ip", "-V")]) else {
        return;
    };
    let mut lab = Lab::new(netlab, "hh");
    let ports = [18081, 18082, 18083];
    let _backends = backends(&lab, ports);
    let h1 = hald(&mut lab, "h1", 150, ports);
    hald(&mut lab, "h2", 100, ports);
    lab.wait_vip("h1", "h2", Duration::from_secs(10));
    // The servers pass their first checks (rise 2 at 200 ms) on both hosts.
    std::thread::sleep(Duration::from_secs(1));

    let run = load(&lab, 8, Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(2));
    let took = lab.stop(h1);
    let load = run.join().expect("the load");
    let log = lab.log("h1.hald.log");
    eprintln!(
        "planned handover: {} answered, {} failed, {} told to close, longest gap {:?}, h1 stopped in {took:?}",
        load.answered,
        load.failures.len(),
        load.told_to_close,
        load.longest_gap
    );
    assert!(
        lab.has_vip("h2") && !lab.has_vip("h1"),
        "the VIP did not move to h2\n{log}"
    );
    assert!(
        load.failures.is_empty(),
        "failed requests: {:?}\nh1's log:\n{log}",
        load.failures
    );
    assert!(load.answered > 200, "{load:?}");
    assert!(
        load.told_to_close > 0,
        "nobody was told to close: {load:?}\n{log}"
    );
    assert!(log.contains("connections drained"), "{log}");
    // Generous: the clients told to close come back within a SYN retransmission (1 s).
    assert!(load.longest_gap < Duration::from_secs(3), "{load:?}");
}

#[test]
fn all_servers_of_the_listener_down_puts_the_instance_in_fault() {
    let Some(netlab) = lab::netlab_or_skip("hald health to FAULT", &[("ip", "-V")]) else {
        return;
    };
    let mut lab = Lab::new(netlab, "hf");
    let (up, h1_ports) = ([18081, 18082, 18083], [18091, 18092, 18093]);
    let _backends = backends(&lab, up);
    // h1's servers do not answer: its listener is down, so is VI_1 (FAULT) despite 150.
    hald(&mut lab, "h1", 150, h1_ports);
    hald(&mut lab, "h2", 100, up);
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
    let _h1_backends = backends(&lab, h1_ports);
    let took = lab.wait_vip("h1", "h2", Duration::from_secs(10));
    eprintln!("h1 took the VIP back {took:?} after its servers came up");
    assert_eq!(state(&lab, "h1"), "MASTER");
}
