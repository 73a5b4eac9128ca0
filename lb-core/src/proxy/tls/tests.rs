//! Real handshakes on loopback with rcgen certificates: SNI, ALPN, versions, verification,
//! key formats, and every error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::testing::{Ca, Files, HttpsServer, Leaf, RSA_PKCS8_PEM, pem, pkcs8_inner};
use super::*;

/// What the client saw of a handshake.
#[derive(Debug)]
struct Seen {
    cert: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
}

/// The certificate `server` presents to a client that accepts any, asking for `name`
/// (`what` names the handshake if it fails).
async fn cert_seen(server: &HttpsServer, name: &str, what: &str) -> CertificateDer<'static> {
    handshake(server, any_cert_client(VERSIONS, &[]), name)
        .await
        .expect(what)
        .cert
}

async fn handshake(
    server: &HttpsServer,
    client: Arc<ClientConfig>,
    name: &str,
) -> Result<Seen, std::io::Error> {
    let tcp = TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    let tls = TlsConnector::from(client).connect(name, tcp).await?;
    let conn = tls.get_ref().1;
    Ok(Seen {
        cert: conn.peer_certificates().expect("a certificate")[0].clone(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        version: conn.protocol_version(),
    })
}

/// A client that accepts any certificate, with these versions and ALPN protocols.
fn any_cert_client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::accept_any(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn pairs(files: &[(PathBuf, PathBuf)]) -> impl Iterator<Item = (&Path, &Path)> {
    files.iter().map(|(c, k)| (c.as_path(), k.as_path()))
}

async fn server(files: &[(PathBuf, PathBuf)], alpn: Alpn) -> HttpsServer {
    HttpsServer::start(server_config(pairs(files), alpn).expect("a server config")).await
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_unknown_names_get_the_first() {
    let dir = Files::new();
    let default = Leaf::self_signed(&["www.example.test"]);
    let api = Leaf::self_signed(&["api.example.test", "api2.example.test"]);
    let wild = Leaf::self_signed(&["*.apps.example.test"]);
    let files = [
        dir.leaf("default", &default),
        dir.leaf("api", &api),
        dir.leaf("wild", &wild),
    ];
    let s = server(&files, Alpn::Http).await;
    let client = any_cert_client(VERSIONS, &[]);
    for (name, want) in [
        ("api.example.test", &api),
        ("api2.example.test", &api),
        ("API.Example.Test", &api),
        ("shop.apps.example.test", &wild),
        ("www.example.test", &default),
        // A wildcard covers one label only.
        ("a.b.apps.example.test", &default),
        ("apps.example.test", &default),
        ("unknown.test", &default),
        // An IP address: no SNI is sent.
        ("127.0.0.1", &default),
    ] {
        let seen = handshake(&s, Arc::clone(&client), name).await.expect(name);
        assert_eq!(seen.cert, want.der, "{name}");
    }
}

#[tokio::test]
async fn the_first_of_two_certificates_for_a_name_wins() {
    let dir = Files::new();
    let a = Leaf::self_signed(&["same.test"]);
    let b = Leaf::self_signed(&["same.test"]);
    let s = server(&[dir.leaf("a", &a), dir.leaf("b", &b)], Alpn::Http).await;
    assert_eq!(cert_seen(&s, "same.test", "handshake").await, a.der);
}

#[tokio::test]
async fn alpn_offers_h2_then_http1_or_nothing() {
    let (_dir, files) = Files::site();
    let http = server(&files, Alpn::Http).await;
    for (offer, want) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Some(&b"h2"[..])),
        (&[b"http/1.1", b"h2"], Some(b"h2")),
        (&[b"http/1.1"], Some(b"http/1.1")),
        (&[], None),
    ] {
        let seen = handshake(&http, any_cert_client(VERSIONS, offer), "site.test")
            .await
            .expect("handshake");
        assert_eq!(seen.alpn.as_deref(), want, "offered {offer:?}");
    }
    // A client offering only protocols the server lacks is refused (RFC 7301).
    let err = handshake(&http, any_cert_client(VERSIONS, &[b"spdy/3"]), "site.test")
        .await
        .expect_err("no common protocol");
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");

    let h1 = server(&files, Alpn::Http1).await;
    let seen = handshake(
        &h1,
        any_cert_client(VERSIONS, &[b"h2", b"http/1.1"]),
        "site.test",
    )
    .await
    .expect("handshake");
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));

    let tcp = server(&files, Alpn::None).await;
    let seen = handshake(&tcp, any_cert_client(VERSIONS, &[b"h2"]), "site.test")
        .await
        .expect("handshake");
    assert_eq!(seen.alpn, None);
}

#[tokio::test]
async fn tls12_only_and_tls13_only_clients_both_connect() {
    let (_dir, files) = Files::site();
    let s = server(&files, Alpn::Http).await;
    for (version, want) in [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let seen = handshake(&s, any_cert_client(&[version], &[b"h2"]), "site.test")
            .await
            .expect("handshake");
        assert_eq!(seen.version, Some(want));
        assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    }
}

