//! [`HttpCheck`]: one HTTP/1.1 request, judged by its status and optionally a string in the
//! body (HAProxy's `option httpchk`, `http-check expect status` / `http-check expect string`),
//! over plain TCP or, with the `tls` feature, HTTPS.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Bound, RangeBounds, RangeInclusive};
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Check, CheckError};

#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub use tls::Tls;

/// The `User-Agent` every request carries unless a header replaces it.
const USER_AGENT_VALUE: &str = concat!("health-check/", env!("CARGO_PKG_VERSION"));

/// Healthy when an HTTP/1.1 request to `addr` is answered with an expected status (by default
/// any 2xx or 3xx) and, if set, a body containing an expected string.
///
/// Defaults: `GET /`, `Host` the address (`127.0.0.1:8080`), `Connection: close`,
/// `User-Agent: health-check/<version>`, any 2xx/3xx status, the body not read. HAProxy's
/// `option httpchk` sends `OPTIONS /` by default; `GET` is what health endpoints are written
/// for, so it is the default here ([`method`](HttpCheck::method) changes it).
///
/// A body expectation reads at most [`body_limit`](HttpCheck::body_limit) bytes (default
/// [`DEFAULT_BODY_LIMIT`](HttpCheck::DEFAULT_BODY_LIMIT), 16 KiB, HAProxy's `tune.chksize`):
/// a longer body is searched in its first bytes only and the rest is never read.
///
/// Every check opens a new connection and closes it (no keep-alive), like HAProxy, with a
/// reset so that no `TIME_WAIT` socket is left per check.
///
/// **Timeout:** a [`Monitor`](crate::Monitor) bounds every check by its `timeout` and drops
/// the check when it expires, so the check has none of its own by default. Called directly, a
/// check against a server that accepts and never answers waits as long as the connection
/// lives; set [`timeout`](HttpCheck::timeout) for that.
///
/// ```
/// use health_check::{Check, HttpCheck};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A tiny server that answers every request with 200 "ok".
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = server.local_addr().unwrap();
/// tokio::spawn(async move {
///     while let Ok((mut sock, _)) = server.accept().await {
///         let mut request = [0u8; 1024];
///         let _ = sock.read(&mut request).await;
///         let _ = sock
///             .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
///             .await;
///     }
/// });
///
/// let check = HttpCheck::new(addr).path("/health").expect_status(200).expect_body("ok");
/// assert_eq!(check.describe(), format!("http GET http://{addr}/health"));
/// check.check().await.expect("healthy");
///
/// let err = HttpCheck::new(addr).expect_status(204).check().await.unwrap_err();
/// assert_eq!(err.to_string(), format!("HTTP 200 from {addr} GET / (expected 204)"));
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a check does nothing until a Monitor runs it"]
pub struct HttpCheck {
    addr: SocketAddr,
    method: String,
    path: String,
    host: Option<String>,
    headers: Vec<(String, String)>,
    status: StatusSet,
    body: Option<String>,
    body_limit: usize,
    timeout: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<Tls>,
}

impl HttpCheck {
    /// How many body bytes a body expectation reads by default: 16 KiB, HAProxy's
    /// `tune.chksize`.
    pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

