//! The HTTP proxy (lbd `mode = "http"`) against real hyper servers on loopback: each
//! algorithm's distribution, cookie stickiness, `X-Forwarded-For` and hop-by-hop headers,
//! streamed bodies, retries and redispatch around a server killed under load, 502/503/504,
//! malformed and slow requests, HTTP/2 over TLS, TLS to a server, the https redirect and a
//! graceful drain.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lb_core::proxy::tls::ServerVerifier;
use lb_core::proxy::{HttpProxy, HttpSettings, ServerSettings, Timeouts};
use lb_core::{ConsistentHash, HashKey, Health, LeastConnections, RoundRobin};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const LOOPBACK: &str = "127.0.0.1:0";
const WAIT: Duration = Duration::from_secs(5);

/// What a backend saw of the requests it served.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    last_headers: Mutex<Option<HeaderMap>>,
}

/// A hyper server on loopback. `/` answers its name (header `x-backend` too); `/echo` streams
/// the request body back; `/hang` never answers; `/slow` answers after 300 ms; `/hop` answers
/// with hop-by-hop headers.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        Self::start_with(name, None).await
    }

    async fn start_with(name: &'static str, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind(LOOPBACK).await.expect("test setup");
        let addr = listener.local_addr().expect("test setup");
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            // Aborting this task drops the set, which aborts every connection: a crash.
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.expect("test setup");
                let seen = shared.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| answer(name, seen.clone(), request));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                    }
                });
            }
        });
        Backend {
            name,
            addr,
            seen,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    fn last_headers(&self) -> HeaderMap {
        self.seen
            .last_headers
            .lock()
            .expect("test setup")
            .clone()
            .expect("test setup")
    }

    fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

async fn answer(
    name: &'static str,
    seen: Arc<Seen>,
    request: Request<Incoming>,
) -> Result<Response<Answer>, Infallible> {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    *seen.last_headers.lock().expect("test setup") = Some(request.headers().clone());
    let full = |text: &'static str| {
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|e| match e {})
            .boxed()
    };
    let response = match request.uri().path() {
        "/echo" => Response::new(request.into_body().boxed()),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(full(""))
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Response::new(full(name))
        }
        "/hop" => Response::builder()
            .header("connection", "x-private")
            .header("x-private", "secret")
            .header("keep-alive", "timeout=5")
            .header("x-public", "yes")
            .body(full(name))
            .expect("test setup"),
        _ => Response::new(full(name)),
    };
    let mut response = response;
    response
        .headers_mut()
        .insert("x-backend", name.parse().expect("test setup"));
    Ok(response)
}

fn settings(backends: &[&Backend]) -> HttpSettings {
    let servers = backends
        .iter()
        .map(|b| ServerSettings::new(b.name, b.addr))
        .collect();
    let mut settings = HttpSettings::new("web", LOOPBACK.parse().expect("test setup"), servers);
    settings.listen.timeouts = Timeouts::new(Duration::from_secs(1), Duration::from_secs(10));
    settings.listen.timeouts.server = Duration::from_secs(2);
    settings.listen.timeouts.queue = Duration::from_secs(2);
    settings.listen.retry_delay = Duration::from_millis(10);
    settings
}

/// Three backends, s1 to s3, and the settings that balance over them.
async fn three_backends() -> ([Backend; 3], HttpSettings) {
    let b = [
        Backend::start("s1").await,
        Backend::start("s2").await,
        Backend::start("s3").await,
    ];
    let settings = settings(&[&b[0], &b[1], &b[2]]);
    (b, settings)
}

/// A keep-alive HTTP/1.1 client connection.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("test setup");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("test setup");
        tokio::spawn(connection);
        Client { sender }
    }

    async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::get(path).header("host", "test.example");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Full::default()).expect("test setup"))
            .await
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, String) {
        self.sender.ready().await.expect("test setup");
        let response = tokio::time::timeout(WAIT, self.sender.send_request(request))
            .await
            .expect("a response in time")
            .expect("test setup");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("test setup").to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }
}

/// One request on a new connection.
async fn get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap, String) {
    Client::connect(addr).await.get(path, &[]).await
}

