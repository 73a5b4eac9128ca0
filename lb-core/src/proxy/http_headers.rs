//! What the HTTP proxy does to headers on the way through: hop-by-hop headers removed both
//! ways (RFC 9110 §7.6.1), `X-Forwarded-For` appended, the request made origin-form HTTP/1.1
//! for the server; and the proxy's own answers (redirect to https, 502/503/504).

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};

/// `X-Forwarded-For`.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes the hop-by-hop headers: those `Connection` names, then `Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding` and `Upgrade`.
///
/// One pass over the names finds them (a request or response seldom has more than a few
/// headers, most often none of these or only `Connection: keep-alive`), so the common case
/// hashes nothing and allocates nothing.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let mut connection = false;
    let mut others = false;
    for name in headers.keys() {
        if *name == CONNECTION {
            connection = true;
        } else if is_hop_by_hop(name) {
            others = true;
        }
    }
    if connection {
        // The names it lists, except the usual `keep-alive` / `close` (no header to remove
        // beyond `Keep-Alive`, which goes anyway).
        let listed = headers
            .get_all(&CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|token| {
                !token.eq_ignore_ascii_case("keep-alive") && !token.eq_ignore_ascii_case("close")
            });
        if listed {
            // Collected first: the names borrow the map that loses them.
            let named: Vec<HeaderName> = headers
                .get_all(&CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
                .collect();
            for name in named {
                headers.remove(name);
            }
        }
        headers.remove(&CONNECTION);
    }
    if others {
        for name in [
            &KEEP_ALIVE,
            &PROXY_CONNECTION,
            &TE,
            &TRAILER,
            &TRANSFER_ENCODING,
            &UPGRADE,
        ] {
            headers.remove(name);
        }
    }
}

/// Whether `name` is a hop-by-hop header other than `Connection`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
        || *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
}

/// Makes a client's request fit for an HTTP/1.1 server connection: HTTP/1.1, origin-form
/// target, and a `Host` header (HTTP/2 requests carry the host in the URI's authority).
pub(crate) fn to_origin_form<B>(request: &mut Request<B>) {
    *request.version_mut() = Version::HTTP_11;
    if request.uri().authority().is_none() {
        return;
    }
    if !request.headers().contains_key(HOST)
        && let Some(authority) = request.uri().authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(HOST, host);
    }
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
}

/// The 301 answer of a `redirect_https` listener: `https://` + the request's host (without
/// `:80`) + its path and query. `None` when the request names no host.
pub(crate) fn redirect_https<B>(request: &Request<B>) -> Option<Response<Bytes>> {
    let host = match request.headers().get(HOST) {
        Some(host) => host.to_str().ok()?,
        None => request.uri().authority()?.as_str(),
    };
    let host = host.strip_suffix(":80").unwrap_or(host);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = HeaderValue::from_str(&format!("https://{host}{path}")).ok()?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    response.headers_mut().insert(LOCATION, location);
    Some(response)
}

/// The proxy's own error answer with a small HTML body, as HAProxy's.
pub(crate) fn error_response(status: StatusCode) -> Response<Bytes> {
    let body: &'static [u8] = match status {
        StatusCode::BAD_REQUEST => {
            b"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
        }
        StatusCode::BAD_GATEWAY => {
            b"<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"
        }
        StatusCode::GATEWAY_TIMEOUT => {
            b"<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"
        }
        _ => {
            b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
        }
    };
    let mut response = Response::new(Bytes::from_static(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names `remove_hop_by_hop` leaves of `headers`, sorted.
    fn left_after_removal(headers: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut map = HeaderMap::new();
        for &(name, value) in headers {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut map);
        let mut left: Vec<String> = map.keys().map(ToString::to_string).collect();
        left.sort_unstable();
        left
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let left = left_after_removal(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
            ("host", "example.com"),
        ]);
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn a_plain_keep_alive_connection_header_goes_and_the_rest_stays() {
        let left = left_after_removal(&[
            ("connection", "Keep-Alive"),
            ("keep-alive", "timeout=5"),
            ("content-length", "3"),
            ("x-backend", "18081"),
        ]);
        assert_eq!(left, ["content-length", "x-backend"]);
        let mut only_upgrade = HeaderMap::new();
        only_upgrade.insert(UPGRADE, HeaderValue::from_static("websocket"));
        remove_hop_by_hop(&mut only_upgrade);
        assert!(only_upgrade.is_empty());
    }

    #[test]
    fn an_http2_request_becomes_origin_form_with_a_host_header() {
        let mut request = Request::builder()
            .version(Version::HTTP_2)
            .uri("https://example.com:8443/a/b?c=d")
            .body(())
            .unwrap();
        to_origin_form(&mut request);
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.uri(), "/a/b?c=d");
        assert_eq!(request.headers()[HOST], "example.com:8443");
    }

    #[test]
    fn redirect_https_keeps_host_path_and_query_and_drops_port_80() {
        let request = Request::builder()
            .uri("/shop/cart?item=3")
            .header(HOST, "example.com:80")
            .body(())
            .unwrap();
        let response = redirect_https(&request).unwrap();
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            response.headers()[LOCATION],
            "https://example.com/shop/cart?item=3"
        );
        let no_host = Request::builder().uri("/").body(()).unwrap();
        assert!(redirect_https(&no_host).is_none());
    }

    #[test]
    fn error_pages_are_small_html() {
        let response = error_response(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.status(), 503);
        assert!(response.body().starts_with(b"<html><body><h1>503"));
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
    }
}
