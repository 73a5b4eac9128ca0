//! The rustls configurations of a checked configuration's listeners and servers, built with
//! [`proxy::tls`](lb_core::proxy::tls) (the files are read here, when lbd starts).

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::config::{Listener, Mode, Server, Verify};
use lb_core::proxy::tls::{self, Alpn, TlsError};

impl From<Verify> for tls::Verify {
    /// `verify = "required" | "none"` as the proxy library's check.
    fn from(verify: Verify) -> tls::Verify {
        match verify {
            Verify::Required => tls::Verify::Required,
            Verify::None => tls::Verify::None,
        }
    }
}

impl Listener {
    /// The configuration this listener terminates TLS with, `None` without `tls`: its
    /// certificates chosen by SNI (the first the default), ALPN `h2` and `http/1.1` in http
    /// mode, none in tcp mode.
    pub fn tls_config(&self) -> Result<Option<Arc<ServerConfig>>, TlsError> {
        if self.tls.is_empty() {
            return Ok(None);
        }
        let alpn = match self.mode {
            Mode::Http => Alpn::Http,
            Mode::Tcp => Alpn::None,
        };
        let files = self.tls.iter().map(|f| (f.cert.as_path(), f.key.as_path()));
        tls::server_config(files, alpn).map(Some)
    }
}

impl Server {
    /// The configuration a `mode` proxy connects to this server with, `None` without
    /// `tls`: its `verify` and `ca`, ALPN `http/1.1` in http mode, none in tcp mode.
    pub fn tls_config(&self, mode: Mode) -> Result<Option<Arc<ClientConfig>>, TlsError> {
        let Some(verify) = self.tls else {
            return Ok(None);
        };
        let alpn = match mode {
            Mode::Http => Alpn::Http1,
            Mode::Tcp => Alpn::None,
        };
        tls::client_config(verify.into(), self.ca.as_deref(), alpn).map(Some)
    }
}

/// The TLS test helpers of `lb_core::proxy::tls` (rcgen certificates, PEM files, an HTTPS
/// server), compiled in here from the one file rather than copied.
#[cfg(test)]
#[path = "../../../lb-core/src/proxy/tls/testing.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::{Files, Leaf};
    use crate::lbd::config::parse;

    #[test]
    fn a_parsed_config_gives_its_rustls_configs() {
        let dir = Files::new();
        let (site, site_key) = dir.leaf("site", &Leaf::self_signed(&["site.test"]));
        let (api, api_key) = dir.leaf("api", &Leaf::self_signed(&["api.test"]));
        let text = format!(
            "[[listen]]\nname = \"https\"\nbind = \"127.0.0.1:8443\"\nmode = \"http\"\ntls = [{{ cert = {site:?}, key = {site_key:?} }}, {{ cert = {api:?}, key = {api_key:?} }}]\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:1\", tls = true, verify = \"none\" }}, {{ name = \"s2\", addr = \"127.0.0.1:2\" }}]\n\n[[listen]]\nname = \"tcp\"\nbind = \"127.0.0.1:9443\"\ntls = {{ cert = {site:?}, key = {site_key:?} }}\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:1\", tls = true }}]\n"
        );
        let c = parse("lbd.toml", &text).expect("valid");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let (http, tcp) = (&c.listeners[0], &c.listeners[1]);
        let server = http.tls_config().expect("loads").expect("TLS");
        assert_eq!(
            server.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let server = tcp.tls_config().expect("loads").expect("TLS");
        assert!(server.alpn_protocols.is_empty());

        let client = http.servers[0]
            .tls_config(http.mode)
            .expect("loads")
            .expect("TLS");
        assert_eq!(client.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(
            http.servers[1]
                .tls_config(http.mode)
                .expect("plain")
                .is_none()
        );
        let client = tcp.servers[0]
            .tls_config(tcp.mode)
            .expect("system CAs")
            .expect("TLS");
        assert!(client.alpn_protocols.is_empty());

        // A file gone between --check and start: the error names it.
        std::fs::remove_file(&api_key).expect("removable");
        let err = http.tls_config().expect_err("a missing key");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read it", api_key.display())),
            "{err}"
        );
    }
}
