//! The TCP proxy (lbd `mode = "tcp"`) against real echo servers on loopback: round robin over
//! three servers, retries with redispatch around a refusing port, half-close, the idle
//! timeout, the global `maxconn` and a graceful drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use examples::proxy::{ServerSettings, TcpProxy, TcpSettings, Timeouts};
use lb_core::{Health, LeastConnections, RoundRobin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const LOOPBACK: &str = "127.0.0.1:0";
const WAIT: Duration = Duration::from_secs(5);

/// A server on loopback that echoes every byte, counting the connections it accepted.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Self {
        let listener = TcpListener::bind(LOOPBACK)
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.expect("the echo server accepts");
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        Echo {
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port with nothing listening (bound, then closed): connects are refused.
async fn refusing_port() -> SocketAddr {
    let listener = TcpListener::bind(LOOPBACK)
        .await
        .expect("a free loopback port");
    listener.local_addr().expect("a bound address")
}

fn settings(servers: &[(&str, SocketAddr)]) -> TcpSettings {
    let servers = servers
        .iter()
        .map(|(name, addr)| ServerSettings::new(*name, *addr))
        .collect();
    let mut settings = TcpSettings::new(
        "test",
        LOOPBACK.parse().expect("LOOPBACK is an address"),
        servers,
    );
    settings.timeouts = Timeouts {
        connect: Duration::from_secs(1),
        client: Duration::from_secs(10),
        server: Duration::from_secs(10),
        queue: Duration::from_secs(2),
    };
    settings.retry_delay = Duration::from_millis(10);
    settings
}

/// Sends `message` and reads the same number of bytes back.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream
        .write_all(message)
        .await
        .expect("the request is sent");
    let mut reply = vec![0; message.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut reply))
        .await
        .expect("a reply in time")
        .expect("the reply is read");
    reply
}

#[tokio::test]
async fn roundrobin_spreads_30_connections_evenly_over_3_servers() {
    let echoes = [
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    ];
    let proxy = TcpProxy::start(
        settings(&[
            ("s1", echoes[0].addr),
            ("s2", echoes[1].addr),
            ("s3", echoes[2].addr),
        ]),
        RoundRobin,
    )
    .unwrap();
    for i in 0..30 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let message = format!("hello {i}");
        assert_eq!(
            round_trip(&mut client, message.as_bytes()).await,
            message.as_bytes()
        );
    }
    let counts: Vec<usize> = echoes.iter().map(Echo::accepted).collect();
    assert_eq!(counts, [10, 10, 10]);
    let stats = proxy.stats();
    assert_eq!(stats.total, 30);
    assert_eq!(stats.failed, 0);
    for server in &stats.servers {
        assert_eq!(server.total, 10, "{server:?}");
        assert_eq!(server.connect_errors, 0, "{server:?}");
        assert!(
            server.bytes_in >= 70 && server.bytes_in == server.bytes_out,
            "{server:?}"
        );
    }
}

#[tokio::test]
async fn refused_connects_are_retried_then_redispatched_haproxy_option_redispatch() {
    let live = [Echo::start().await, Echo::start().await];
    let dead = refusing_port().await;
    let mut settings = settings(&[("dead", dead), ("a", live[0].addr), ("b", live[1].addr)]);
    settings.retries = 2;
    settings.redispatch = true;
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    for i in 0..12 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let message = format!("try {i}");
        assert_eq!(
            round_trip(&mut client, message.as_bytes()).await,
            message.as_bytes()
        );
    }
    let stats = proxy.stats();
    assert_eq!(stats.failed, 0, "{stats:?}");
    let dead = stats.server("dead").unwrap();
    assert_eq!(dead.total, 0);
    // Every client the dead server was picked for failed there twice (the first try and
    // the retry on the same server), then got another server on the last retry.
    assert!(stats.redispatches >= 3, "{stats:?}");
    assert_eq!(dead.connect_errors, 2 * stats.redispatches, "{stats:?}");
    assert_eq!(stats.retries, dead.connect_errors);
    assert_eq!(live[0].accepted() + live[1].accepted(), 12);
    assert_eq!(dead.current, 0, "slots given back");
}

