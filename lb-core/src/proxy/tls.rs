//! TLS for lbd's proxies: the rustls configurations a listener terminates TLS with
//! ([`server_config`]) and a proxy speaks TLS to a server with ([`client_config`]).
//!
//! Both use rustls's ring provider, passed to the builders (no process-wide provider is
//! installed), and offer TLS 1.2 and 1.3.
//!
//! A listener may hold several certificates (HAProxy's `crt-list`, or several `crt` on one
//! `bind`): each client gets the one whose subjectAltName DNS names match the server name it
//! sends (SNI; `*.example.com` matches one label, as in certificate checking); a client with no
//! SNI or an unknown name gets the first certificate, the default.
//!
//! ```no_run
//! use lb_core::proxy::tls::{self, Alpn, Verify};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), lb_core::proxy::tls::TlsError> {
//! let site = (Path::new("/etc/ha/site.pem"), Path::new("/etc/ha/site.key"));
//! let api = (Path::new("/etc/ha/api.pem"), Path::new("/etc/ha/api.key"));
//! // For an HTTP listener: ALPN h2, then http/1.1; site.pem is the default.
//! let terminate = tls::server_config([site, api], Alpn::Http)?;
//! // Towards a server with a self-signed certificate (HAProxy's `ssl verify none`).
//! let to_server = tls::client_config(Verify::None, None, Alpn::Http1)?;
//! # let _ = (terminate, to_server);
//! # Ok(())
//! # }
//! ```

mod error;
mod pem;
mod sni;
mod verify;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use error::TlsError;
pub use verify::ServerVerifier;

/// The system's CA bundle (Debian's `ca-certificates`), trusted by `verify = "required"`
/// servers that name no `ca` file. The `SSL_CERT_FILE` environment variable, as OpenSSL reads
/// it, names another.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a server's certificate is checked (HAProxy's `verify` on a `server ... ssl` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Verify {
    /// Its chain must lead to a trusted CA (HAProxy's `verify required`, the default): the CAs
    /// of a given file, else the system's bundle ([`SYSTEM_CA_BUNDLE`]).
    #[default]
    Required,
    /// Not at all (`verify none`): encrypted, but anyone in the path may impersonate the
    /// server.
    None,
}

/// The application protocols offered with ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`, then `http/1.1` (an HTTP listener, as HAProxy's `alpn h2,http/1.1`).
    Http,
    /// `http/1.1` only (an HTTP/1.1 client, e.g. towards servers).
    Http1,
    /// None: TLS around a TCP stream (`mode = "tcp"`).
    None,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::None => Vec::new(),
        }
    }
}

/// The ring provider, handed to each builder rather than installed process-wide.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The configuration a listener terminates TLS with: the certificates of `files`, each a
/// `(certificate chain, private key)` pair of PEM files (they may be one file holding both),
/// the first being the default. The files are read now; each mistake is an error naming the
/// file and the fix.
///
/// Keys may be PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
/// (`BEGIN EC PRIVATE KEY`); a chain is the server's certificate first, then its
/// intermediates. Every certificate after the first must name at least one DNS host, or no
/// client could ever get it. Sessions resume with tickets (a key rotated every 6 hours,
/// rustls's default) and from a server-side cache.
pub fn server_config<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a Path)>,
    alpn: Alpn,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut certs = Vec::new();
    for (cert, key) in files {
        certs.push(sni::Entry::load(cert, key, &provider)?);
    }
    let resolver = sni::Resolver::new(certs)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = alpn.protocols();
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(TlsError::Rustls)?;
    Ok(Arc::new(config))
}

/// The configuration a proxy connects to a TLS server with (`tls = true`), checking its
/// certificate as `verify` says:
///
/// - [`Verify::Required`]: the chain must lead to a CA of `ca` (a PEM file, HAProxy's
///   `ca-file`) or, without one, of the system's bundle ([`SYSTEM_CA_BUNDLE`]). A server
///   reached by a DNS name must hold a certificate for that name; one reached by IP address
///   (as lbd's `addr`) is not checked for its name, as HAProxy's `verify required` without
///   `verifyhost`.
/// - [`Verify::None`]: any certificate (HAProxy's `ssl verify none`); the handshake is still
///   checked, so the server must hold the key of the certificate it shows. `ca` is not read.
///
/// `alpn` is what the client offers: [`Alpn::Http1`] for an HTTP/1.1 proxy, [`Alpn::None`]
/// in tcp mode. Sessions resume from an in-memory cache.
pub fn client_config(
    verify: Verify,
    ca: Option<&Path>,
    alpn: Alpn,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Rustls)?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match verify {
        Verify::None => Arc::new(ServerVerifier::accept_any(provider)),
        Verify::Required => {
            let roots = match ca {
                Some(path) => pem::ca_file(path)?,
                None => system_roots()?,
            };
            Arc::new(ServerVerifier::name_unless_ip(roots, provider)?)
        }
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.protocols();
    Ok(Arc::new(config))
}

/// The CAs of `SSL_CERT_FILE` or of [`SYSTEM_CA_BUNDLE`].
fn system_roots() -> Result<RootCertStore, TlsError> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map_or_else(|| SYSTEM_CA_BUNDLE.into(), std::path::PathBuf::from);
    pem::ca_file(&path).map_err(|e| match e {
        TlsError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            TlsError::NoSystemCa { path }
        }
        e => e,
    })
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