#[tokio::test]
async fn every_key_format_and_a_combined_file_work() {
    let dir = Files::new();
    let ec = Leaf::self_signed(&["ec.test"]);
    let rsa = Leaf::self_signed_with(
        &["rsa.test"],
        KeyPair::from_pem(RSA_PKCS8_PEM).expect("the RSA key"),
    );
    let ed = Leaf::self_signed_with(
        &["ed.test"],
        KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key"),
    );
    let sec1 = pem("EC PRIVATE KEY", &pkcs8_inner(&ec.key.serialize_der()));
    let pkcs1 = pem("RSA PRIVATE KEY", &pkcs8_inner(&rsa.key.serialize_der()));
    assert!(
        sec1.starts_with("-----BEGIN EC PRIVATE KEY-----\nMGsCAQEE"),
        "{sec1}"
    );
    assert!(
        pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----\nMIIE"),
        "{pkcs1}"
    );
    let cases = [
        ("ec pkcs8", &ec, ec.key.serialize_pem()),
        ("ec sec1", &ec, sec1),
        ("rsa pkcs8", &rsa, rsa.key.serialize_pem()),
        ("rsa pkcs1", &rsa, pkcs1),
        ("ed25519 pkcs8", &ed, ed.key.serialize_pem()),
    ];
    for (what, leaf, key) in cases {
        let files = [(
            dir.write("cert.pem", &leaf.cert_pem),
            dir.write("cert.key", &key),
        )];
        let s = server(&files, Alpn::Http).await;
        assert_eq!(cert_seen(&s, "x.test", what).await, leaf.der, "{what}");
    }
    // HAProxy's habit: certificate and key in one file.
    let both = dir.write(
        "both.pem",
        &format!("{}{}", ec.cert_pem, ec.key.serialize_pem()),
    );
    let s = server(&[(both.clone(), both)], Alpn::Http).await;
    assert_eq!(cert_seen(&s, "ec.test", "combined file").await, ec.der);
}

#[tokio::test]
async fn a_chain_is_sent_whole() {
    let dir = Files::new();
    let ca = Ca::new();
    let leaf = ca.leaf(&["chain.test"]);
    let chain = dir.write("chain.pem", &format!("{}{}", leaf.cert_pem, ca.pem));
    let key = dir.write("chain.key", &leaf.key.serialize_pem());
    let s = server(&[(chain, key)], Alpn::Http).await;
    let tcp = TcpStream::connect(s.addr).await.expect("connect");
    let tls = TlsConnector::from(any_cert_client(VERSIONS, &[]))
        .connect(ServerName::try_from("chain.test").expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.peer_certificates().map(<[_]>::len), Some(2));
}

