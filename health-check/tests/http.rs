//! `HttpCheck` against real hyper servers on loopback: statuses, bodies (bounded reading),
//! what the server receives, servers that are gone, garbled or silent, and (feature `tls`)
//! HTTPS with certificates made here by rcgen.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use support::{at_once, fails, fails_saying, passes, serve_tcp};

use health_check::{Check, CheckError, HttpCheck, Monitor};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The size of `/big`, and where in it the word "needle" is (well past 16 KiB).
const BIG: usize = 1024 * 1024;
const NEEDLE_AT: usize = 512 * 1024;
/// `/endless` streams up to this many 16 KiB chunks (64 MiB) unless the client goes away.
const ENDLESS_CHUNKS: usize = 4096;

/// One request as the server received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Seen>>,
    /// The SNI of each TLS handshake (`None`: none sent).
    #[cfg(feature = "tls")]
    sni: Mutex<Vec<Option<String>>>,
    /// Chunks `/endless` has produced.
    endless_sent: AtomicUsize,
}

struct Server {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    fn last_request(&self) -> Seen {
        self.state
            .requests
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a request")
    }
}

/// A body of 16 KiB chunks that ends only after `ENDLESS_CHUNKS` of them.
struct Endless(Arc<State>);

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.endless_sent.fetch_add(1, Ordering::SeqCst) >= ENDLESS_CHUNKS {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[b'.'; 16384])))))
    }
}

fn full(body: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    state.requests.lock().expect("lock").push(Seen {
        method: request.method().to_string(),
        target: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
    });
    let (status, body) = match request.uri().path() {
        "/health" => (200, full("ok")),
        "/fail" => (500, full("boom")),
        "/redirect" => (302, full("")),
        "/no-content" => (204, full("")),
        "/body" => (200, full("status: degraded")),
        "/big" => {
            let mut big = vec![b'.'; BIG];
            big[NEEDLE_AT..NEEDLE_AT + 6].copy_from_slice(b"needle");
            (200, full(big))
        }
        "/endless" => (200, Endless(state.clone()).boxed()),
        "/hang" => std::future::pending().await,
        _ => (404, full("not found")),
    };
    let mut response = Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
    if status == 302 {
        response
            .headers_mut()
            .insert("location", "/health".parse().expect("a valid header"));
    }
    Ok(response)
}

async fn serve_connection<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, state.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A plain HTTP/1.1 hyper server on 127.0.0.1, running until the test ends.
async fn serve() -> Server {
    let state = Arc::new(State::default());
    let shared = state.clone();
    let addr = serve_tcp(move |tcp| serve_connection(tcp, shared.clone())).await;
    Server { addr, state }
}

/// Why a check of `path` on `addr` expecting `needle` in the body failed.
async fn body_error(addr: SocketAddr, path: &str, needle: &str) -> CheckError {
    fails(HttpCheck::new(addr).path(path).expect_body(needle)).await
}

