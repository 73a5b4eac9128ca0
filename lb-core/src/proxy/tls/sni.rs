//! Choosing a listener's certificate by the server name a client sends (SNI).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Error, InconsistentKeys};

use super::{TlsError, pem};

/// One certificate with its key, and the DNS names it is for.
#[derive(Debug)]
pub(super) struct Entry {
    key: Arc<CertifiedKey>,
    /// The subjectAltName DNS names, lower case; wildcards as `*.example.com`.
    names: Vec<String>,
    cert_path: std::path::PathBuf,
}

impl Entry {
    /// Reads a chain and its key, and checks that they belong together.
    pub(super) fn load(
        cert: &Path,
        key: &Path,
        provider: &CryptoProvider,
    ) -> Result<Self, TlsError> {
        let chain = pem::certificates(cert)?;
        let private = pem::private_key(key)?;
        let bad_cert = |reason: String| TlsError::BadCertificate {
            path: cert.to_owned(),
            reason,
        };
        let names = {
            let leaf =
                webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| bad_cert(e.to_string()))?;
            leaf.valid_dns_names()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect()
        };
        let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
            Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            Error::General(reason) => TlsError::BadKey {
                path: key.to_owned(),
                reason,
            },
            e => bad_cert(e.to_string()),
        })?;
        Ok(Entry {
            key: Arc::new(certified),
            names,
            cert_path: cert.to_owned(),
        })
    }
}

/// Picks the certificate for a client: the one naming its SNI exactly, else the one whose
/// wildcard covers it, else the default (the first). For a name several certificates hold,
/// the first of them.
#[derive(Debug)]
pub(super) struct Resolver {
    default: Arc<CertifiedKey>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl Resolver {
    pub(super) fn new(entries: Vec<Entry>) -> Result<Self, TlsError> {
        let default = entries.first().ok_or(TlsError::NoCertificates)?.key.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            if i > 0 && entry.names.is_empty() {
                return Err(TlsError::NoDnsName {
                    path: entry.cert_path,
                });
            }
            for name in entry.names {
                let map = match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()),
                    None => exact.entry(name),
                };
                map.or_insert_with(|| Arc::clone(&entry.key));
            }
        }
        Ok(Resolver {
            default,
            exact,
            wildcard,
        })
    }

    /// The certificate for server name `sni`.
    fn choose(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = sni.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return &self.default;
        };
        if let Some(key) = self.exact.get(&name) {
            return key;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(hello.server_name())))
    }
}
