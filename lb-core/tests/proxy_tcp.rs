//! The TCP proxy (lbd `mode = "tcp"`) against real echo servers on loopback: round robin over
//! three servers, retries with redispatch around a refusing port, half-close, the idle
//! timeout, the global `maxconn`, a graceful drain, TLS termination and TLS to servers
//! (certificates made by rcgen).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lb_core::proxy::{ServerSettings, TcpProxy, TcpSettings, Timeouts};
use lb_core::{Health, LeastConnections, RoundRobin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const LOOPBACK: &str = "127.0.0.1:0";
const WAIT: Duration = Duration::from_secs(5);

/// A server on loopback that echoes every byte until the client's end, counting the
/// connections it accepted; behind TLS ([`start_tls`](Echo::start_tls)) it echoes the
/// decrypted bytes until the client's `close_notify`, then sends its own, and counts finished
/// handshakes.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Self {
        Echo::serve(None).await
    }

    async fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Echo::serve(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind(LOOPBACK)
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Some(acceptor) = tls.clone() else {
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(echo(stream));
                    continue;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    echo(stream).await;
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

/// Sends back what `stream` reads, then shuts its write side down.
async fn echo<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
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
    settings.timeouts = Timeouts::new(Duration::from_secs(1), Duration::from_secs(10));
    settings.timeouts.server = Duration::from_secs(10);
    settings.timeouts.queue = Duration::from_secs(2);
    settings.retry_delay = Duration::from_millis(10);
    settings
}

/// A client of `addr` that sent `message` and, `patience` later, still has no answer: it
/// waits for a slot (a full proxy or server).
async fn waiting_client(addr: SocketAddr, message: &[u8], patience: Duration) -> TcpStream {
    let mut client = TcpStream::connect(addr).await.expect("connects");
    client.write_all(message).await.expect("sent");
    let mut reply = vec![0; message.len()];
    let waited = tokio::time::timeout(patience, client.read_exact(&mut reply));
    assert!(waited.await.is_err(), "served beyond maxconn");
    client
}

/// Reads the echo of what a [`waiting_client`] sent, once a slot has been freed for it.
async fn served_at_last(client: &mut TcpStream, message: &[u8]) {
    let mut reply = vec![0; message.len()];
    tokio::time::timeout(WAIT, client.read_exact(&mut reply))
        .await
        .expect("served once a slot freed")
        .expect("the reply is read");
    assert_eq!(reply, message);
}

/// Sends `message` and checks that the same bytes come back.
async fn echoed<S>(stream: &mut S, message: &[u8])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    assert_eq!(exchange(stream, message, false).await, message);
}

/// An echo server, a proxy in front of it, and a client of the proxy that has had one
/// message echoed.
async fn proxied_client() -> (Echo, TcpProxy<RoundRobin>, TcpStream) {
    let echo = Echo::start().await;
    let proxy = TcpProxy::start(settings(&[("s", echo.addr)]), RoundRobin).expect("starts");
    let mut client = TcpStream::connect(proxy.local_addr())
        .await
        .expect("connects");
    echoed(&mut client, b"before").await;
    (echo, proxy, client)
}

/// Sends `request`, shuts down the write side (over TLS: `close_notify`) and reads until EOF.
async fn send_and_read_to_end<S>(stream: &mut S, request: &[u8]) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    exchange(stream, request, true).await
}

/// Sends `message`, then reads as many bytes back or, `to_end`, shuts down the write side
/// and reads until EOF.
async fn exchange<S>(stream: &mut S, message: &[u8], to_end: bool) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(message)
        .await
        .expect("the request is sent");
    let mut reply = Vec::new();
    let read = async {
        if to_end {
            stream.shutdown().await.expect("half-close");
            stream.read_to_end(&mut reply).await
        } else {
            reply.resize(message.len(), 0);
            stream.read_exact(&mut reply).await
        }
    };
    tokio::time::timeout(WAIT, read)
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
        echoed(&mut client, message.as_bytes()).await;
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
        echoed(&mut client, message.as_bytes()).await;
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
        echoed(&mut client, b"ping").await;
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
    echoed(&mut first, b"1").await;
    echoed(&mut second, b"2").await;
    // The third connects (the kernel's backlog takes it) but is not served.
    let mut third = waiting_client(proxy.local_addr(), b"3", Duration::from_millis(500)).await;
    assert_eq!(proxy.stats().current, 2);
    assert_eq!(echo.accepted(), 2);
    drop(first);
    served_at_last(&mut third, b"3").await;
    echoed(&mut second, b"still").await;
    assert_eq!(proxy.stats().total, 3);
}

#[tokio::test]
async fn server_maxconn_queues_the_next_client_until_a_slot_frees() {
    let echo = Echo::start().await;
    let mut settings = settings(&[("s", echo.addr)]);
    settings.servers[0].maxconn = Some(1);
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    echoed(&mut first, b"1").await;
    let mut second = waiting_client(proxy.local_addr(), b"2", Duration::from_millis(300)).await;
    assert_eq!(proxy.stats().server("s").unwrap().current, 1);
    drop(first);
    served_at_last(&mut second, b"2").await;
    assert_eq!(proxy.stats().failed, 0);
}

