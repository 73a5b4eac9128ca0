//! Why a TLS configuration could not be built.

use std::path::PathBuf;

use thiserror::Error;

/// A TLS configuration that cannot be built: each message names the file and the fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read it: {source} (check the path, and that this process may read the file)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file is broken.
    #[error("{}: not valid PEM ({reason}): give a PEM file with -----BEGIN ...----- blocks", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate file holds no certificate.
    #[error("{}: no certificate in it (no -----BEGIN CERTIFICATE----- block): give the certificate chain, the server's certificate first", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate that cannot be parsed.
    #[error("{}: the certificate cannot be parsed ({reason}): give an X.509 certificate in PEM", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file holds no private key.
    #[error("{}: no private key in it (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block): give the certificate's key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A private key rustls cannot use.
    #[error("{}: unusable private key ({reason}): give an RSA, ECDSA (P-256, P-384) or Ed25519 key", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("{}: not the key of the certificate in {}: give the key the certificate was made for", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A certificate after the first names no DNS host: no client could get it.
    #[error("{}: the certificate names no DNS host (no subjectAltName DNS entry), so SNI can never choose it: only the first certificate, the default, may have none", path.display())]
    NoDnsName {
        /// The file.
        path: PathBuf,
    },
    /// No certificate given for a listener.
    #[error("no certificate: a TLS listener needs at least one {{ cert, key }}")]
    NoCertificates,
    /// A CA file holds no usable CA.
    #[error("{}: no CA certificate in it ({reason}): give the PEM certificates of the CAs to trust", path.display())]
    NoCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The system's CA bundle is not there.
    #[error("{}: the system's CA bundle is missing: install ca-certificates, give the server a ca = \"file\", or set verify = \"none\"", path.display())]
    NoSystemCa {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[source] rustls::Error),
}
