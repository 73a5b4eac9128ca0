//! The page's HTTP endpoint: routes, basic auth, and the task that serves them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use super::auth::{Credentials, REALM};
use super::html::{self, DEFAULT_REFRESH, MAX_REFRESH};
use super::{Snapshot, metrics};
use crate::http_responder::{self, Request, Response};
use crate::lbd::{METRICS_URI, Stats};
use crate::prometheus;

/// Where the page gets what it shows: the daemon's state, read at every request.
///
/// Any `Fn() -> Snapshot + Send + Sync` is one.
pub trait SnapshotSource: Send + Sync {
    /// Everything the page shows, as it is now.
    fn snapshot(&self) -> Snapshot;
}

impl<F: Fn() -> Snapshot + Send + Sync> SnapshotSource for F {
    fn snapshot(&self) -> Snapshot {
        self()
    }
}

/// Why the page could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Its address could not be bound.
    #[error(
        "stats.bind {addr}: cannot listen there: {source} (is another process on that port, or is the address not on this host? pick another stats.bind)"
    )]
    Bind {
        /// The `stats.bind` address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A running stats page; dropping it stops accepting (answers under way finish).
#[derive(Debug)]
pub struct StatsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StatsServer {
    /// Listens on `stats.bind` and serves the page from `source` (needs a tokio runtime).
    pub async fn start(
        stats: &Stats,
        source: impl SnapshotSource + 'static,
    ) -> Result<StatsServer, StatsError> {
        let bind_error = |source| StatsError::Bind {
            addr: stats.bind,
            source,
        };
        let listener = TcpListener::bind(stats.bind).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let page = Arc::new(Page {
            uri: stats.uri.clone(),
            auth: stats.auth.as_ref().map(|(u, p)| Credentials::new(u, p)),
            source: Box::new(source),
        });
        info!(
            bind = %local_addr,
            uri = %page.uri,
            auth = page.auth.is_some(),
            "stats page listening: {} (also {};json) and {METRICS_URI}",
            page.uri,
            page.uri
        );
        let task = http_responder::serve(listener, "stats page", move |request| {
            std::future::ready(page.respond(&request))
        });
        Ok(StatsServer { local_addr, task })
    }

    /// The address it listens on (the port the system chose when `bind` said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the responder needs to answer a request.
struct Page {
    uri: String,
    auth: Option<Credentials>,
    source: Box<dyn SnapshotSource>,
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

impl Page {
    /// Answers one request: credentials first (they guard every path), then the method, then
    /// the path: `uri` (HTML, or JSON with `?format=json`), `uri;json`, `/metrics`.
    fn respond(&self, request: &Request) -> Response {
        if let Some(credentials) = &self.auth
            && !credentials.admit(request.header("authorization"))
        {
            return Response::text(
                "401 Unauthorized",
                "401 Unauthorized: this page needs a user and password\n",
            )
            .with_header("WWW-Authenticate", format!("Basic realm=\"{REALM}\""));
        }
        if !request.is_get_or_head() {
            return Response::text(
                "405 Method Not Allowed",
                "405 Method Not Allowed: GET or HEAD only\n",
            );
        }
        let json = request.query_param("format") == Some("json");
        let path = request.path.as_str();
        let response = if path == METRICS_URI {
            Response::new(
                "200 OK",
                prometheus::CONTENT_TYPE,
                metrics::render(&self.source.snapshot()),
            )
        } else if path == self.uri && !json {
            let refresh = refresh(request.query_param("refresh"));
            Response::new(
                "200 OK",
                HTML,
                html::render(&self.source.snapshot(), &self.uri, refresh),
            )
            // The page needs nothing but its own inline style.
            .with_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            )
        } else if path == self.uri || path.strip_suffix(";json") == Some(self.uri.as_str()) {
            match serde_json::to_string_pretty(&self.source.snapshot()) {
                Ok(body) => Response::new("200 OK", JSON, body + "\n"),
                Err(e) => Response::text(
                    "500 Internal Server Error",
                    format!("the snapshot did not serialize: {e}\n"),
                ),
            }
        } else {
            return Response::text(
                "404 Not Found",
                format!(
                    "404 Not Found: the stats are at {} ({};json) and {METRICS_URI}\n",
                    self.uri, self.uri
                ),
            );
        };
        response
            .with_header("Cache-Control", "no-store")
            .with_header("X-Content-Type-Options", "nosniff")
    }
}

/// The refresh period a `?refresh=N` asks for: `0` for none, at most [`MAX_REFRESH`], the
/// default when absent or not a number.
fn refresh(asked: Option<&str>) -> Option<u32> {
    match asked.map(str::parse::<u32>) {
        Some(Ok(0)) => None,
        Some(Ok(n)) => Some(n.min(MAX_REFRESH)),
        _ => Some(DEFAULT_REFRESH),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn page(auth: bool) -> Page {
        Page {
            uri: "/stats".into(),
            auth: auth.then(|| Credentials::new("admin", "secret")),
            source: Box::new(fixture::snapshot),
        }
    }

    fn get(page: &Page, head: &str) -> Response {
        page.respond(&Request::parse(head.as_bytes()).unwrap())
    }

    #[test]
    fn routes_serve_html_json_and_metrics_else_404_or_405() {
        let p = page(false);
        let r = get(&p, "GET /stats HTTP/1.1\r\n\r\n");
        assert_eq!((r.status, r.content_type), ("200 OK", HTML));
        assert!(r.body.contains("content=\"5\""));
        for json in [
            "GET /stats;json HTTP/1.1\r\n\r\n",
            "GET /stats?format=json HTTP/1.1\r\n\r\n",
        ] {
            let r = get(&p, json);
            assert_eq!((r.status, r.content_type), ("200 OK", JSON), "{json}");
        }
        let r = get(&p, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(
            (r.status, r.content_type),
            ("200 OK", prometheus::CONTENT_TYPE)
        );
        for missing in ["/", "/stats/", "/statsx", "/metrics;json", "/x;json"] {
            let r = get(&p, &format!("GET {missing} HTTP/1.1\r\n\r\n"));
            assert_eq!(r.status, "404 Not Found", "{missing}");
        }
        let r = get(&p, "POST /stats HTTP/1.1\r\n\r\n");
        assert_eq!(r.status, "405 Method Not Allowed");
    }

    #[test]
    fn with_auth_every_path_wants_credentials_and_names_the_realm() {
        let p = page(true);
        for head in [
            "GET /stats HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n\r\n",
            "GET /nowhere HTTP/1.1\r\n\r\n",
            "POST /stats HTTP/1.1\r\n\r\n",
            "GET /stats HTTP/1.1\r\nAuthorization: Basic YWRtaW46d3Jvbmc=\r\n\r\n",
            "GET /stats HTTP/1.1\r\nAuthorization: Basic %%%\r\n\r\n",
        ] {
            let r = get(&p, head);
            assert_eq!(r.status, "401 Unauthorized", "{head}");
            assert_eq!(
                r.headers,
                [(
                    "WWW-Authenticate",
                    "Basic realm=\"lbd statistics\"".to_owned()
                )]
            );
        }
        let r = get(
            &p,
            "GET /stats HTTP/1.1\r\nauthorization: Basic YWRtaW46c2VjcmV0\r\n\r\n",
        );
        assert_eq!(r.status, "200 OK");
    }

    #[test]
    fn refresh_is_asked_for_in_the_query_within_bounds() {
        assert_eq!(refresh(None), Some(DEFAULT_REFRESH));
        assert_eq!(refresh(Some("2")), Some(2));
        assert_eq!(refresh(Some("0")), None);
        assert_eq!(refresh(Some("99999")), Some(MAX_REFRESH));
        assert_eq!(refresh(Some("-1")), Some(DEFAULT_REFRESH));
        assert_eq!(refresh(Some("")), Some(DEFAULT_REFRESH));
        let r = get(&page(false), "GET /stats?refresh=0 HTTP/1.1\r\n\r\n");
        assert!(!r.body.contains("http-equiv"));
    }
}