    /// `GET /` over plain HTTP, any 2xx or 3xx status passes.
    pub fn new(addr: SocketAddr) -> HttpCheck {
        HttpCheck {
            addr,
            method: "GET".to_owned(),
            path: "/".to_owned(),
            host: None,
            headers: Vec::new(),
            status: StatusSet::default(),
            body: None,
            body_limit: HttpCheck::DEFAULT_BODY_LIMIT,
            timeout: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The request method, as sent (methods are case-sensitive): `"GET"` (the default),
    /// `"HEAD"`, `"OPTIONS"` (HAProxy's default), ... An invalid method fails every check.
    pub fn method(mut self, method: impl Into<String>) -> HttpCheck {
        self.method = method.into();
        self
    }

    /// The request target: a path starting with `/`, optionally with a query
    /// (`/health?full=1`), or `*` (for `OPTIONS *`). Default `/`. An invalid path fails every
    /// check.
    pub fn path(mut self, path: impl Into<String>) -> HttpCheck {
        self.path = path.into();
        self
    }

    /// The `Host` header (`www.example.com`, or with a port, `www.example.com:8080`). Default:
    /// the address, e.g. `127.0.0.1:8080`. Over HTTPS (feature `tls`) its name is also
    /// the default TLS server name (SNI).
    pub fn host(mut self, host: impl Into<String>) -> HttpCheck {
        self.host = Some(host.into());
        self
    }

    /// Adds a request header. A header named like a default one (`User-Agent`, `Connection`)
    /// replaces it; `Host` is the same as [`host`](HttpCheck::host). An invalid name or value
    /// fails every check.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpCheck {
        let name = name.into();
        if name.eq_ignore_ascii_case("host") {
            self.host = Some(value.into());
        } else {
            self.headers.push((name, value.into()));
        }
        self
    }

    /// Passes only this status (`http-check expect status 200`). Replaces any earlier status
    /// expectation.
    pub fn expect_status(mut self, status: u16) -> HttpCheck {
        self.status = StatusSet(vec![status..=status]);
        self
    }

    /// Passes any of these statuses (`http-check expect status 200,204` in spirit). Replaces
    /// any earlier status expectation; an empty list passes nothing.
    pub fn expect_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> HttpCheck {
        self.status = StatusSet(statuses.into_iter().map(|s| s..=s).collect());
        self
    }

    /// Passes any status in the range, e.g. `200..=299` or `200..300` (`http-check expect
    /// rstatus ^2`). Replaces any earlier status expectation.
    pub fn expect_status_range(mut self, range: impl RangeBounds<u16>) -> HttpCheck {
        let start = match range.start_bound() {
            Bound::Included(&s) => Some(s),
            Bound::Excluded(&s) => s.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e),
            Bound::Excluded(&e) => e.checked_sub(1),
            Bound::Unbounded => Some(u16::MAX),
        };
        self.status = match (start, end) {
            (Some(s), Some(e)) if s <= e => StatusSet(vec![s..=e]),
            _ => StatusSet(Vec::new()), // an empty range: nothing passes
        };
        self
    }

    /// Requires the body to contain `text` (`http-check expect string`), searched in the first
    /// [`body_limit`](HttpCheck::body_limit) bytes. Checked after the status.
    pub fn expect_body(mut self, text: impl Into<String>) -> HttpCheck {
        self.body = Some(text.into());
        self
    }

    /// How many body bytes [`expect_body`](HttpCheck::expect_body) reads at most. Default
    /// [`DEFAULT_BODY_LIMIT`](HttpCheck::DEFAULT_BODY_LIMIT).
    pub fn body_limit(mut self, bytes: usize) -> HttpCheck {
        self.body_limit = bytes;
        self
    }

    /// Fails a check that takes longer than `after` with [`CheckError::Timeout`]. Not needed
    /// under a [`Monitor`](crate::Monitor), which has its own timeout; useful when calling
    /// [`check`](Check::check) directly.
    pub fn timeout(mut self, after: Duration) -> HttpCheck {
        self.timeout = Some(after);
        self
    }