#[tokio::test]
async fn verify_none_accepts_a_self_signed_server_and_required_refuses_it() {
    let dir = Files::new();
    let leaf = Leaf::self_signed(&["self.test"]);
    let s = server(&[dir.leaf("self", &leaf)], Alpn::Http).await;

    let none = client_config(Verify::None, None, Alpn::Http1).expect("verify none");
    let seen = handshake(&s, none, "127.0.0.1").await.expect("verify none");
    assert_eq!(seen.cert, leaf.der);
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // The system's CAs did not sign it.
    let required = client_config(Verify::Required, None, Alpn::Http1).expect("system CAs");
    let err = handshake(&s, required, "self.test")
        .await
        .expect_err("self-signed refused");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn verify_required_trusts_a_ca_file_and_checks_dns_names_not_ips() {
    let dir = Files::new();
    let ca = Ca::new();
    let leaf = ca.leaf(&["backend.test"]);
    let s = server(&[dir.leaf("backend", &leaf)], Alpn::Http).await;
    let ca_file = dir.write("ca.pem", &ca.pem);
    let client = client_config(Verify::Required, Some(&ca_file), Alpn::None).expect("CA file");

    // By IP (lbd's `addr`): the chain is checked, not the name (HAProxy without verifyhost).
    let seen = handshake(&s, Arc::clone(&client), "127.0.0.1")
        .await
        .expect("trusted chain");
    assert_eq!(seen.cert, leaf.der);
    assert_eq!(seen.alpn, None);
    handshake(&s, Arc::clone(&client), "backend.test")
        .await
        .expect("the right name");
    let err = handshake(&s, Arc::clone(&client), "other.test")
        .await
        .expect_err("the wrong name");
    assert!(
        err.to_string()
            .contains("not valid for name \"other.test\""),
        "{err}"
    );

    // Another CA's leaf is refused even by IP.
    let stranger = Ca::new().leaf(&["backend.test"]);
    let s2 = server(&[dir.leaf("stranger", &stranger)], Alpn::Http).await;
    let err = handshake(&s2, client, "127.0.0.1")
        .await
        .expect_err("untrusted chain");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

/// The message of `server_config`'s error for these files.
fn server_error(files: &[(PathBuf, PathBuf)]) -> String {
    server_config(pairs(files), Alpn::Http)
        .expect_err("refused")
        .to_string()
}

#[test]
fn each_mistake_names_the_file_and_the_fix() {
    let dir = Files::new();
    let leaf = Leaf::self_signed(&["site.test"]);
    let (cert, key) = dir.leaf("site", &leaf);
    let other_key = dir.write(
        "other.key",
        &KeyPair::generate().expect("key").serialize_pem(),
    );
    let missing = dir.write("x", "").with_file_name("missing.pem");
    let broken = dir.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n", // no END line
    );
    let garbage = dir.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let not_x509 = dir.write("notx509.pem", &pem("CERTIFICATE", b"not a certificate"));
    let ip_only = Leaf::self_signed(&["127.0.0.1"]);
    let (ip_cert, ip_key) = dir.leaf("ip", &ip_only);
    let d = |p: &Path| p.display().to_string();

    let named = |file: &Path, rest: &str| format!("{}: {rest}", d(file));
    // (certificate file, key file, the whole message)
    for (cert_file, key_file, message) in [
        (
            &missing,
            &key,
            named(
                &missing,
                "cannot read it: No such file or directory (os error 2) (check the path, and that this process may read the file)",
            ),
        ),
        (
            &key,
            &key,
            named(
                &key,
                "no certificate in it (no -----BEGIN CERTIFICATE----- block): give the certificate chain, the server's certificate first",
            ),
        ),
        (
            &cert,
            &cert,
            named(
                &cert,
                "no private key in it (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block): give the certificate's key",
            ),
        ),
        (
            &cert,
            &other_key,
            named(
                &other_key,
                &format!(
                    "not the key of the certificate in {}: give the key the certificate was made for",
                    d(&cert)
                ),
            ),
        ),
    ] {
        assert_eq!(
            server_error(&[(cert_file.clone(), key_file.clone())]),
            message
        );
    }
    let bad_key = dir.write("bad.key", &pem("PRIVATE KEY", b"not a key"));
    // (certificate file, key file, the file named, how the message starts, how it ends)
    for (cert_file, key_file, file, start, end) in [
        (
            &broken,
            &key,
            &broken,
            "not valid PEM (",
            "): give a PEM file with -----BEGIN ...----- blocks",
        ),
        (&garbage, &key, &garbage, "not valid PEM (", ""),
        (
            &not_x509,
            &key,
            &not_x509,
            "the certificate cannot be parsed (",
            "",
        ),
        (
            &cert,
            &bad_key,
            &bad_key,
            "unusable private key (",
            "): give an RSA, ECDSA (P-256, P-384) or Ed25519 key",
        ),
    ] {
        let e = server_error(&[(cert_file.clone(), key_file.clone())]);
        assert!(
            e.starts_with(&named(file, start)) && e.ends_with(end),
            "{e}"
        );
    }
    assert_eq!(
        server_error(&[]),
        "no certificate: a TLS listener needs at least one { cert, key }"
    );
    // An IP-only certificate is fine as the default, not after it.
    assert!(server_config(pairs(&[(ip_cert.clone(), ip_key.clone())]), Alpn::Http).is_ok());
    assert_eq!(
        server_error(&[(cert.clone(), key.clone()), (ip_cert.clone(), ip_key)]),
        format!(
            "{}: the certificate names no DNS host (no subjectAltName DNS entry), so SNI can never choose it: only the first certificate, the default, may have none",
            d(&ip_cert)
        )
    );

    let client_error = |ca: &Path| {
        client_config(Verify::Required, Some(ca), Alpn::Http1)
            .expect_err("refused")
            .to_string()
    };
    assert!(
        client_error(&missing).starts_with(&format!("{}: cannot read it: ", d(&missing))),
        "{}",
        client_error(&missing)
    );
    assert_eq!(
        client_error(&key),
        format!(
            "{}: no CA certificate in it (no -----BEGIN CERTIFICATE----- block): give the PEM certificates of the CAs to trust",
            d(&key)
        )
    );
    // verify = "none" reads no CA file.
    assert!(client_config(Verify::None, Some(&missing), Alpn::Http1).is_ok());
}

#[test]
fn the_system_bundle_is_where_debian_puts_it() {
    // The machines this runs on have ca-certificates; the message for those that do not.
    assert!(Path::new(SYSTEM_CA_BUNDLE).is_file());
    assert_eq!(
        TlsError::NoSystemCa {
            path: SYSTEM_CA_BUNDLE.into()
        }
        .to_string(),
        "/etc/ssl/certs/ca-certificates.crt: the system's CA bundle is missing: install ca-certificates, give the server a ca = \"file\", or set verify = \"none\""
    );
}

#[test]
fn an_http_listener_offers_h2_first_and_resumes_sessions() {
    let (_dir, files) = Files::site();
    let config: Arc<ServerConfig> = server_config(pairs(&files), Alpn::Http).expect("config");
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(config.ticketer.enabled(), "session tickets on");
}
