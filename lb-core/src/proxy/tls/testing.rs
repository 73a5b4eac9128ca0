//! What the TLS tests share (here and in `lbd`'s): certificates made by rcgen, PEM files in a
//! temporary directory, and a TLS + HTTP/1.1 server on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A 2048-bit RSA key in PKCS#8 (ring cannot generate RSA keys; made once with openssl).
pub(crate) const RSA_PKCS8_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC8IsJDyRG0yUT3\n\
hcG9uXlUbAmW7b1zgSq1FUNxlHvvlSAlPaSFiFstqhYFPPaa+pnCMIp0gaPdryYh\n\
jhQ7zWl2ijk4IcYyB8Qia96J5X8gOJLrWHYBaE2btuFMuNsTGmh/I6zwQx7fKs7M\n\
s6Kr5kTN/SXkefdT8kmzOyKkvEsrrGQ51C7WraKXK2k1QScKE9mlYcDOZiIf5B+O\n\
cuJ5awcZspqwEKzGNP9KLvdD+ugyYN0zrKb9AQIJOI5+Ddl+yOZ/2NMSXDaCVu3r\n\
DvlvqthuL7TomH8M1pqhmU4Qu4EucOR0MAyC53VCJ7ov3q9SrmXcFu4KS2dhRDvx\n\
brt9ILW1AgMBAAECggEAH0zrJCr2Oq1Hv6StzJpokL6ew9EO9YIWcGU2wNVS31Pg\n\
ssF0N1Et1kWXf0yavMMXxMKdrm+JK09CGVARlreApduuVGPuHRHEtHNc5XVctqgi\n\
7WvcyjQnwVHmXwTcUevRWeG+GoUYREnTeSQj2tSnOtw0qzQNjZZgY6ThiSXYnc26\n\
Cq0lgmfCGkmwK93sAKNBvmEl2ik6yP+Z43+NnC67UOwHq4cLaNOSciNncYJWVndO\n\
DUxHgqioNpwTlVE3l/b036G9F8TiQw1w6VShMHkT2z/mELCKVGr0qAJZNONui4xt\n\
tXPQdXGRP6JQS63EDF9gZKuesMOpAAL5DWogLmvCoQKBgQDm3T6Ks4Xf9FKsfTF4\n\
rNCN1uGP2338mSvzR0K050NtRoHpGOIiaLqSyH9Y49dgRXfDfdy9F7wYbUifNeVF\n\
CcgXyHpGMKSe2sp86nlD7dTD7FWDXB1O3ap/fASnwAK0UBBVeYQI3yBu3q4K0Vp7\n\
OzrHa0XqwQHobyS6gan1MKR6RQKBgQDQnpEnAaIYiylaLXbcf6EtsSeoyeM6o9Xv\n\
UzXtgPXTeSotHFMQJlnFNES9388y9exLCVp0R84sCS1ErSglzDOtie93oiAqcd8c\n\
Wu4MEhtJnr+ku7HDlaNsTT9wvjwqR3TrlPwyMSRfKyYCM8WiHwx7g9h7eflDUU5t\n\
IVJ3X8A8sQKBgFVNFCm9kU6hgNaY32meOOTfq7IywIdPtSyLfPtIo+JBdgjBl/Rs\n\
y9smV99pOBArOsgxvhjkJyzDXFzvVgo/Rf57pao/mOPVJZIoNKxDuSS3MxV5OJ8G\n\
SlQWZ8XvrVAgcRiT8JQylVJB1v7KQetchChg25GUxPaz8lczR6//zBYdAoGAVhzd\n\
9afq7Q6kZyDVK3dTZLT3leif7xipujwyynKtBjnBexVyA/yQmaJVrbqwoGx6uQ6H\n\
U/A/3lV7ZhnDtLZxrnR9cHhvppWSbvXpxPnEYcMxgCIp4n3mE1JfmX4s/5a3YHcD\n\
EwTN6qq46bfNIHqIgIOP3Iggp/Tr1ogmrjfL9kECgYEArVdb/00pHIRSPRtBURXk\n\
3Ug+wTNRCN9LUn2hNyTZOYsvyvdfLUpXzknU7YXCldyr/fTy9PblG0MlC2L2BKr8\n\
l8hhhUgJIIvclbdJXgkilBRIzmq/OMHtdSJvOS7sKaScEA/vNvWfrrLUjjGiImEm\n\
tvzqfGb8P2IyURBJB9g46nI=\n\
-----END PRIVATE KEY-----\n\
";

