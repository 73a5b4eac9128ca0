//! The `lbd` binary on the shipped TLS configurations (moved to free loopback ports, their
//! certificate paths replaced by files the test makes with rcgen), with real TLS clients and
//! real backends: `https_termination` (the 301 to https, TLS termination with round robin,
//! cookie stickiness and checks, ALPN h2), `https_sni` (the certificate chosen by SNI, TLS to
//! the servers trusted through an internal CA) and `tls_servers` (a server failing
//! `verify = "required"` is marked down naming the certificate problem, the `verify = "none"`
//! one serves).

mod lbdlab;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lb_core::proxy::tls::ServerVerifier;
use lbdlab::{Backend, Client, Lbd, Ports, TempDir, free_addr};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Checks run every 2s with fall 3 in the shipped files: a server is down within ~8s.
const DOWN_WITHIN: Duration = Duration::from_secs(15);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test CA.
struct Ca {
    der: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key.
struct Leaf {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

impl Leaf {
    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }

    /// A rustls server configuration holding only this certificate.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("test setup")
            .with_no_client_auth()
            .with_single_cert(vec![self.der.clone()], self.key_der())
            .expect("test setup");
        Arc::new(config)
    }
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("test setup");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("test setup");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("test setup");
        Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("test setup");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .expect("test setup")
            .signed_by(&key, &self.issuer)
            .expect("test setup");
        Leaf {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }

    /// A client trusting this CA, offering `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("test setup");
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("test setup")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// Writes `leaf` as `NAME.pem` and `NAME.key` into `dir`.
fn write_leaf(dir: &TempDir, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.0.join(format!("{name}.pem")),
        dir.0.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &leaf.pem).expect("test setup");
    std::fs::write(&key, leaf.key.serialize_pem()).expect("test setup");
    (cert, key)
}

/// `text` with each `from` replaced by `to`, every `from` present.
fn replaced(mut text: String, moves: &[(&str, String)]) -> String {
    for (from, to) in moves {
        assert!(text.contains(from), "the config has no {from}");
        text = text.replace(from, to);
    }
    text
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connects to lbd");
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake with lbd")
}

fn tally(answers: &[String]) -> HashMap<String, usize> {
    let mut t = HashMap::new();
    for a in answers {
        *t.entry(a.clone()).or_default() += 1;
    }
    t
}