    /// Speaks HTTPS: TLS with these settings, then HTTP/1.1 (ALPN `http/1.1`). Needs the `tls`
    /// feature.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Tls) -> HttpCheck {
        self.tls = Some(tls);
        self
    }

    /// The `Host` header value.
    fn host_header(&self) -> String {
        self.host.clone().unwrap_or_else(|| self.addr.to_string())
    }

    /// `GET /health`, for error texts.
    fn request_line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// An error about the exchange itself.
    fn http_error(&self, reason: String) -> CheckError {
        CheckError::Http {
            addr: self.addr,
            request: self.request_line(),
            reason,
        }
    }

    fn build_request(&self) -> Result<Request<Empty<Bytes>>, CheckError> {
        let invalid = |what: &str, e: &dyn fmt::Display| {
            self.http_error(format!("invalid request {what}: {e}"))
        };
        let method =
            Method::from_bytes(self.method.as_bytes()).map_err(|e| invalid("method", &e))?;
        let uri: Uri = self.path.parse().map_err(|e| invalid("path", &e))?;
        if uri.scheme().is_some() || !(self.path.starts_with('/') || self.path == "*") {
            return Err(invalid("path", &"must start with '/' (or be '*')"));
        }
        let mut request = Request::new(Empty::new());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        let host = HeaderValue::try_from(self.host_header()).map_err(|e| invalid("Host", &e))?;
        headers.insert(HOST, host);
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        let mut replaced = Vec::new();
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str()).map_err(|e| invalid("header", &e))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| invalid(&format!("header {name}"), &e))?;
            // The first header of a default name replaces the default, later ones add.
            if (name == USER_AGENT || name == CONNECTION) && !replaced.contains(&name) {
                replaced.push(name.clone());
                headers.insert(name, value);
            } else {
                headers.append(name, value);
            }
        }
        Ok(request)
    }

    /// One check, without the optional timeout.
    async fn run(&self) -> Result<(), CheckError> {
        let request = self.build_request()?;
        let addr = self.addr;
        // Made like TcpCheck's: the ACK rides on the request, the close leaves no TIME_WAIT.
        let tcp = crate::tcp::connect(addr)
            .await
            .map_err(|source| CheckError::Connect { addr, source })?;
        // Small request, one write: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls.connect(addr, &self.host_header(), tcp).await?;
            return self.exchange(stream, request).await;
        }
        self.exchange(tcp, request).await
    }

    /// Sends the request on a connected stream and judges the response.
    async fn exchange<S>(&self, stream: S, request: Request<Empty<Bytes>>) -> Result<(), CheckError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // hyper's read buffer bounds the response head and each body read.
        let max_buf = self.body_limit.saturating_add(16 * 1024);
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(max_buf)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_error(error_chain(&e)))?;
        // The connection is driven here, not in a spawned task, so dropping the check (the
        // monitor's timeout) closes the socket. Its errors reach the request and the body;
        // once it is done it must not end the exchange early (body data may still be queued).
        let drive = async move {
            let _ = connection.await;
            std::future::pending::<Infallible>().await
        };
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.http_error(error_chain(&e)))?;
            self.judge(response).await
        };
        tokio::select! {
            result = exchange => result,
            never = drive => match never {},
        }
    }

    async fn judge(&self, response: Response<Incoming>) -> Result<(), CheckError> {
        let status = response.status().as_u16();
        if !self.status.matches(status) {
            return Err(CheckError::HttpStatus {
                addr: self.addr,
                request: self.request_line(),
                status,
                expected: self.status.to_string(),
            });
        }
        let Some(text) = &self.body else {
            return Ok(());
        };
        let mut finder = Finder::new(text.as_bytes(), self.body_limit);
        if finder.found() {
            return Ok(());
        }
        let mut body = response.into_body();
        // At the limit the rest of the body is never read.
        while !finder.full() {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| self.http_error(format!("reading body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                finder.feed(&data);
                if finder.found() {
                    return Ok(());
                }
            }
        }
        Err(CheckError::HttpBody {
            addr: self.addr,
            request: self.request_line(),
            expected: text.clone(),
            searched: finder.len(),
            // Bytes left out, or more to come (a body of exactly the limit is whole).
            limit_reached: finder.cut || (finder.full() && !body.is_end_stream()),
        })
    }
}

#[async_trait]
impl Check for HttpCheck {
    async fn check(&self) -> Result<(), CheckError> {
        match self.timeout {
            Some(after) => tokio::time::timeout(after, self.run())
                .await
                .unwrap_or(Err(CheckError::Timeout { after })),
            None => self.run().await,
        }
    }

    fn describe(&self) -> String {
        #[cfg(feature = "tls")]
        let (scheme, note) = match &self.tls {
            Some(tls) => ("https", tls.describe()),
            None => ("http", ""),
        };
        #[cfg(not(feature = "tls"))]
        let (scheme, note) = ("http", "");
        let mut out = format!("http {} {scheme}://{}{}", self.method, self.addr, self.path);
        if let Some(host) = &self.host {
            out.push_str(&format!(" (Host: {host})"));
        }
        out.push_str(note);
        out
    }
}

/// The statuses that pass: a union of ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StatusSet(Vec<RangeInclusive<u16>>);

impl Default for StatusSet {
    /// Any 2xx or 3xx, as HAProxy's `http-check expect` default.
    fn default() -> StatusSet {
        StatusSet(vec![200..=399])
    }
}

