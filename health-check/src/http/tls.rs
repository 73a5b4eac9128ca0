//! [`Tls`]: HTTPS settings for an [`HttpCheck`](super::HttpCheck), on rustls with the ring
//! provider.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use lb_core::proxy::tls::ServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::CheckError;

/// How an HTTPS check speaks TLS: which certificates it trusts, and the server name it sends
/// (SNI) and verifies. Pass it to [`HttpCheck::tls`](super::HttpCheck::tls). Needs the `tls`
/// feature.
///
/// The server name defaults to the name in the `Host` header if it is a DNS name (`Host:
/// api.example.com:8443` → `api.example.com`), else the IP address, which is then verified
/// against the certificate's IP address names (and no SNI is sent, as TLS has none for IPs).
///
/// The rustls configuration is built once, here, with the ring provider passed explicitly: it
/// never depends on a process-wide default provider. It offers TLS 1.2 and 1.3 and ALPN
/// `http/1.1`.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use health_check::{HttpCheck, Tls};
///
/// // HAProxy's `check ssl verify none`.
/// let check = HttpCheck::new("127.0.0.1:8443".parse().unwrap()).tls(Tls::verify_none()?);
/// assert_eq!(
///     health_check::Check::describe(&check),
///     "http GET https://127.0.0.1:8443/ (verify none)"
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Tls {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
    verify: bool,
}

impl Tls {
    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks; other blocks
    /// are skipped). Fails if it holds no usable certificate.
    pub fn ca_pem(pem: impl AsRef<[u8]>) -> io::Result<Tls> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let cert = cert.map_err(|e| invalid(format!("bad CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("bad CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("the CA PEM holds no certificate".to_owned()));
        }
        let mut config = builder()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls::new(config, true))
    }

    /// Trusts the CA certificates in the PEM file at `path` (read now, once), like HAProxy's
    /// `ca-file`.
    pub fn ca_file(path: impl AsRef<Path>) -> io::Result<Tls> {
        let path = path.as_ref();
        let in_file = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        Tls::ca_pem(std::fs::read(path).map_err(in_file)?).map_err(in_file)
    }

    /// Accepts any certificate, like HAProxy's `check ssl verify none`: the handshake still
    /// happens, and the server must still prove it holds the key of the certificate it sent.
    /// Checks that the server speaks TLS, not who it is.
    pub fn verify_none() -> io::Result<Tls> {
        let provider = provider();
        let mut config = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier::accept_any(provider)))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls::new(config, false))
    }

    /// Uses this rustls configuration as it is (for client certificates, or other roots).
    /// Set its `alpn_protocols` to `http/1.1` (or leave them empty): the check speaks only
    /// HTTP/1.1.
    pub fn with_config(config: Arc<ClientConfig>) -> Tls {
        Tls {
            config,
            server_name: None,
            verify: true,
        }
    }

    /// The server name to send (SNI) and to verify the certificate against: a DNS name or an
    /// IP address. Default: from the `Host` header, see [`Tls`]. An invalid name fails every
    /// check.
    pub fn server_name(mut self, name: impl Into<String>) -> Tls {
        self.server_name = Some(name.into());
        self
    }

    fn new(config: ClientConfig, verify: bool) -> Tls {
        Tls {
            config: Arc::new(config),
            server_name: None,
            verify,
        }
    }

    /// A note for [`describe`](crate::Check::describe).
    pub(super) fn describe(&self) -> &'static str {
        if self.verify { "" } else { " (verify none)" }
    }

    /// The TLS handshake on a connected socket.
    pub(super) async fn connect(
        &self,
        addr: SocketAddr,
        host_header: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, CheckError> {
        let name = match &self.server_name {
            Some(name) => ServerName::try_from(name.clone()).map_err(|e| CheckError::Tls {
                addr,
                reason: format!("invalid server name {name:?}: {e}"),
            })?,
            None => ServerName::try_from(host_name(host_header).to_owned())
                .unwrap_or_else(|_| ServerName::from(addr.ip())),
        };
        TlsConnector::from(Arc::clone(&self.config))
            .connect(name, tcp)
            .await
            .map_err(|e| CheckError::Tls {
                addr,
                reason: e.to_string(),
            })
    }
}

/// The ring provider, passed explicitly rather than installed process-wide.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> io::Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS configuration: {e}")))
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// The host part of a `Host` header: `example.com:8080` → `example.com`, `[::1]:443` → `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("example.com:8443"), "example.com");
        assert_eq!(host_name("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8443"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("::1"), "::1");
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let err = Tls::ca_pem("not a pem").unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let err = Tls::ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/ca.pem: "),
            "{err}"
        );
        assert!(Tls::verify_none().is_ok());
    }
}
