//! The page's HTTP endpoint: routes, basic auth, and the task that serves them (hyper,
//! HTTP/1.1, one request per connection).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::auth::Credentials;
use super::error::StatsError;
use super::html::{self, DEFAULT_REFRESH, MAX_REFRESH};
use super::settings::{METRICS_URI, StatsSettings};
use super::{Snapshot, metrics, prometheus};

/// Where the page gets what it shows: the service's state, read at every request.
///
/// Any `Fn() -> Snapshot + Send + Sync` is one. A type of the embedder's that shows more than
/// proxies implements it: its [`Snapshot::sections`] go on the page and into the JSON, and
/// [`extra_metrics`](SnapshotSource::extra_metrics) onto `/metrics` (the module docs show
/// one).
pub trait SnapshotSource: Send + Sync {
    /// Everything the page shows, as it is now.
    fn snapshot(&self) -> Snapshot;

    /// Prometheus text (format 0.0.4) that `/metrics` serves after the page's own families,
    /// e.g. written with [`prometheus::Family`]. Its families' names must differ from the
    /// page's (which start with the settings' `metrics_prefix`). None unless implemented.
    fn extra_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

impl<F: Fn() -> Snapshot + Send + Sync> SnapshotSource for F {
    fn snapshot(&self) -> Snapshot {
        self()
    }
}

/// How long a client may take to send its request and read the answer: a client that never
/// finishes its request does not hold a connection longer (HAProxy's `timeout http-request`).
const TIMEOUT: Duration = Duration::from_secs(5);

/// A request head larger than this is refused (a browser sends a kilobyte or two).
const MAX_HEAD: usize = 16 * 1024;

/// A running stats page. Dropping it stops accepting (answers under way finish).
#[derive(Debug)]
#[must_use = "the page stops when its server is dropped"]
pub struct StatsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StatsServer {
    /// Checks `settings`, listens on `settings.bind` and serves the page from `source`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with IO and time enabled.
    pub async fn start(
        settings: &StatsSettings,
        source: impl SnapshotSource + 'static,
    ) -> Result<StatsServer, StatsError> {
        let page = Arc::new(Page::new(settings, Box::new(source))?);
        let bind_error = |source| StatsError::Bind {
            addr: settings.bind,
            source,
        };
        let listener = TcpListener::bind(settings.bind).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        tracing::info!(
            bind = %local_addr,
            uri = %page.uri,
            auth = page.auth.is_some(),
            "stats page listening: {} (also {};json) and {METRICS_URI}",
            page.uri,
            page.uri
        );
        let task = tokio::spawn(serve(listener, page));
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

/// Answers every connection on `listener` until the task is aborted.
async fn serve(listener: TcpListener, page: Arc<Page>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, page.clone()));
            }
            Err(e) => {
                // Out of descriptors or a client gone before accept: back off a little.
                tracing::warn!(error = %e, "stats page: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request on `stream`, then the connection closes; all within [`TIMEOUT`].
async fn answer(stream: TcpStream, page: Arc<Page>) {
    let service = service_fn(move |request| {
        let response = page.respond(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .title_case_headers(true)
        .max_buf_size(MAX_HEAD)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(TIMEOUT, connection).await;
}

/// What a request needs to be answered.
struct Page {
    uri: String,
    title: String,
    metrics_prefix: String,
    auth: Option<Credentials>,
    /// `Basic realm="title"`, asked for without credentials.
    realm: HeaderValue,
    source: Box<dyn SnapshotSource>,
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

impl Page {
    fn new(settings: &StatsSettings, source: Box<dyn SnapshotSource>) -> Result<Page, StatsError> {
        settings.check()?;
        let quoted = settings.title.replace('\\', "\\\\").replace('"', "\\\"");
        let realm = HeaderValue::from_str(&format!("Basic realm=\"{quoted}\"")).map_err(|_| {
            StatsError::Title {
                title: settings.title.clone(),
            }
        })?;
        Ok(Page {
            uri: settings.uri.clone(),
            title: settings.title.clone(),
            metrics_prefix: settings.metrics_prefix.clone(),
            auth: settings.auth.clone(),
            realm,
            source,
        })
    }

    /// Answers one request: credentials first (they guard every path), then the method, then
    /// the path: `uri` (HTML, or JSON with `?format=json`), `uri;json`, `/metrics`.
    fn respond<B>(&self, request: &Request<B>) -> Response<String> {
        if let Some(credentials) = &self.auth {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !credentials.admit(given) {
                let text = "401 Unauthorized: this page needs a user and password\n";
                return with_header(
                    response(StatusCode::UNAUTHORIZED, TEXT, text.into()),
                    header::WWW_AUTHENTICATE,
                    self.realm.clone(),
                );
            }
        }
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let text = "405 Method Not Allowed: GET or HEAD only\n";
            return with_header(
                response(StatusCode::METHOD_NOT_ALLOWED, TEXT, text.into()),
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD"),
            );
        }
        let query = request.uri().query().unwrap_or("");
        let json = query_param(query, "format") == Some("json");
        let path = request.uri().path();
        let (content_type, body) = if path == METRICS_URI {
            let mut text = metrics::render(&self.source.snapshot(), &self.metrics_prefix);
            self.source.extra_metrics(&mut text);
            (prometheus::CONTENT_TYPE, text)
        } else if path == self.uri && !json {
            let refresh = refresh(query_param(query, "refresh"));
            let page = html::render(&self.source.snapshot(), &self.title, &self.uri, refresh);
            let response = response(StatusCode::OK, HTML, page);
            // The page needs nothing but its own inline style.
            let csp = "default-src 'none'; style-src 'unsafe-inline'";
            return cacheless(with_header(
                response,
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ));
        } else if path == self.uri || path.strip_suffix(";json") == Some(self.uri.as_str()) {
            match serde_json::to_string_pretty(&self.source.snapshot()) {
                Ok(body) => (JSON, body + "\n"),
                Err(e) => {
                    let text = format!("the snapshot did not serialize: {e}\n");
                    return response(StatusCode::INTERNAL_SERVER_ERROR, TEXT, text);
                }
            }
        } else {
            let text = format!(
                "404 Not Found: the stats are at {} ({};json) and {METRICS_URI}\n",
                self.uri, self.uri
            );
            return response(StatusCode::NOT_FOUND, TEXT, text);
        };
        cacheless(response(StatusCode::OK, content_type, body))
    }
}

/// A whole response; its length is given, so that a `HEAD` answer (which hyper sends without
/// the body) says it too.
fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, length);
    response
}

fn with_header(
    mut response: Response<String>,
    name: HeaderName,
    value: HeaderValue,
) -> Response<String> {
    response.headers_mut().insert(name, value);
    response
}

/// The statistics change at every read: no cache keeps them, no browser guesses their type.
fn cacheless(response: Response<String>) -> Response<String> {
    let response = with_header(
        response,
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    with_header(
        response,
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}

/// The value of query parameter `key` (`key=value&...`; a bare `key` is empty).
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
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
        page_of(auth, Box::new(fixture::snapshot))
    }

    fn page_of(auth: bool, source: Box<dyn SnapshotSource>) -> Page {
        let mut settings = StatsSettings::new("127.0.0.1:0".parse().unwrap());
        settings.title = "lbd statistics".into();
        settings.metrics_prefix = "lbd".into();
        settings.auth = auth.then(|| Credentials::new("admin", "secret"));
        Page::new(&settings, source).unwrap()
    }

    /// A service with VRRP instances beside its proxies: a section and metrics of its own.
    struct WithVrrp;

    impl SnapshotSource for WithVrrp {
        fn snapshot(&self) -> Snapshot {
            fixture::with_vrrp()
        }

        fn extra_metrics(&self, out: &mut String) {
            let help = "1 for the state the instance is in.";
            let mut f = prometheus::Family::new(out, "hald_vrrp_state", "gauge", help);
            f.sample(&[("instance", "VI_1"), ("state", "master")], 1.0);
        }
    }

    /// `head` is the request line, then headers as `name: value` lines.
    fn get(page: &Page, head: &str) -> Response<String> {
        let mut lines = head.lines();
        let mut line = lines.next().unwrap().split(' ');
        let mut request = Request::builder()
            .method(line.next().unwrap())
            .uri(line.next().unwrap());
        for header in lines {
            let (name, value) = header.split_once(':').unwrap();
            request = request.header(name, value.trim());
        }
        page.respond(&request.body(()).unwrap())
    }

    fn content_type(r: &Response<String>) -> &str {
        r.headers()[header::CONTENT_TYPE].to_str().unwrap()
    }

    #[test]
    fn routes_serve_html_json_and_metrics_else_404_or_405() {
        let p = page(false);
        let r = get(&p, "GET /stats");
        assert_eq!((r.status(), content_type(&r)), (StatusCode::OK, HTML));
        assert!(r.body().contains("content=\"5\""));
        assert!(r.body().contains("<title>lbd statistics</title>"));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        for json in ["GET /stats;json", "GET /stats?format=json"] {
            let r = get(&p, json);
            assert_eq!(
                (r.status(), content_type(&r)),
                (StatusCode::OK, JSON),
                "{json}"
            );
        }
        let r = get(&p, "HEAD /metrics");
        assert_eq!(
            (r.status(), content_type(&r)),
            (StatusCode::OK, prometheus::CONTENT_TYPE)
        );
        assert!(r.body().contains("\nlbd_uptime_seconds 3725\n"));
        assert_eq!(
            r.headers()[header::CONTENT_LENGTH],
            r.body().len().to_string(),
            "a HEAD answer says the length"
        );
        for missing in ["/", "/stats/", "/statsx", "/metrics;json", "/x;json"] {
            let r = get(&p, &format!("GET {missing}"));
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
        }
        let r = get(&p, "POST /stats");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn with_auth_every_path_wants_credentials_and_names_the_realm() {
        let p = page(true);
        for head in [
            "GET /stats",
            "GET /metrics",
            "GET /nowhere",
            "POST /stats",
            "GET /stats\nAuthorization: Basic YWRtaW46d3Jvbmc=",
            "GET /stats\nAuthorization: Basic %%%",
        ] {
            let r = get(&p, head);
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{head}");
            assert_eq!(
                r.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"lbd statistics\""
            );
            assert!(!r.body().contains("web1"), "{head}");
        }
        let r = get(&p, "GET /stats\nauthorization: Basic YWRtaW46c2VjcmV0");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn a_section_and_extra_metrics_show_in_the_page_the_json_and_the_metrics() {
        let p = page_of(false, Box::new(WithVrrp));
        let html = get(&p, "GET /stats");
        let html = html.body();
        assert!(
            html.contains("<h2 id=\"web &lt;&amp;&gt;\">"),
            "the listeners stay"
        );
        assert!(
            html.contains("<h2 id=\"VRRP &lt;instances&gt;\">"),
            "{html}"
        );
        assert!(html.contains(
            "<tr id=\"VRRP &lt;instances&gt;/VI_1\" class=\"row state-up\"><td class=\"name\">VI_1</td><td>MASTER</td>"
        ));

        let json = get(&p, "GET /stats;json");
        let json: serde_json::Value = serde_json::from_str(json.body()).unwrap();
        assert_eq!(
            json["listeners"][0]["name"], "web <&>",
            "the listeners stay"
        );
        let vrrp = &json["sections"][0];
        assert_eq!(vrrp["title"], "VRRP <instances>");
        assert_eq!(
            vrrp["columns"],
            serde_json::json!(["Instance", "State", "Priority", "VIPs"])
        );
        assert_eq!(
            vrrp["rows"][0],
            serde_json::json!({"cells": ["VI_1", "MASTER", "150", "10.0.0.100/24"], "tone": "up"})
        );
        assert_eq!(vrrp["rows"][1]["tone"], "idle");
        assert_eq!(vrrp["rows"][2]["tone"], serde_json::Value::Null);

        let metrics = get(&p, "GET /metrics");
        let text = metrics.body();
        let own = text.find("\nlbd_uptime_seconds 3725\n").expect(text);
        let extra = text
            .find("# TYPE hald_vrrp_state gauge\nhald_vrrp_state{instance=\"VI_1\",state=\"master\"} 1\n")
            .expect(text);
        assert!(own < extra, "appended after the page's own families");
        assert!(text.ends_with("state=\"master\"} 1\n"));
        assert_eq!(
            metrics.headers()[header::CONTENT_LENGTH],
            text.len().to_string()
        );

        // A plain closure has no extra metrics and no section.
        let plain = get(&page(false), "GET /metrics");
        assert!(!plain.body().contains("hald_"));
        let json = get(&page(false), "GET /stats;json");
        assert!(json.body().contains("\"sections\": []"), "{}", json.body());
    }

    #[test]
    fn a_realm_quotes_the_title() {
        let mut settings = StatsSettings::new("127.0.0.1:0".parse().unwrap());
        settings.title = r#"the "a\b" stats"#.into();
        let p = Page::new(&settings, Box::new(fixture::snapshot)).unwrap();
        assert_eq!(p.realm, r#"Basic realm="the \"a\\b\" stats""#);
    }

    #[test]
    fn refresh_is_asked_for_in_the_query_within_bounds() {
        assert_eq!(refresh(None), Some(DEFAULT_REFRESH));
        assert_eq!(refresh(Some("2")), Some(2));
        assert_eq!(refresh(Some("0")), None);
        assert_eq!(refresh(Some("99999")), Some(MAX_REFRESH));
        assert_eq!(refresh(Some("-1")), Some(DEFAULT_REFRESH));
        assert_eq!(refresh(Some("")), Some(DEFAULT_REFRESH));
        let r = get(&page(false), "GET /stats?refresh=0");
        assert!(!r.body().contains("http-equiv"));
        assert_eq!(query_param("refresh=2&format=json", "format"), Some("json"));
        assert_eq!(query_param("refresh&x=1", "refresh"), Some(""));
        assert_eq!(query_param("", "x"), None);
    }
}