fn tally(names: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for name in names {
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn roundrobin_spreads_requests_of_one_keep_alive_client_evenly() {
    let (b, settings) = three_backends().await;
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    let mut names = Vec::new();
    for _ in 0..30 {
        let (status, headers, body) = client.get("/", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-backend"], body.as_str());
        names.push(body);
    }
    let counts = tally(names);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{counts:?}"
    );
    let stats = proxy.stats();
    assert_eq!((stats.total, stats.requests, stats.failed), (1, 30, 0));
    assert_eq!(stats.responses.success, 30);
    for server in &stats.servers {
        assert_eq!(
            (server.total, server.responses.success),
            (10, 10),
            "{server:?}"
        );
        assert_eq!(server.bytes_out, 20, "{server:?}");
        assert_eq!((server.current, server.max), (0, 1), "{server:?}");
    }
    // The server connections were reused: one per server.
    assert_eq!(b.iter().map(Backend::requests).sum::<usize>(), 30);
}

#[tokio::test]
async fn leastconn_avoids_the_server_busy_with_a_long_request() {
    let b = [Backend::start("s1").await, Backend::start("s2").await];
    let proxy = HttpProxy::start(settings(&[&b[0], &b[1]]), LeastConnections::new()).unwrap();
    let addr = proxy.local_addr();
    let slow = tokio::spawn(async move { get(addr, "/slow").await.2 });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut client = Client::connect(addr).await;
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(client.get("/", &[]).await.2);
    }
    let busy = slow.await.unwrap();
    assert!(names.iter().all(|n| *n != busy), "{busy} got {names:?}");
}

#[tokio::test]
async fn uri_hashing_sends_each_uri_to_one_server_and_source_hashing_one_client_to_one() {
    let (b, mut uri) = three_backends().await;
    uri.hash_key = Some(HashKey::Uri { whole: false });
    let proxy = HttpProxy::start(uri, ConsistentHash::new()).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    let mut by_uri = HashMap::new();
    for round in 0..3 {
        for i in 0..20 {
            let path = format!("/page/{i}?round={round}");
            let name = client.get(&path, &[]).await.2;
            let first = by_uri.entry(i).or_insert_with(|| name.clone());
            assert_eq!(*first, name, "uri {i} moved");
        }
    }
    let used = tally(by_uri.into_values());
    assert!(used.len() >= 2, "{used:?}");

    let mut source = settings(&[&b[0], &b[1], &b[2]]);
    source.hash_key = Some(HashKey::Source);
    let proxy = HttpProxy::start(source, ConsistentHash::new()).unwrap();
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(get(proxy.local_addr(), "/").await.2);
    }
    assert_eq!(tally(names).len(), 1, "one client address, one server");
}

#[tokio::test]
async fn cookie_insert_then_honour_then_fall_back_when_the_pinned_server_is_down() {
    let (b, mut settings) = three_backends().await;
    settings.cookie = Some("SERVERID".into());
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    // No cookie: balanced, and told where it went.
    let (_, headers, name) = client.get("/", &[]).await;
    assert_eq!(headers["set-cookie"], format!("SERVERID={name}; path=/"));
    assert_eq!(headers["cache-control"], "private");
    // With the cookie: always there, nothing set, and the server never sees it.
    for _ in 0..6 {
        let (_, headers, pinned) = client.get("/", &[("cookie", "lang=en; SERVERID=s2")]).await;
        assert_eq!(pinned, "s2");
        assert!(headers.get("set-cookie").is_none());
    }
    assert_eq!(b[1].last_headers()["cookie"], "lang=en");
    // s2 down: balanced elsewhere, with a new cookie.
    proxy
        .backends()
        .set_health(&"s2".to_string(), Health::Down)
        .unwrap();
    for _ in 0..4 {
        let (_, headers, name) = client.get("/", &[("cookie", "SERVERID=s2")]).await;
        assert_ne!(name, "s2");
        assert_eq!(headers["set-cookie"], format!("SERVERID={name}; path=/"));
    }
}