#[tokio::test]
async fn without_redispatch_a_refusing_server_fails_the_client_after_its_retries() {
    let dead = refusing_port().await;
    let mut settings = settings(&[("dead", dead)]);
    settings.retries = 3;
    settings.redispatch = false;
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, client.read(&mut byte))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let stats = proxy.stats();
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.server("dead").unwrap().connect_errors, 4);
}

#[tokio::test]
async fn half_close_client_shuts_down_its_write_side_and_still_reads_the_whole_reply() {
    // A server that reads the whole request, then answers it reversed, then closes.
    let listener = TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        request.reverse();
        // A reply larger than the socket buffers, so it flows while the request side is shut.
        for _ in 0..4 {
            stream.write_all(&request).await.unwrap();
        }
        stream.shutdown().await.unwrap();
    });
    let proxy = TcpProxy::start(settings(&[("s", addr)]), RoundRobin).unwrap();
    let request: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(&request).await.unwrap();
    client.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut reply))
        .await
        .expect("the reply in time")
        .unwrap();
    let mut expected: Vec<u8> = request.iter().rev().copied().collect();
    expected = expected.repeat(4);
    assert_eq!(reply.len(), expected.len());
    assert!(reply == expected);
    server.await.unwrap();
    let stats = proxy.stats();
    let s = stats.server("s").unwrap();
    assert_eq!((s.bytes_in, s.bytes_out), (200_000, 800_000));
}

#[tokio::test]
async fn idle_timeout_closes_a_silent_connection_timeout_client_server() {
    let echo = Echo::start().await;
    let mut settings = settings(&[("s", echo.addr)]);
    settings.timeouts.client = Duration::from_millis(400);
    settings.timeouts.server = Duration::from_millis(600);
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // Activity keeps it open past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(round_trip(&mut client, b"ping").await, b"ping");
    }
    // ...silence closes it after the shorter of the two.
    let silent = Instant::now();
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, client.read(&mut byte))
        .await
        .expect("closed in time");
    let after = silent.elapsed();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        after >= Duration::from_millis(350) && after < Duration::from_millis(1200),
        "closed after {after:?}"
    );
    assert_eq!(proxy.stats().idle_timeouts, 1);
}

#[tokio::test]
async fn global_maxconn_the_next_client_waits_until_one_closes() {
    let echo = Echo::start().await;
    let mut settings = settings(&[("s", echo.addr)]);
    settings.maxconn = 2;
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut second = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut first, b"1").await, b"1");
    assert_eq!(round_trip(&mut second, b"2").await, b"2");
    // The third connects (the kernel's backlog takes it) but is not served.
    let mut third = TcpStream::connect(proxy.local_addr()).await.unwrap();
    third.write_all(b"3").await.unwrap();
    let mut reply = [0; 1];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read_exact(&mut reply));
    assert!(waited.await.is_err(), "served beyond maxconn");
    assert_eq!(proxy.stats().current, 2);
    assert_eq!(echo.accepted(), 2);
    drop(first);
    tokio::time::timeout(WAIT, third.read_exact(&mut reply))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert_eq!(&reply, b"3");
    assert_eq!(round_trip(&mut second, b"still").await, b"still");
    assert_eq!(proxy.stats().total, 3);
}

#[tokio::test]
async fn server_maxconn_queues_the_next_client_until_a_slot_frees() {
    let echo = Echo::start().await;
    let mut settings = settings(&[("s", echo.addr)]);
    settings.servers[0].maxconn = Some(1);
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut first, b"1").await, b"1");
    let mut second = TcpStream::connect(proxy.local_addr()).await.unwrap();
    second.write_all(b"2").await.unwrap();
    let mut reply = [0; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut reply));
    assert!(waited.await.is_err(), "served beyond the server's maxconn");
    assert_eq!(proxy.stats().server("s").unwrap().current, 1);
    drop(first);
    tokio::time::timeout(WAIT, second.read_exact(&mut reply))
        .await
        .expect("served once the slot freed")
        .unwrap();
    assert_eq!(&reply, b"2");
    assert_eq!(proxy.stats().failed, 0);
}

