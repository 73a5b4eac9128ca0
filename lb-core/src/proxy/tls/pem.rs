//! Reading PEM files: certificate chains, private keys, CA bundles.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn broken(path: &Path, e: &pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The certificates of a PEM file, in order; at least one.
pub(super) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| broken(path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => broken(path, &e),
    })
}

/// The CAs of a PEM bundle; at least one must be usable.
pub(super) fn ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let bytes = read(path)?;
    let mut roots = RootCertStore::empty();
    let mut last_error = "no -----BEGIN CERTIFICATE----- block".to_owned();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| broken(path, &e))?;
        // A bundle may hold certificates webpki cannot use as anchors: skip those, as
        // OpenSSL does, as long as one is usable.
        if let Err(e) = roots.add(cert) {
            last_error = e.to_string();
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoCa {
            path: path.to_owned(),
            reason: last_error,
        });
    }
    Ok(roots)
}