#[tokio::test]
async fn forwarded_for_is_appended_and_hop_by_hop_headers_removed_both_ways() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    let (status, headers, _) = client
        .get(
            "/hop",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("connection", "x-client-private"),
                ("x-client-private", "1"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let seen = b.last_headers();
    let xff: Vec<&str> = seen
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(xff, ["203.0.113.9", "127.0.0.1"]);
    for name in ["x-client-private", "te", "upgrade"] {
        assert!(!seen.contains_key(name), "{name} reached the server");
    }
    assert_eq!(seen["host"], "test.example");
    assert!(!headers.contains_key("x-private"), "{headers:?}");
    assert!(!headers.contains_key("keep-alive"), "{headers:?}");
    assert_eq!(headers["x-public"], "yes");
}

/// A request body fed chunk by chunk from a channel.
struct Chunks(mpsc::Receiver<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test]
async fn a_post_body_streams_through_both_ways_without_being_buffered() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Chunks>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let (chunks, receiver) = mpsc::channel(1);
    let request = Request::post("/echo")
        .header("host", "test.example")
        .body(Chunks(receiver))
        .unwrap();
    let sending = tokio::spawn(sender.send_request(request));
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    chunks.send(chunk.clone()).await.unwrap();
    // The response starts while the request is still being sent: each chunk comes back
    // before the next one is sent.
    let response = tokio::time::timeout(WAIT, sending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0;
    for i in 0..16 {
        let wanted = (i + 1) * chunk.len();
        while received < wanted {
            let frame = tokio::time::timeout(WAIT, body.frame())
                .await
                .expect("echoed before the next chunk is sent")
                .unwrap()
                .unwrap();
            received += frame.data_ref().map_or(0, Bytes::len);
        }
        if i < 15 {
            chunks.send(chunk.clone()).await.unwrap();
        }
    }
    drop(chunks);
    while let Some(frame) = body.frame().await {
        received += frame.unwrap().data_ref().map_or(0, Bytes::len);
    }
    assert_eq!(received, 16 * chunk.len());
    let stats = proxy.stats();
    let s1 = stats.server("s1").unwrap();
    assert_eq!((s1.bytes_in, s1.bytes_out), (16 * 65536, 16 * 65536));
}

#[tokio::test]
async fn a_server_killed_under_load_costs_no_client_an_error_with_redispatch() {
    let (b, mut settings) = three_backends().await;
    settings.listen.retries = 3;
    settings.listen.redispatch = true;
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let addr = proxy.local_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = JoinSet::new();
    for _ in 0..20 {
        let stop = stop.clone();
        clients.spawn(async move {
            let mut client = Client::connect(addr).await;
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                statuses.push(client.get("/", &[]).await.0);
            }
            statuses
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    b[1].kill();
    let killed_at = b[1].requests();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    while let Some(done) = clients.join_next().await {
        statuses.extend(done.unwrap());
    }
    let failed: Vec<&StatusCode> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert!(statuses.len() > 100, "{}", statuses.len());
    assert!(killed_at > 0);
    let stats = proxy.stats();
    assert!(stats.redispatches > 0, "{stats:?}");
    assert_eq!(stats.failed, 0);
}

#[tokio::test]
async fn a_hanging_server_gets_504_at_timeout_server_and_no_server_gets_503() {
    let b = Backend::start("s1").await;
    let mut settings = settings(&[&b]);
    settings.listen.timeouts.server = Duration::from_millis(400);
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let started = Instant::now();
    let (status, _, body) = get(proxy.local_addr(), "/hang").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.contains("504"), "{body}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(proxy.stats().server("s1").unwrap().response_errors, 1);
    // The proxy still serves.
    assert_eq!(get(proxy.local_addr(), "/").await.0, 200);
    proxy
        .backends()
        .set_health(&"s1".to_string(), Health::Down)
        .unwrap();
    let (status, _, body) = get(proxy.local_addr(), "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("503"), "{body}");
    let stats = proxy.stats();
    assert_eq!(
        (stats.responses.server_error, stats.responses.success),
        (2, 1)
    );
}

#[tokio::test]
async fn a_refusing_server_gets_502_after_the_retries() {
    let listener = TcpListener::bind(LOOPBACK).await.unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let servers = vec![ServerSettings::new("dead", dead)];
    let mut settings = HttpSettings::new("web", LOOPBACK.parse().unwrap(), servers);
    settings.listen.retry_delay = Duration::from_millis(10);
    settings.listen.retries = 2;
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let (status, _, _) = get(proxy.local_addr(), "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let stats = proxy.stats();
    assert_eq!(stats.server("dead").unwrap().connect_errors, 3);
    assert_eq!((stats.retries, stats.failed), (2, 1));
}

#[tokio::test]
async fn a_malformed_request_gets_400_and_the_proxy_keeps_serving() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let mut raw = TcpStream::connect(proxy.local_addr()).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert_eq!(get(proxy.local_addr(), "/").await.0, 200);
    assert_eq!(b.requests(), 1);
}

#[tokio::test]
async fn slow_request_headers_are_closed_at_timeout_http_request() {
    let b = Backend::start("s1").await;
    let mut settings = settings(&[&b]);
    settings.http_request = Duration::from_millis(500);
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let mut raw = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let started = Instant::now();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Trickles a header byte now and then, never finishing the head.
    let mut reply = Vec::new();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if raw.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let _ = tokio::time::timeout(WAIT, raw.read_to_end(&mut reply))
        .await
        .unwrap();
    let took = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Closed: writes fail or reads see EOF well before the trickle would have ended.
    let mut byte = [0; 1];
    let read = raw.read(&mut byte).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(b.requests(), 0);
}

/// The TLS test helpers of `lb_core::proxy::tls` (rcgen certificates), compiled in here
/// from the one file rather than copied.
#[path = "../src/proxy/tls/testing.rs"]
#[allow(dead_code)]
mod testing;

/// A CA and a certificate it signed for `localhost` and 127.0.0.1.
struct Pki {
    ca: testing::Ca,
    leaf: testing::Leaf,
}

fn pki() -> Pki {
    let ca = testing::Ca::new();
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    Pki { ca, leaf }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(pki: &Pki, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.der.clone()], pki.leaf.key_der())
        .expect("test setup");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

#[tokio::test]
async fn http2_over_tls_negotiated_by_alpn() {
    let b = Backend::start("s1").await;
    let pki = pki();
    let mut settings = settings(&[&b]);
    settings.listen.tls = Some(server_config(&pki, &[b"h2", b"http/1.1"]));
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    // Several requests at once on the one connection.
    let mut answers = JoinSet::new();
    for _ in 0..5 {
        let request = Request::get("https://localhost/")
            .body(Full::<Bytes>::default())
            .unwrap();
        let sending = sender.send_request(request);
        answers.spawn(async move {
            let response = sending.await.unwrap();
            assert_eq!(response.version(), Version::HTTP_2);
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap().to_bytes()
        });
    }
    while let Some(body) = answers.join_next().await {
        assert_eq!(body.unwrap(), "s1");
    }
    assert_eq!(b.last_headers()["host"], "localhost");
}

#[tokio::test]
async fn tls_to_a_server_with_verify_none() {
    let pki = pki();
    let acceptor = TlsAcceptor::from(server_config(&pki, &[b"http/1.1"]));
    let b = Backend::start_with("secure", Some(acceptor)).await;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::accept_any(provider())))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut settings = settings(&[&b]);
    settings.listen.servers[0].tls = Some(Arc::new(config));
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    for _ in 0..3 {
        assert_eq!(client.get("/", &[]).await.2, "secure");
    }
    assert_eq!(b.requests(), 3);
}

#[tokio::test]
async fn redirect_https_answers_301_without_servers() {
    let mut settings = HttpSettings::new("redirect", LOOPBACK.parse().unwrap(), Vec::new());
    settings.redirect_https = true;
    let proxy = HttpProxy::start(settings, RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    let (status, headers, _) = client.get("/login?next=%2Fhome", &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        headers["location"],
        "https://test.example/login?next=%2Fhome"
    );
    assert_eq!(proxy.stats().responses.redirection, 1);
}

#[tokio::test]
async fn drain_lets_the_request_in_flight_finish() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let addr = proxy.local_addr();
    // An idle keep-alive client too: it is closed at once by the drain.
    let _idle = Client::connect(addr).await;
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = proxy.drain(Duration::from_secs(5)).await;
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "s1"));
    assert_eq!((report.in_flight, report.closed), (2, 0));
    assert!(report.took < Duration::from_secs(2), "{report:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn close_connections_hands_clients_over_without_failing_a_request() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let addr = proxy.local_addr();
    let mut busy = Client::connect(addr).await;
    let mut idle = Client::connect(addr).await;
    let (_, headers, _) = busy.get("/", &[]).await;
    assert!(headers.get("connection").is_none(), "{headers:?}");
    idle.get("/", &[]).await;
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(proxy.open_connections(), 3);

    proxy.close_connections();
    // In use: its next response says close, and the connection closes after it.
    let (status, headers, _) = busy.get("/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["connection"], "close");
    // A new client is ignored: its SYN goes unanswered (it would send it again in a second).
    let late = tokio::spawn(async move { get(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late.is_finished(),
        "a new client was answered while closing"
    );
    // The slow request in flight finishes; the idle connection closes after 100 ms.
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "s1"));
    let report = proxy.wait_idle(Duration::from_secs(5)).await;
    assert_eq!(report.closed, 0, "{report:?}");
    assert_eq!(proxy.open_connections(), 0);
    assert!(idle.sender.is_closed() || idle.sender.ready().await.is_err());

    // Keep-alive again; the ignored client, trying again, is served.
    proxy.keep_connections();
    let (status, headers, _) = tokio::time::timeout(WAIT, late).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("connection").is_none(), "{headers:?}");
    let mut again = Client::connect(addr).await;
    let (_, headers, _) = again.get("/", &[]).await;
    assert!(headers.get("connection").is_none(), "{headers:?}");
    again.get("/", &[]).await;
}

#[tokio::test]
async fn wait_idle_reports_the_connections_left_at_the_deadline() {
    let b = Backend::start("s1").await;
    let proxy = HttpProxy::start(settings(&[&b]), RoundRobin).unwrap();
    let mut client = Client::connect(proxy.local_addr()).await;
    client.get("/", &[]).await;
    // Not closing: the idle keep-alive connection stays.
    let report = proxy.wait_idle(Duration::from_millis(50)).await;
    assert_eq!((report.in_flight, report.closed), (1, 1), "{report:?}");
    client.get("/", &[]).await;
}