/// PEM files in a directory removed when dropped.
pub(crate) struct Files(tempfile::TempDir);

impl Files {
    pub(crate) fn new() -> Files {
        Files(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A directory holding one self-signed certificate for `site.test` and its key, and that
    /// pair as a listener's only one.
    pub(crate) fn site() -> (Files, [(PathBuf, PathBuf); 1]) {
        let dir = Files::new();
        let files = [dir.leaf("site", &Leaf::self_signed(&["site.test"]))];
        (dir, files)
    }

    /// Writes `text` to `name` in the directory.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("writable");
        path
    }

    /// Writes a leaf's certificate and key as `NAME.pem` and `NAME.key`.
    pub(crate) fn leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.pem"), &leaf.cert_pem),
            self.write(&format!("{name}.key"), &leaf.key.serialize_pem()),
        )
    }
}

/// A certificate and its key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) der: CertificateDer<'static>,
    pub(crate) key: KeyPair,
}

impl Leaf {
    /// Self-signed, for these DNS names or IP addresses, with an ECDSA P-256 key.
    pub(crate) fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("key generation");
        Leaf::self_signed_with(names, key)
    }

    /// Its key as rustls takes it.
    // For the tests that build their rustls configurations themselves (lb-core's proxy_http,
    // health-check's https), which compile this file in too.
    #[allow(dead_code)]
    pub(crate) fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }

    /// Self-signed with `key`.
    pub(crate) fn self_signed_with(names: &[&str], key: KeyPair) -> Leaf {
        let cert = params(names).self_signed(&key).expect("certificate");
        Leaf {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            key,
        }
    }
}

fn params(names: &[&str]) -> CertificateParams {
    CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .expect("certificate parameters")
}

/// A CA that signs leaves.
pub(crate) struct Ca {
    pub(crate) pem: String,
    // Read by the tests that build their own root stores (lb-core's proxy_http).
    #[allow(dead_code)]
    pub(crate) der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        // Each CA its own name, as real ones have.
        static CAS: AtomicUsize = AtomicUsize::new(0);
        let key = KeyPair::generate().expect("key generation");
        let mut ca = params(&[]);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name = DistinguishedName::new();
        let n = CAS.fetch_add(1, Ordering::SeqCst);
        ca.distinguished_name
            .push(DnType::CommonName, format!("lbd test CA {n}"));
        let cert = ca.self_signed(&key).expect("CA certificate");
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(ca, key),
        }
    }

    /// A leaf for these names, signed by this CA.
    pub(crate) fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("key generation");
        let cert = params(names)
            .signed_by(&key, &self.issuer)
            .expect("certificate");
        Leaf {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            key,
        }
    }
}

/// The key inside a PKCS#8 `PrivateKeyInfo` DER: PKCS#1 for RSA, SEC1 for EC.
pub(crate) fn pkcs8_inner(der: &[u8]) -> Vec<u8> {
    // SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key, ... }
    fn header(der: &[u8]) -> (usize, usize) {
        let first = der[1];
        if first < 0x80 {
            return (2, first as usize);
        }
        let n = (first & 0x7f) as usize;
        let len = der[2..2 + n].iter().fold(0, |l, b| l << 8 | *b as usize);
        (2 + n, len)
    }
    let (h, _) = header(der);
    let mut rest = &der[h..];
    for _ in 0..2 {
        let (h, len) = header(rest);
        rest = &rest[h + len..];
    }
    assert_eq!(rest[0], 0x04, "an OCTET STRING");
    let (h, len) = header(rest);
    rest[h..h + len].to_vec()
}

/// PEM text of a DER block.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use std::fmt::Write;
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        let _ = writeln!(out, "{}", std::str::from_utf8(line).expect("ASCII"));
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// A TLS server on loopback answering every HTTP/1.1 request with the status in `status`.
pub(crate) struct HttpsServer {
    pub(crate) addr: SocketAddr,
    // Set by lbd's health-check tests (which compile this file in too).
    #[allow(dead_code)]
    pub(crate) status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpsServer {
    pub(crate) async fn start(config: Arc<ServerConfig>) -> HttpsServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let addr = listener.local_addr().expect("local address");
        let status = Arc::new(AtomicU16::new(200));
        let shared = Arc::clone(&status);
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, status) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |_request| {
                        let code = status.load(Ordering::SeqCst);
                        async move {
                            hyper::Response::builder()
                                .status(code)
                                .body(Full::new(Bytes::from_static(b"ok\n")))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HttpsServer { addr, status, task }
    }
}