#[tokio::test]
async fn status_200_passes_and_500_fails_naming_the_status() {
    let server = serve().await;
    let addr = server.addr;
    passes(HttpCheck::new(addr).path("/health"), "200 passes").await;
    let why = format!("HTTP 500 from {addr} GET /fail (expected 2xx/3xx)");
    let err = fails_saying(HttpCheck::new(addr).path("/fail"), &why).await;
    assert!(
        matches!(err, CheckError::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirect_passes_by_default_but_not_when_200_is_expected() {
    let server = serve().await;
    let check = HttpCheck::new(server.addr).path("/redirect");
    passes(check.clone(), "3xx passes by default").await;
    let why = format!("HTTP 302 from {} GET /redirect (expected 200)", server.addr);
    fails_saying(check.expect_status(200), &why).await;
}

#[tokio::test]
async fn status_ranges_and_sets() {
    let server = serve().await;
    let at = |path: &str| HttpCheck::new(server.addr).path(path);
    for (check, what) in [
        (
            at("/no-content").expect_status_range(200..=299),
            "204 in 200..=299",
        ),
        (
            at("/redirect").expect_status_range(300..400),
            "302 in 300..400",
        ),
        (
            at("/no-content").expect_statuses([200, 204]),
            "204 in {200, 204}",
        ),
        (at("/nowhere").expect_statuses([404]), "an expected 404"),
    ] {
        passes(check, what).await;
    }
    let err = fails(at("/redirect").expect_status_range(200..300)).await;
    assert!(err.to_string().contains("(expected 2xx)"), "{err}");
    let why = format!("HTTP 500 from {} GET /fail (expected 200/204)", server.addr);
    fails_saying(at("/fail").expect_statuses([200, 204]), &why).await;
}

#[tokio::test]
async fn body_substring_present_and_absent() {
    let server = serve().await;
    let addr = server.addr;
    passes(
        HttpCheck::new(addr).path("/health").expect_body("ok"),
        "\"ok\" in \"ok\"",
    )
    .await;
    passes(
        HttpCheck::new(addr).path("/body").expect_body("degraded"),
        "\"degraded\" in \"status: degraded\"",
    )
    .await;
    let why = format!(r#"body of {addr} GET /body lacks "ok" (searched all 16 bytes)"#);
    fails_saying(HttpCheck::new(addr).path("/body").expect_body("ok"), &why).await;
    // A body of exactly the limit was searched whole; a longer one only in part.
    let lacks = |limit: usize| {
        HttpCheck::new(addr)
            .path("/body")
            .expect_body("ok")
            .body_limit(limit)
    };
    let err = fails(lacks(16)).await;
    assert!(
        err.to_string().ends_with("(searched all 16 bytes)"),
        "{err}"
    );
    let err = fails(lacks(10)).await;
    assert!(
        err.to_string()
            .ends_with("(searched only the first 10 bytes, the limit)"),
        "{err}"
    );
    // The status is judged first.
    let err = body_error(addr, "/fail", "boom").await;
    assert!(matches!(err, CheckError::HttpStatus { .. }), "{err:?}");
}

/// How much of the body a failed body check searched, and whether it reached the limit.
fn searched(err: &CheckError) -> Option<(usize, bool)> {
    match err {
        CheckError::HttpBody {
            searched,
            limit_reached,
            ..
        } => Some((*searched, *limit_reached)),
        _ => None,
    }
}

#[tokio::test]
async fn long_bodies_are_searched_only_up_to_the_limit() {
    let server = serve().await;
    let addr = server.addr;
    let err = body_error(addr, "/big", "needle").await;
    assert_eq!(searched(&err), Some((16384, true)), "{err:?}");
    assert!(
        err.to_string()
            .ends_with(r#"lacks "needle" (searched only the first 16384 bytes, the limit)"#),
        "{err}"
    );
    // The needle is there: a limit past it finds it.
    passes(
        HttpCheck::new(addr)
            .path("/big")
            .expect_body("needle")
            .body_limit(BIG),
        "found within 1 MiB",
    )
    .await;

    // A 64 MiB body: the check stops at the limit and hangs up; the server produces little of it.
    let started = std::time::Instant::now();
    let err = body_error(addr, "/endless", "needle").await;
    assert_eq!(searched(&err).map(|(n, _)| n), Some(16384), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = server.state.endless_sent.load(Ordering::SeqCst);
    assert!(
        sent < ENDLESS_CHUNKS / 2,
        "the server produced {sent} of {ENDLESS_CHUNKS} chunks after the check hung up"
    );
}

#[tokio::test]
async fn method_host_path_and_headers_reach_the_server_as_configured() {
    let server = serve().await;
    let addr = server.addr;

    // Defaults: GET /, Host the address, closing, our User-Agent.
    let err = fails(HttpCheck::new(addr)).await;
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    let seen = server.last_request();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/");
    assert_eq!(seen.header("host"), Some(addr.to_string().as_str()));
    assert_eq!(seen.header("connection"), Some("close"));
    assert_eq!(
        seen.header("user-agent"),
        Some(concat!("health-check/", env!("CARGO_PKG_VERSION")))
    );

    passes(
        HttpCheck::new(addr)
            .method("OPTIONS")
            .path("/health?full=1")
            .host("app.example.com:8080")
            .header("X-Probe", "ha"),
        "OPTIONS /health answers 200",
    )
    .await;
    let seen = server.last_request();
    assert_eq!(seen.method, "OPTIONS");
    assert_eq!(seen.target, "/health?full=1");
    assert_eq!(seen.header("host"), Some("app.example.com:8080"));
    assert_eq!(seen.header("x-probe"), Some("ha"));

    // `OPTIONS *`, HAProxy-style, reaches the server as such.
    let why = format!("HTTP 404 from {addr} OPTIONS * (expected 2xx/3xx)");
    fails_saying(HttpCheck::new(addr).method("OPTIONS").path("*"), &why).await;
    let seen = server.last_request();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("OPTIONS", "*")
    );

    // HEAD: a status, no body.
    passes(
        HttpCheck::new(addr)
            .method("HEAD")
            .path("/health")
            .expect_status(200),
        "HEAD /health",
    )
    .await;
    assert_eq!(server.last_request().method, "HEAD");
    assert_eq!(server.state.requests.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn describe_names_method_and_url() {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(
        HttpCheck::new(addr).path("/health").describe(),
        "http GET http://127.0.0.1:8080/health"
    );
    assert_eq!(
        HttpCheck::new(addr)
            .method("HEAD")
            .host("app.example.com")
            .describe(),
        "http HEAD http://127.0.0.1:8080/ (Host: app.example.com)"
    );
}

#[tokio::test]
async fn a_reply_that_is_not_http_fails_without_panicking() {
    let addr = serve_tcp(async |mut sock| {
        let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    })
    .await;
    let err = fails(HttpCheck::new(addr)).await;
    assert!(matches!(err, CheckError::Http { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("{addr} GET /: ")),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_goes_down_at_the_monitor_timeout() {
    let server = serve().await;
    let check = HttpCheck::new(server.addr).path("/hang");
    let config = at_once(Duration::from_millis(50))
        .timeout(Duration::from_millis(200))
        .fall(1);
    let started = std::time::Instant::now();
    let monitor = Monitor::spawn(Arc::new(check), config).expect("valid config");
    let s = support::down(&monitor).await;
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer within 200ms"),
        "{s:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.last_request().target, "/hang");
}

#[tokio::test]
async fn its_own_timeout_bounds_a_direct_call() {
    let server = serve().await;
    let started = std::time::Instant::now();
    let err = fails(
        HttpCheck::new(server.addr)
            .path("/hang")
            .timeout(Duration::from_millis(100)),
    )
    .await;
    assert!(matches!(err, CheckError::Timeout { .. }), "{err:?}");
    assert_eq!(err.to_string(), "no answer within 100ms");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// The TLS test helpers of `lb_core::proxy::tls` (rcgen certificates), compiled in here
/// from the one file rather than copied.
#[cfg(feature = "tls")]
#[path = "../../lb-core/src/proxy/tls/testing.rs"]
#[allow(dead_code)]
mod tls_testing;

#[cfg(feature = "tls")]
mod https {
    //! HTTPS: a CA and server certificates made by rcgen, a tokio-rustls + hyper server.

    use std::sync::Arc;

    use health_check::{Check, CheckError, HttpCheck, Tls};
    use tokio_rustls::TlsAcceptor;

    use super::tls_testing::{Ca, Leaf};
    use super::{Server, State, serve, serve_connection};
    use super::{fails, passes, serve_tcp};

    /// A CA, and a server certificate it signed for `localhost` and 127.0.0.1.
    struct Pki {
        ca: Ca,
        leaf: Leaf,
    }

    fn pki() -> Pki {
        let ca = Ca::new();
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        Pki { ca, leaf }
    }

    /// An HTTPS server with this PKI's certificate, recording the SNI of each handshake.
    async fn serve_tls(pki: &Pki) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![pki.leaf.der.clone()], pki.leaf.key_der())
            .expect("server certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let state = Arc::new(State::default());
        let shared = state.clone();
        let addr = serve_tcp(move |tcp| {
            let (acceptor, state) = (acceptor.clone(), shared.clone());
            async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                state.sni.lock().expect("lock").push(sni);
                serve_connection(tls, state).await;
            }
        })
        .await;
        Server { addr, state }
    }

    fn last_sni(server: &Server) -> Option<String> {
        server
            .state
            .sni
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a handshake")
    }

    #[tokio::test]
    async fn verified_against_the_right_ca_passes() {
        let pki = pki();
        let server = serve_tls(&pki).await;
        let tls = Tls::ca_pem(&pki.ca.pem).unwrap();

        // Default name: the Host header's, here the address: verified as an IP, no SNI.
        let check = HttpCheck::new(server.addr)
            .path("/health")
            .expect_body("ok")
            .tls(tls.clone());
        assert_eq!(
            check.describe(),
            format!("http GET https://{}/health", server.addr)
        );
        passes(check, "verified by IP").await;
        assert_eq!(last_sni(&server), None);

        // A DNS name in the Host header becomes the SNI.
        HttpCheck::new(server.addr)
            .path("/health")
            .host(format!("localhost:{}", server.addr.port()))
            .tls(tls)
            .check()
            .await
            .expect("verified as localhost");
        assert_eq!(last_sni(&server).as_deref(), Some("localhost"));
        assert_eq!(
            server.last_request().header("host"),
            Some(format!("localhost:{}", server.addr.port()).as_str())
        );

        // The same CA from a file.
        let path = std::env::temp_dir().join(format!("hc-ca-{}.pem", std::process::id()));
        std::fs::write(&path, &pki.ca.pem).unwrap();
        let from_file = Tls::ca_file(&path);
        let _ = std::fs::remove_file(&path);
        passes(
            HttpCheck::new(server.addr)
                .tls(from_file.unwrap().server_name("localhost"))
                .path("/health"),
            "CA from a file",
        )
        .await;

        // HTTPS statuses are judged like HTTP ones.
        let err = fails(
            HttpCheck::new(server.addr)
                .path("/fail")
                .tls(Tls::ca_pem(&pki.ca.pem).unwrap()),
        )
        .await;
        assert!(
            matches!(err, CheckError::HttpStatus { status: 500, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_different_ca_fails_with_a_certificate_error() {
        let server = serve_tls(&pki()).await;
        let other = pki();
        let err = fails(HttpCheck::new(server.addr).tls(Tls::ca_pem(&other.ca.pem).unwrap())).await;
        assert!(matches!(err, CheckError::Tls { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("TLS handshake with {} failed: ", server.addr)),
            "{text}"
        );
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
        assert!(server.state.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn verify_none_accepts_any_certificate_but_still_handshakes() {
        let server = serve_tls(&pki()).await; // a CA the check knows nothing of
        let check = HttpCheck::new(server.addr)
            .path("/health")
            .tls(Tls::verify_none().unwrap().server_name("wrong.example"));
        assert_eq!(
            check.describe(),
            format!("http GET https://{}/health (verify none)", server.addr)
        );
        passes(check, "verify none").await;
        assert_eq!(last_sni(&server).as_deref(), Some("wrong.example"));

        // A server that does not speak TLS fails the handshake.
        let plain = serve().await;
        let err = fails(HttpCheck::new(plain.addr).tls(Tls::verify_none().unwrap())).await;
        assert!(matches!(err, CheckError::Tls { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_name_mismatch_fails() {
        let pki = pki();
        let server = serve_tls(&pki).await;
        let tls = Tls::ca_pem(&pki.ca.pem).unwrap();
        let err =
            fails(HttpCheck::new(server.addr).tls(tls.clone().server_name("other.example"))).await;
        assert!(matches!(err, CheckError::Tls { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(r#"certificate not valid for name "other.example""#),
            "{err}"
        );

        // The default name follows the Host header.
        let err = fails(
            HttpCheck::new(server.addr)
                .host("other.example")
                .tls(tls.clone()),
        )
        .await;
        assert!(err.to_string().contains("other.example"), "{err}");

        let err = fails(HttpCheck::new(server.addr).tls(tls.server_name("not a name"))).await;
        assert!(
            err.to_string()
                .contains(r#"invalid server name "not a name""#),
            "{err}"
        );
    }
}