#[tokio::test]
async fn drain_lets_in_flight_finish_and_refuses_new_clients() {
    let (_echo, proxy, mut client) = proxied_client().await;
    let addr = proxy.local_addr();
    let drain = tokio::spawn(proxy.drain(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "accepted while draining");
    // The one in flight still works, then finishes on its own.
    echoed(&mut client, b"during").await;
    drop(client);
    let report = tokio::time::timeout(WAIT, drain).await.unwrap().unwrap();
    assert_eq!((report.in_flight, report.closed), (1, 0));
    assert!(report.took < Duration::from_secs(2), "{report:?}");
}

#[tokio::test]
async fn drain_closes_what_is_left_at_the_deadline() {
    let (_echo, proxy, mut client) = proxied_client().await;
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
        "proxy \"test\": two servers are named \"s\": give each server its own name"
    );
    duplicate.servers.clear();
    let error = TcpProxy::start(duplicate, RoundRobin).unwrap_err();
    assert!(error.to_string().contains("no servers"), "{error}");
}

#[tokio::test]
async fn leastconn_counts_each_connection_in_flight_while_it_lasts() {
    let echoes = [Echo::start().await, Echo::start().await];
    let proxy = TcpProxy::start(
        settings(&[("s1", echoes[0].addr), ("s2", echoes[1].addr)]),
        LeastConnections::new(),
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
        echoed(&mut client, b"hold").await;
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
        echoed(&mut client, b"x").await;
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

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key.
struct Cert {
    der: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn cert() -> Cert {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("test setup");
    Cert {
        der: made.cert.der().clone(),
        key: rustls::pki_types::PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()).into(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_server(cert: &Cert) -> Arc<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], cert.key.clone_key())
        .expect("test setup");
    Arc::new(config)
}

/// A client trusting only `cert`.
fn tls_client(cert: &Cert) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).expect("test setup");
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test]
async fn tls_termination_splices_the_decrypted_stream_with_half_close() {
    let echo = Echo::start().await;
    let cert = cert();
    let mut settings = settings(&[("s1", echo.addr)]);
    settings.tls = Some(tls_server(&cert));
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_client(&cert));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    for _ in 0..3 {
        let tcp = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        echoed(&mut tls, b"hello over TLS").await;
        // A bigger payload, then close_notify: the echo's whole answer, then its EOF.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        assert_eq!(send_and_read_to_end(&mut tls, &big).await, big);
    }
    assert_eq!(echo.accepted(), 3);
    let stats = proxy.stats();
    assert_eq!((stats.total, stats.failed), (3, 0));
    // Counted in plaintext: what the echo saw.
    assert_eq!(stats.servers[0].bytes_in, 3 * (14 + 200_000));
    assert_eq!(stats.servers[0].bytes_out, stats.servers[0].bytes_in);

    // A plain-TCP client cannot get through; one that never says hello is closed at the
    // handshake timeout (timeouts.connect, 1s here).
    let mut plain = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, plain.read(&mut byte))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        echo.accepted(),
        3,
        "no server connection for a failed handshake"
    );
}

#[tokio::test]
async fn tls_to_the_server_with_its_certificate_checked() {
    let cert = cert();
    let backend = Echo::start_tls(tls_server(&cert)).await;
    let mut settings = settings(&[("s1", backend.addr)]);
    settings.servers[0].tls = Some(tls_client(&cert));
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    for i in 0..3 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let message = format!("plain in, TLS out {i}");
        echoed(&mut client, message.as_bytes()).await;
        // The client's FIN becomes close_notify towards the server; its close_notify comes
        // back as a FIN.
        assert_eq!(send_and_read_to_end(&mut client, b"bye").await, b"bye");
    }
    assert_eq!(backend.accepted(), 3);

    // Both ends TLS at once.
    let mut settings = self::settings(&[("s1", backend.addr)]);
    settings.tls = Some(tls_server(&cert));
    settings.servers[0].tls = Some(tls_client(&cert));
    let both = TcpProxy::start(settings, RoundRobin).unwrap();
    let tcp = TcpStream::connect(both.local_addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(tls_client(&cert))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(
        send_and_read_to_end(&mut tls, b"TLS both ways").await,
        b"TLS both ways"
    );
}

#[tokio::test]
async fn a_server_whose_certificate_fails_verification_is_a_failed_connect_and_redispatched() {
    let backend = Echo::start_tls(tls_server(&cert())).await;
    let good_cert = cert();
    let good = Echo::start_tls(tls_server(&good_cert)).await;
    let mut settings = settings(&[("bad", backend.addr), ("good", good.addr)]);
    // Both trust only the good server's certificate.
    settings.servers[0].tls = Some(tls_client(&good_cert));
    settings.servers[1].tls = Some(tls_client(&good_cert));
    settings.retries = 1;
    let proxy = TcpProxy::start(settings, RoundRobin).unwrap();
    for _ in 0..4 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(send_and_read_to_end(&mut client, b"ping").await, b"ping");
    }
    let stats = proxy.stats();
    assert_eq!(stats.failed, 0);
    assert!(stats.servers[0].connect_errors >= 1, "{stats:?}");
    assert_eq!(backend.accepted(), 0);
    assert_eq!(good.accepted(), 4);
}

#[tokio::test]
async fn close_connections_ignores_new_clients_and_lets_open_ones_run() {
    let (_echo, proxy, mut open) = proxied_client().await;
    let addr = proxy.local_addr();

    proxy.close_connections();
    let late = tokio::spawn(async move { TcpStream::connect(addr).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late.is_finished(),
        "a new client was answered while closing"
    );
    // The open connection runs on; wait_idle sees it until it ends.
    echoed(&mut open, b"pong").await;
    assert_eq!(proxy.wait_idle(Duration::from_millis(50)).await.closed, 1);
    drop(open);
    assert_eq!(proxy.wait_idle(WAIT).await.closed, 0);

    proxy.keep_connections();
    let mut late = tokio::time::timeout(WAIT, late)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    echoed(&mut late, b"again").await;
}
