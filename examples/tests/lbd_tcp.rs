//! The `lbd` binary in `mode = "tcp"`, run on the shipped configurations (moved to free
//! loopback ports) in front of real HTTP backends: round robin, source hashing, a server
//! stopped under load (health check + redispatch: no client sees it), SIGHUP reload with a
//! connection open, SIGTERM drain with a request in flight, and a broken file on reload.

mod lbdlab;

use std::collections::HashMap;
use std::time::Duration;

use lbdlab::{
    Backend, Client, Lbd, Ports, StoppedUnderLoad, backends, get, lab, stop_s2_under_load,
};
use tokio::net::{TcpSocket, TcpStream};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_rr_spreads_connections_evenly_over_the_three_servers() {
    let (ports, servers, config) = lab("tcp_rr").await;
    let _lbd = Lbd::start(&config);
    let answers = tally_of(ports.listen, 30).await;
    for s in &servers {
        assert_eq!(answers.get(&s.name), Some(&10), "{answers:?}");
    }
}

/// One request from a client bound to `source` (any 127/8 address is on loopback).
async fn get_from(source: &str, addr: std::net::SocketAddr) -> String {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{source}:0").parse().expect("an address"))
        .expect("bind to a loopback source");
    let mut stream = socket.connect(addr).await.expect("connects to lbd");
    Client::default()
        .get(&mut stream, "/", &[("Connection", "close")])
        .await
        .expect("an answer through lbd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_source_sends_each_client_address_to_one_server() {
    let (ports, _servers, config) = lab("tcp_source").await;
    let _lbd = Lbd::start(&config);
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut used = std::collections::HashSet::new();
    for n in 1..=24 {
        let source = format!("127.0.{n}.1");
        let first = get_from(&source, ports.listen).await;
        for _ in 0..3 {
            assert_eq!(get_from(&source, ports.listen).await, first, "{source}");
        }
        used.insert(first.clone());
        seen.insert(source, first);
    }
    assert_eq!(
        used.len(),
        3,
        "24 addresses hash onto every server: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hc_tcp_hides_a_server_stopped_under_load_and_logs_it_down_then_up() {
    let (ports, servers, config) = lab("hc_tcp").await;
    let lbd = Lbd::start(&config);
    // Every server passes its first checks (rise 2 at 200 ms) before the load.
    let StoppedUnderLoad {
        answers,
        failures,
        down,
    } = stop_s2_under_load(&lbd, &ports, &servers, "hc_tcp", WAIT).await;
    // Connects to s2 are retried elsewhere (redispatch), so no client is refused. A client
    // whose connection s2's kernel had accepted but s2 had not yet taken from its backlog
    // when it closed gets a reset, as with HAProxy (mode tcp, the lab's hc suite: 16 socket
    // errors; lbd passes the reset on as a close): bytes already flowed, so nothing can be
    // retried.
    let refused: Vec<&String> = failures
        .iter()
        .filter(|f| !f.contains("reset by peer") && !f.contains("closed before an answer"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        failures.len() <= 5,
        "{} resets: {failures:?}",
        failures.len()
    );
    assert!(answers.get("s2").copied().unwrap_or(0) > 0, "{answers:?}");
    assert!(down.contains("2 of 3 servers up"), "{down}");
    // Back: rise 2.
    let again = Backend::start("s2", ports.servers[1]).await;
    let up = lbd
        .marked(("hc_tcp", "s2", ports.servers[1]), "up", WAIT)
        .await;
    assert!(up.contains("3 of 3 servers up"), "{up}");
    let answers = tally_of(ports.listen, 9).await;
    assert_eq!(answers.get("s2"), Some(&3), "{answers:?}");
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_new_servers_and_weights_without_dropping_an_open_connection() {
    let (ports, servers, config) = lab("tcp_rr").await;
    let lbd = Lbd::start(&config);
    let mut open = TcpStream::connect(ports.listen).await.expect("connects");
    let mut client = Client::default();
    let first = client.get(&mut open, "/", &[]).await.expect("an answer");
    // Reloads `config`, which the reload line says is applied `how`; the open connection goes
    // on with the server it had.
    let mut reload = async |config: &str, how: &str| {
        lbd.reloaded(config, how);
        let answer = client.get(&mut open, "/", &[]).await.expect("still open");
        assert_eq!(answer, first);
    };

    // Weights only: applied in place.
    reload(&ports.weighted(&config, 0, 0), "tuned=[\"tcp_rr\"]").await;
    for _ in 0..6 {
        assert_ne!(get(ports.listen, "/").await.expect("an answer"), "s1");
    }

    // A server removed: applied in place too, the open connection goes on.
    let fewer = ports.without(&config, 2);
    reload(&fewer, "tuned=[\"tcp_rr\"]").await;
    let answers = tally_of(ports.listen, 10).await;
    assert_eq!(answers.len(), 2, "s3 is gone: {answers:?}");
    assert!(!answers.contains_key("s3"), "{answers:?}");

    // The listener itself changed (its balance): it restarts, the old proxy drains and the
    // open connection goes on with it.
    let leastconn = fewer.replace("balance = \"roundrobin\"", "balance = \"leastconn\"");
    assert_ne!(leastconn, fewer);
    reload(&leastconn, "restarted=[\"tcp_rr\"]").await;
    let answers = tally_of(ports.listen, 10).await;
    assert!(!answers.contains_key("s3"), "{answers:?}");
    assert_eq!(answers.values().sum::<usize>(), 10, "{answers:?}");

    // A broken file: refused with its place, the running configuration stays.
    let before = lbd.log().len();
    std::fs::write(&lbd.config, "[[listen]]\nname = 1\n").expect("rewrite");
    lbd.signal("HUP");
    let refused = lbd.wait_for_log_after(before, "reload refused", WAIT);
    assert!(refused.contains("lbd.toml:2:"), "{refused}");
    assert!(get(ports.listen, "/").await.is_ok());
    drop(servers);
}

/// Who answered `n` requests, each on a new connection.
async fn tally_of(addr: std::net::SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut answers: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        let answer = get(addr, "/").await.expect("an answer through lbd");
        *answers.entry(answer).or_default() += 1;
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_the_health_state_of_servers_checked_as_before() {
    let (ports, servers, config) = lab("hc_tcp").await;
    let lbd = Lbd::start(&config);
    // s2 fails its checks (fall 2 at 200 ms) while it still answers traffic.
    servers[1].set_healthy(false);
    let s2 = format!("server s2 {}", ports.servers[1]);
    lbd.logged(&format!("{s2} marked down"), WAIT).await;
    // s3 removed, s1 weighted: in place; s2 keeps its monitor, so it stays down. A new
    // monitor would start it up again and send it traffic until two checks failed.
    let changed = ports.weighted(&ports.without(&config, 2), 0, 2);
    let before = lbd.log().len();
    lbd.reloaded(&changed, "tuned=[\"hc_tcp\"]");
    let answers = tally_of(ports.listen, 12).await;
    assert_eq!(answers.get("s1"), Some(&12), "{answers:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let marked: Vec<String> = lbd.log()[before..]
        .iter()
        .filter(|l| l.contains("marked"))
        .cloned()
        .collect();
    assert!(marked.is_empty(), "no check started over: {marked:?}");
    // Its monitor goes on: back up after rise 2, counted among the two servers left.
    servers[1].set_healthy(true);
    let up = lbd.logged(&format!("{s2} marked up"), WAIT).await;
    assert!(up.contains("2 of 2 servers up"), "{up}");
    let answers = tally_of(ports.listen, 9).await;
    assert_eq!(answers.get("s2"), Some(&3), "weights 2:1: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish_and_refuses_new_clients() {
    let (ports, _servers, config) = lab("tcp_rr").await;
    let mut lbd = Lbd::start(&config);
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(ports.listen).await.expect("connects");
        Client::default()
            .get(&mut stream, "/slow", &[("Connection", "close")])
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    lbd.signal("TERM");
    lbd.wait_for_log("stopping: draining", WAIT);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(ports.listen).await.is_err(),
        "a draining lbd accepts no new client"
    );
    let answer = slow.await.expect("the slow client");
    assert!(answer.is_ok(), "{answer:?}");
    let status = lbd.wait(WAIT);
    assert!(status.success(), "{status:?}");
    let stopped = lbd.wait_for_log("stopped", WAIT);
    assert!(stopped.contains("0 connection(s) closed"), "{stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_maxconn_bounds_all_listeners_together() {
    let ports = Ports::new();
    let _servers = backends(&ports).await;
    let second = lbdlab::free_addr();
    // Two listeners from the shipped tcp_rr, at most two clients between them.
    let one = ports.config("tcp_rr");
    let two = one
        .replace("name = \"tcp_rr\"", "name = \"tcp_rr2\"")
        .replace(&ports.listen.to_string(), &second.to_string());
    let lbd = Lbd::start(&format!("maxconn = 2\n{one}\n{two}"));
    let mut first = TcpStream::connect(ports.listen).await.expect("connects");
    let mut other = TcpStream::connect(second).await.expect("connects");
    let (mut c1, mut c2) = (Client::default(), Client::default());
    c1.get(&mut first, "/", &[])
        .await
        .expect("the first client is served");
    c2.get(&mut other, "/", &[])
        .await
        .expect("the second client is served");
    // A third, on either listener, waits in the backlog: connected, never answered...
    let mut third = TcpStream::connect(ports.listen)
        .await
        .expect("the kernel accepts");
    let mut c3 = Client::default();
    let waiting =
        tokio::time::timeout(Duration::from_millis(500), c3.get(&mut third, "/", &[])).await;
    assert!(
        waiting.is_err(),
        "served beyond the global maxconn: {waiting:?}"
    );
    // ...until one of the others leaves.
    drop(other);
    let served = tokio::time::timeout(WAIT, c3.get(&mut third, "/", &[]))
        .await
        .expect("served once a slot is free");
    assert!(served.is_ok(), "{served:?}");
    drop(lbd);
}