#[tokio::test]
async fn drain_lets_in_flight_finish_and_refuses_new_clients() {
    let echo = Echo::start().await;
    let proxy = TcpProxy::start(settings(&[("s", echo.addr)]), RoundRobin).unwrap();
    let addr = proxy.local_addr();
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut client, b"before").await, b"before");
    let drain = tokio::spawn(proxy.drain(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "accepted while draining");
    // The one in flight still works, then finishes on its own.
    assert_eq!(round_trip(&mut client, b"during").await, b"during");
    drop(client);
    let report = tokio::time::timeout(WAIT, drain).await.unwrap().unwrap();
    assert_eq!((report.in_flight, report.closed), (1, 0));
    assert!(report.took < Duration::from_secs(2), "{report:?}");
}

#[tokio::test]
async fn drain_closes_what_is_left_at_the_deadline() {
    let echo = Echo::start().await;
    let proxy = TcpProxy::start(settings(&[("s", echo.addr)]), RoundRobin).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"x").await, b"x");
    let report = proxy.drain(Duration::from_millis(300)).await;
    assert_eq!((report.in_flight, report.closed), (1, 1));
    assert!(report.took >= Duration::from_millis(300) && report.took < Duration::from_secs(2));
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, client.read(&mut byte))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn settings_errors_name_the_key_and_the_fix() {
    let echo = Echo::start().await;
    let mut duplicate = settings(&[("s", echo.addr), ("s", echo.addr)]);
    let error = TcpProxy::start(duplicate.clone(), RoundRobin).unwrap_err();
    assert_eq!(
        error.to_string(),
        "listen \"test\": two servers are named \"s\": give each server its own name"
    );
    duplicate.servers.clear();
    let error = TcpProxy::start(duplicate, RoundRobin).unwrap_err();
    assert!(error.to_string().contains("servers is empty"), "{error}");
}

#[tokio::test]
async fn leastconn_counts_each_connection_in_flight_while_it_lasts() {
    let echoes = [Echo::start().await, Echo::start().await];
    let proxy = TcpProxy::start(
        settings(&[("s1", echoes[0].addr), ("s2", echoes[1].addr)]),
        LeastConnections,
    )
    .unwrap();
    let in_flight = |name: &str| {
        let snapshot = proxy.backends().snapshot();
        snapshot.get(&name.to_string()).unwrap().load().in_flight()
    };
    // Two long connections land one on each server (the busy one is avoided).
    let mut long = Vec::new();
    for _ in 0..2 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"hold").await, b"hold");
        long.push(client);
    }
    assert_eq!((in_flight("s1"), in_flight("s2")), (1, 1));
    // s2 goes down: new clients all go to s1, whose count rises with them.
    proxy
        .backends()
        .set_health(&"s2".to_string(), Health::Down)
        .unwrap();
    for _ in 0..3 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"x").await, b"x");
        long.push(client);
    }
    assert_eq!((in_flight("s1"), in_flight("s2")), (4, 1));
    assert_eq!((echoes[0].accepted(), echoes[1].accepted()), (4, 1));
    drop(long);
    let start = Instant::now();
    while in_flight("s1") + in_flight("s2") > 0 {
        assert!(start.elapsed() < WAIT, "in-flight counts never dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.stats().current, 0);
}

#[tokio::test]
async fn listens_on_an_address_this_host_does_not_hold_ip_freebind() {
    // TEST-NET-1 (RFC 5737): never on this host. Nothing connects to it; only the bind is
    // checked, as when lbd starts before VRRP brings the VIP here.
    let echo = Echo::start().await;
    let mut settings = settings(&[("s", echo.addr)]);
    settings.bind = "192.0.2.123:0".parse().unwrap();
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    assert_eq!(proxy.local_addr().ip().to_string(), "192.0.2.123");
}