impl StatusSet {
    fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

impl fmt::Display for StatusSet {
    /// `2xx/3xx`, `200`, `200/204`, `200-249`; `nothing` for an empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            let (start, end) = (*range.start(), *range.end());
            if start == end {
                write!(f, "{start}")?;
            } else if start.is_multiple_of(100) && (end - start) % 100 == 99 {
                // Whole hundreds: 2xx, or 2xx/3xx for 200..=399.
                for (j, hundred) in (start / 100..=end / 100).enumerate() {
                    if j > 0 {
                        f.write_str("/")?;
                    }
                    write!(f, "{hundred}xx")?;
                }
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Searches a body for a string as it arrives, keeping at most `limit` bytes.
struct Finder<'a> {
    needle: &'a [u8],
    limit: usize,
    seen: Vec<u8>,
    found: bool,
    /// Bytes were left out for the limit.
    cut: bool,
}

impl<'a> Finder<'a> {
    fn new(needle: &'a [u8], limit: usize) -> Finder<'a> {
        Finder {
            needle,
            limit,
            seen: Vec::new(),
            found: needle.is_empty(),
            cut: false,
        }
    }

    /// Takes the next chunk, or as much of it as the limit allows.
    fn feed(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let take = chunk.len().min(self.limit - self.seen.len());
        self.cut |= take < chunk.len();
        // Only the new bytes and the tail that a match could start in need searching.
        let from = self.seen.len().saturating_sub(self.needle.len() - 1);
        self.seen.extend_from_slice(&chunk[..take]);
        self.found = self.seen[from..]
            .windows(self.needle.len())
            .any(|w| w == self.needle);
    }

    fn found(&self) -> bool {
        self.found
    }

    fn full(&self) -> bool {
        self.seen.len() >= self.limit
    }

    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_print_for_stats_pages() {
        let show = |c: HttpCheck| c.status.to_string();
        let c = || HttpCheck::new(SocketAddr::from(([127, 0, 0, 1], 80)));
        assert_eq!(show(c()), "2xx/3xx");
        assert_eq!(show(c().expect_status(200)), "200");
        assert_eq!(show(c().expect_statuses([200, 204])), "200/204");
        assert_eq!(show(c().expect_status_range(200..300)), "2xx");
        assert_eq!(show(c().expect_status_range(200..=249)), "200-249");
        let (high, low) = (300, 200); // an empty range, deliberately
        assert_eq!(show(c().expect_status_range(high..low)), "nothing");
        assert_eq!(show(c().expect_status_range(..)), "0-65535");
        assert!(c().status.matches(399) && !c().status.matches(400));
        assert!(!c().expect_status_range(high..low).status.matches(250));
        assert!(!c().expect_status_range(..0).status.matches(0));
    }

    #[test]
    fn finder_matches_across_chunks_and_stops_at_the_limit() {
        let mut f = Finder::new(b"needle", 100);
        f.feed(b"hay ne");
        assert!(!f.found());
        f.feed(b"edle hay");
        assert!(f.found());

        let mut f = Finder::new(b"needle", 10);
        f.feed(b"0123456");
        f.feed(b"789needle");
        assert!(!f.found() && f.full() && f.cut);
        assert_eq!(f.len(), 10);

        let mut f = Finder::new(b"needle", 4);
        f.feed(b"0123");
        assert!(!f.found() && f.full() && !f.cut);

        // At the limit exactly, a match ending on the last byte counts.
        let mut f = Finder::new(b"needle", 10);
        f.feed(b"0123");
        f.feed(b"needleXYZ");
        assert!(f.found());

        assert!(Finder::new(b"", 0).found());
    }

    #[test]
    fn requests_carry_the_defaults_and_replacements() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let r = HttpCheck::new(addr).build_request().expect("valid");
        assert_eq!(r.method(), Method::GET);
        assert_eq!(r.uri(), "/");
        assert_eq!(r.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(r.headers()[CONNECTION], "close");
        assert_eq!(r.headers()[USER_AGENT], USER_AGENT_VALUE);

        let r = HttpCheck::new(addr)
            .header("User-Agent", "probe")
            .header("HOST", "example.com")
            .header("X-A", "1")
            .header("X-A", "2")
            .build_request()
            .expect("valid");
        assert_eq!(r.headers()[HOST], "example.com");
        assert_eq!(r.headers()[USER_AGENT], "probe");
        assert_eq!(r.headers().get_all("x-a").iter().count(), 2);

        let err = HttpCheck::new(addr)
            .path("health")
            .build_request()
            .unwrap_err();
        assert!(err.to_string().contains("invalid request path"), "{err}");
        let err = HttpCheck::new(addr)
            .method("G T")
            .build_request()
            .unwrap_err();
        assert!(err.to_string().contains("invalid request method"), "{err}");
        let err = HttpCheck::new(addr)
            .header("a b", "1")
            .build_request()
            .unwrap_err();
        assert!(err.to_string().contains("invalid request header"), "{err}");
    }
}