/// One GET over HTTP/2 on `tls` (which negotiated h2): status and body.
async fn h2_get(tls: TlsStream<TcpStream>, uri: &str) -> (u16, String) {
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    let request = http::Request::get(uri)
        .body(Empty::<Bytes>::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("an answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_termination_redirects_plain_http_and_serves_tls_with_cookie_checks_and_h2() {
    let ports = Ports::new();
    let https = free_addr();
    let dir = TempDir::new("lbd-https");
    let ca = Ca::new("lbd test CA");
    let (cert, key) = write_leaf(&dir, "site", &ca.leaf(&["site.example.com"]));
    let config = replaced(
        ports.config("https_termination"),
        &[
            ("127.0.0.1:18443", https.to_string()),
            ("/etc/ha/site.pem", cert.display().to_string()),
            ("/etc/ha/site.key", key.display().to_string()),
        ],
    );
    let mut servers = Vec::new();
    for (i, addr) in ports.servers.iter().enumerate() {
        servers.push(Backend::start(&format!("s{}", i + 1), *addr).await);
    }
    let lbd = Lbd::start(&config);

    // Plain HTTP: a 301 to the same URL over https, no server asked.
    let mut plain = TcpStream::connect(ports.listen).await.expect("connects");
    let (status, headers, _) = Client::default()
        .request(&mut plain, "/login?next=%2Fhome", &[])
        .await
        .expect("an answer");
    assert_eq!(status, 301);
    assert_eq!(headers["location"], "https://test/login?next=%2Fhome");

    // TLS, HTTP/1.1 keep-alive: round robin over the three, a cookie inserted each time.
    let connector = ca.client(&[b"http/1.1"]);
    let mut tls = tls_connect(&connector, https, "site.example.com").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut client = Client::default();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (status, headers, body) = client.request(&mut tls, "/", &[]).await.expect("an answer");
        assert_eq!(status, 200);
        let cookie = headers.get("set-cookie").expect("SERVERID inserted");
        assert!(cookie.starts_with(&format!("SERVERID={body}")), "{cookie}");
        answers.push(body);
    }
    let t = tally(&answers);
    for s in &servers {
        assert_eq!(t.get(&s.name), Some(&2), "{t:?}");
    }
    // The cookie pins: every request with SERVERID=s2 goes to s2, each on a new connection.
    for _ in 0..4 {
        let mut tls = tls_connect(&connector, https, "site.example.com").await;
        let body = Client::default()
            .get(&mut tls, "/", &[("Cookie", "SERVERID=s2")])
            .await
            .expect("an answer");
        assert_eq!(body, "s2");
    }

    // ALPN h2 offered: negotiated, and a request over HTTP/2 is answered by a backend.
    let h2 = ca.client(&[b"h2", b"http/1.1"]);
    let tls = tls_connect(&h2, https, "site.example.com").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = h2_get(tls, "https://site.example.com/").await;
    assert_eq!(status, 200);
    assert!(["s1", "s2", "s3"].contains(&body.as_str()), "{body}");

    // The check: s3's /health turns 503, it is marked down and gets nothing more.
    servers[2].set_healthy(false);
    let s3 = ("https", "s3", ports.servers[2]);
    let down = lbd.marked(s3, "down", DOWN_WITHIN).await;
    assert!(down.contains("503"), "{down}");
    let before = servers[2].requests();
    let mut tls = tls_connect(&connector, https, "site.example.com").await;
    for _ in 0..6 {
        let body = client_get(&mut tls).await;
        assert_ne!(body, "s3");
    }
    assert_eq!(servers[2].requests(), before);
}

async fn client_get(tls: &mut TlsStream<TcpStream>) -> String {
    Client::default()
        .get(tls, "/", &[])
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sni_picks_the_certificate_by_name_and_reaches_tls_servers_through_the_internal_ca() {
    let https = free_addr();
    let backends = [free_addr(), free_addr()];
    let dir = TempDir::new("lbd-sni");
    let public = Ca::new("lbd test public CA");
    let site = public.leaf(&["site.example.com"]);
    let api = public.leaf(&["api.example.com"]);
    let wildcard = public.leaf(&["*.apps.example.com"]);
    let internal = Ca::new("lbd test internal CA");
    let ca_file = dir.0.join("internal-ca.pem");
    std::fs::write(&ca_file, &internal.pem).expect("test setup");
    let mut moves = vec![
        ("127.0.0.1:18443", https.to_string()),
        ("127.0.0.1:18441", backends[0].to_string()),
        ("127.0.0.1:18442", backends[1].to_string()),
        ("/etc/ha/internal-ca.pem", ca_file.display().to_string()),
    ];
    let mut files = Vec::new();
    for (name, leaf) in [("site", &site), ("api", &api), ("wildcard", &wildcard)] {
        let (cert, key) = write_leaf(&dir, name, leaf);
        files.push((format!("/etc/ha/{name}.pem"), cert.display().to_string()));
        files.push((format!("/etc/ha/{name}.key"), key.display().to_string()));
    }
    moves.extend(files.iter().map(|(a, b)| (a.as_str(), b.clone())));
    let config = replaced(lbdlab::shipped("https_sni", &[]), &moves);
    // The servers hold certificates of the internal CA (for their IP address).
    let s1 = Backend::start_tls(
        "s1",
        backends[0],
        internal.leaf(&["127.0.0.1"]).server_config(),
    )
    .await;
    let s2 = Backend::start_tls(
        "s2",
        backends[1],
        internal.leaf(&["127.0.0.1"]).server_config(),
    )
    .await;
    let lbd = Lbd::start(&config);

    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::accept_any(provider())))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let any = TlsConnector::from(Arc::new(config));
    let mut answers = Vec::new();
    for (name, want) in [
        ("api.example.com", &api),
        ("web.apps.example.com", &wildcard),
        ("site.example.com", &site),
        ("unknown.example.org", &site),
        // An IP address: no SNI at all, the default.
        ("127.0.0.1", &site),
    ] {
        let mut tls = tls_connect(&any, https, name).await;
        let got = &tls.get_ref().1.peer_certificates().expect("a certificate")[0];
        assert!(got == &want.der, "{name}: lbd showed another certificate");
        for _ in 0..2 {
            answers.push(client_get(&mut tls).await);
        }
    }
    // Through the servers' TLS, checked against the internal CA, alternately.
    let t = tally(&answers);
    assert_eq!((t.get("s1"), t.get("s2")), (Some(&5), Some(&5)), "{t:?}");
    assert_eq!((s1.requests(), s2.requests()), (5, 5));

    // ALPN h2 through a verifying client.
    let tls = tls_connect(&public.client(&[b"h2"]), https, "api.example.com").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = h2_get(tls, "https://api.example.com/").await;
    assert_eq!((status, body.starts_with('s')), (200, true), "{body}");
    // The TLS checks pass: nobody went down.
    assert!(
        !lbd.log().iter().any(|l| l.contains("marked down")),
        "{:?}",
        lbd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_servers_a_server_failing_verify_required_is_marked_down_and_verify_none_serves() {
    let ports = Ports::new();
    let backends = [free_addr(), free_addr()];
    let config = replaced(
        ports.config("tls_servers"),
        &[
            ("127.0.0.1:18441", backends[0].to_string()),
            ("127.0.0.1:18442", backends[1].to_string()),
        ],
    );
    // Self-signed, as lab servers are: the system's CAs do not know them.
    let lab = Ca::new("lbd test lab CA");
    let s1 = Backend::start_tls("s1", backends[0], lab.leaf(&["127.0.0.1"]).server_config()).await;
    let s2 = Backend::start_tls("s2", backends[1], lab.leaf(&["127.0.0.1"]).server_config()).await;
    let lbd = Lbd::start(&config);

    let down = lbd
        .marked(("tls_servers", "s1", backends[0]), "down", DOWN_WITHIN)
        .await;
    assert!(down.to_lowercase().contains("certificate"), "{down}");
    for _ in 0..6 {
        let mut stream = TcpStream::connect(ports.listen).await.expect("connects");
        let body = Client::default()
            .get(&mut stream, "/", &[])
            .await
            .expect("an answer");
        assert_eq!(body, "s2");
    }
    assert_eq!(s1.requests(), 0, "s1 never got past the handshake");
    assert_eq!(s2.requests(), 6);
    assert!(
        !lbd.log()
            .iter()
            .any(|l| l.contains("server s2") && l.contains("marked down")),
        "{:?}",
        lbd.log()
    );
}
