//! A minimal HTTP/1.1 responder for vrrpd's `/metrics`: one request per connection, answered
//! by a handler, then the connection closes.
//! A request head must arrive whole within [`TIMEOUT`] and fit in [`MAX_HEAD`] bytes, which is
//! what keeps slow or flooding clients from holding it (HAProxy's `timeout http-request`).

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::warn;

/// A request head larger than this is refused (a browser sends a kilobyte or two).
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// How long a client may take to send its request and read the answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed request head (the body, if any, is never read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, ...
    pub(crate) method: String,
    /// The target up to `?`.
    pub(crate) path: String,
}

impl Request {
    /// Parses a request head (its request line; headers are not read); `None` when it is not
    /// HTTP/1.x.
    pub(crate) fn parse(head: &[u8]) -> Option<Request> {
        let line = head.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?;
        let mut parts = line.trim_end_matches('\r').split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
            return None;
        }
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        Some(Request {
            method: method.to_owned(),
            path: path.to_owned(),
        })
    }

    /// `GET` or `HEAD`: the only methods these endpoints serve.
    pub(crate) fn is_get_or_head(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// A complete response; the connection closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// Code and reason, e.g. `"200 OK"`.
    pub(crate) status: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Response {
    /// A response of `content_type`.
    pub(crate) fn new(status: &'static str, content_type: &'static str, body: String) -> Self {
        Response {
            status,
            content_type,
            body,
        }
    }

    /// A plain-text response.
    pub(crate) fn text(status: &'static str, body: impl Into<String>) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// The bytes on the wire; a `HEAD` answer (`head_only`) keeps the length but not the body.
    pub(crate) fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.status.starts_with("405") {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// Answers every connection on `listener` with `handler` until the task is aborted; `what`
/// names the endpoint in log lines.
pub(crate) fn serve<H, F>(listener: TcpListener, what: &'static str, handler: H) -> JoinHandle<()>
where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send,
{
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(TIMEOUT, answer(stream, handler)).await;
                    });
                }
                Err(e) => {
                    warn!("{what}: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn answer<H, F>(mut stream: TcpStream, handler: H) -> std::io::Result<()>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    let complete = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_HEAD {
            break false;
        }
    };
    let bytes = match complete.then(|| Request::parse(&head)).flatten() {
        Some(request) => {
            let head_only = request.method == "HEAD";
            handler(request).await.encode(head_only)
        }
        None => Response::text("400 Bad Request", "bad request\n").encode(false),
    };
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_parses_into_method_and_path() {
        let r = Request::parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/metrics");
        assert!(r.is_get_or_head());
        assert_eq!(Request::parse(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(Request::parse(b"GET / SPDY/3\r\n\r\n"), None);
        assert_eq!(Request::parse(b"\xff\xfe\r\n\r\n"), None);
        let post = Request::parse(b"POST /metrics HTTP/1.0\n\n").unwrap();
        assert!(!post.is_get_or_head());
    }

    #[test]
    fn responses_carry_length_type_and_close() {
        let ok = Response::new("200 OK", "text/plain", "a 1\n".into());
        assert_eq!(
            String::from_utf8(ok.encode(false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let head = String::from_utf8(ok.encode(true)).unwrap();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let r = Response::text("405 Method Not Allowed", "");
        let r = String::from_utf8(r.encode(false)).unwrap();
        assert!(r.ends_with("Allow: GET, HEAD\r\n\r\n"), "{r}");
    }
}
