//! How servers' certificates are checked: one [`ServerVerifier`], which accepts any
//! certificate (`verify = "none"`) or checks the chain, a name unless the server is reached by
//! IP address (`verify = "required"`); the handshake signatures are checked either way.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::TlsError;

/// A rustls verifier of servers' certificates, as HAProxy's `verify` on a `server ... ssl`
/// line: [`accept_any`](Self::accept_any) for `verify = "none"`, the chain against given
/// roots for `verify = "required"`. Either way the handshake signatures are checked with the
/// provider's algorithms (the server must hold the key of the certificate it presents).
///
/// [`client_config`](super::client_config) makes it from a [`Verify`](super::Verify); it is
/// public for the other rustls clients that want the same check (health-check's HTTPS checks
/// with `verify none`, test clients that read which certificate a server chose).
#[derive(Debug)]
pub struct ServerVerifier {
    /// Whose signature algorithms check the handshake.
    provider: Arc<CryptoProvider>,
    /// The chain's check (`verify = "required"`); `None`: any chain and name are accepted.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerVerifier {
    /// `verify = "none"`: any certificate chain and name are accepted; the handshake
    /// signatures are checked with `provider`'s algorithms.
    pub fn accept_any(provider: Arc<CryptoProvider>) -> Self {
        ServerVerifier {
            provider,
            chain: None,
        }
    }

    /// `verify = "required"`: rustls's WebPKI verification against `roots`, except that a
    /// server reached by IP address is not held to that address (HAProxy's `verify required`
    /// without `verifyhost`: the chain is what is checked). A DNS name is checked as usual.
    pub(super) fn name_unless_ip(
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(Error::General(e.to_string())))?;
        Ok(ServerVerifier {
            provider,
            chain: Some(chain),
        })
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // WebPKI checks the chain first and the name last: a name error means the chain is
        // trusted.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if matches!(server_name, ServerName::IpAddress(_)) => {
                Ok(ServerCertVerified::assertion())
            }
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
