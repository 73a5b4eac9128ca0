//! HTTP helpers (feature `http`): hash keys from requests ([`HashKey`]) and cookie stickiness
//! ([`StickyCookie`]).

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use http::header::{CACHE_CONTROL, COOKIE, HeaderName, HeaderValue, SET_COOKIE};
use http::{HeaderMap, Request};

use crate::balance::HashKeyOf;
use crate::{Algorithm, BackendSet, InFlight, NoBackend, PickContext};

/// The client's address, put in a request's extensions by the server that accepted it, for
/// [`HashKey::Source`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// What consistent hashing hashes in an HTTP request (HAProxy's `balance` arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address (`balance source`), from the [`ClientAddr`] extension.
    Source,
    /// The path (`balance uri`), with the query string when `whole` (`balance uri whole`).
    Uri {
        /// Include the query string.
        whole: bool,
    },
    /// A header's value (`balance hdr(name)`).
    Header(HeaderName),
    /// A query parameter's value (`balance url_param name`).
    UrlParam(String),
}

impl<B> HashKeyOf<Request<B>> for HashKey {
    fn hash_key(&self, request: &Request<B>, out: &mut Vec<u8>) -> bool {
        match self {
            HashKey::Source => match request.extensions().get::<ClientAddr>() {
                Some(ClientAddr(addr)) => {
                    match addr.ip() {
                        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                    }
                    true
                }
                None => false,
            },
            HashKey::Uri { whole } => {
                let uri = request.uri();
                out.extend_from_slice(uri.path().as_bytes());
                if *whole && let Some(q) = uri.query() {
                    out.push(b'?');
                    out.extend_from_slice(q.as_bytes());
                }
                true
            }
            HashKey::Header(name) => match request.headers().get(name) {
                Some(value) => {
                    out.extend_from_slice(value.as_bytes());
                    true
                }
                None => false,
            },
            HashKey::UrlParam(name) => {
                let Some(query) = request.uri().query() else {
                    return false;
                };
                let found = query.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == name).then_some(v)
                });
                match found {
                    Some(v) => {
                        out.extend_from_slice(v.as_bytes());
                        true
                    }
                    None => false,
                }
            }
        }
    }
}

/// Cookie stickiness as HAProxy's `cookie NAME insert indirect nocache`: the response of a
/// request that was balanced carries `Set-Cookie: NAME=<server>`; a later request presenting
/// it goes to that server while it is up (even if it is draining), and falls back to the
/// algorithm when it is down or gone. The server's value is its key's `Display` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickyCookie {
    name: String,
}

/// The outcome of [`StickyCookie::pick`].
#[derive(Debug)]
pub struct StickyPick<K> {
    /// The backend.
    pub key: K,
    /// Its in-flight count, held until dropped.
    pub in_flight: InFlight,
    /// Whether the response must set the cookie (the request had none, or a stale one).
    pub set_cookie: bool,
}

impl StickyCookie {
    /// Stickiness on cookie `name` (e.g. `SERVERID`).
    pub fn new(name: impl Into<String>) -> Self {
        StickyCookie { name: name.into() }
    }

    /// The cookie's value in a request's `Cookie` headers, if present.
    pub fn value<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == self.name).then_some(v)
            })
    }

    /// The backend for a request with these headers: the one its cookie names when that one
    /// can take it, else the algorithm's pick (and the cookie must be set on the response).
    pub fn pick<K, A>(
        &self,
        set: &BackendSet<K, A>,
        headers: &HeaderMap,
        context: &PickContext<'_>,
    ) -> Result<StickyPick<K>, NoBackend>
    where
        K: Clone + Eq + Hash + fmt::Display,
        A: Algorithm,
    {
        let snapshot = set.snapshot();
        if let Some(value) = self.value(headers)
            && let Some(backend) = snapshot.get_by_name(value)
            && backend.sticky_available()
            && snapshot
                .slot(backend.key())
                .is_none_or(|s| !context.exclude.contains(&s))
        {
            return Ok(StickyPick {
                key: backend.key().clone(),
                in_flight: snapshot.start(backend),
                set_cookie: false,
            });
        }
        let backend = snapshot.pick(set.algorithm(), context)?;
        Ok(StickyPick {
            key: backend.key().clone(),
            in_flight: snapshot.start(backend),
            set_cookie: true,
        })
    }

    /// `indirect`: removes this cookie from a request's `Cookie` headers before it goes to the
    /// server (the other cookies stay).
    pub fn strip(&self, headers: &mut HeaderMap) {
        let kept: Vec<String> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|pair| {
                !pair.is_empty() && pair.split_once('=').is_none_or(|(k, _)| k != self.name)
            })
            .map(str::to_owned)
            .collect();
        headers.remove(COOKIE);
        if !kept.is_empty()
            && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
        {
            headers.insert(COOKIE, v);
        }
    }

    /// `insert nocache`: adds `Set-Cookie: NAME=server; path=/` and `Cache-Control: private`
    /// (so shared caches do not hand one client's cookie to others) to a response. A server
    /// name that is not a valid cookie value is not set (the client is then balanced again).
    pub fn insert(&self, headers: &mut HeaderMap, server: &str) {
        if let Ok(v) = HeaderValue::from_str(&format!("{}={server}; path=/", self.name)) {
            headers.append(SET_COOKIE, v);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdminState, Health, RoundRobin};

    fn request(uri: &str) -> Request<()> {
        Request::builder().uri(uri).body(()).unwrap()
    }

    fn key_of(k: &HashKey, r: &Request<()>) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        k.hash_key(r, &mut out).then_some(out)
    }

    #[test]
    fn hash_keys_like_haproxy_balance_arguments() {
        let mut r = request("/img/a.png?size=2&user=42");
        r.headers_mut()
            .insert("x-tenant", HeaderValue::from_static("acme"));
        r.extensions_mut()
            .insert(ClientAddr("10.1.2.3:5555".parse().unwrap()));
        assert_eq!(key_of(&HashKey::Source, &r).unwrap(), [10, 1, 2, 3]);
        assert_eq!(
            key_of(&HashKey::Uri { whole: false }, &r).unwrap(),
            b"/img/a.png"
        );
        assert_eq!(
            key_of(&HashKey::Uri { whole: true }, &r).unwrap(),
            b"/img/a.png?size=2&user=42"
        );
        let tenant = HashKey::Header(HeaderName::from_static("x-tenant"));
        assert_eq!(key_of(&tenant, &r).unwrap(), b"acme");
        assert_eq!(
            key_of(&HashKey::UrlParam("user".into()), &r).unwrap(),
            b"42"
        );
        // Missing: no key (round robin fallback).
        let bare = request("/");
        assert_eq!(key_of(&HashKey::Source, &bare), None);
        assert_eq!(key_of(&tenant, &bare), None);
        assert_eq!(key_of(&HashKey::UrlParam("user".into()), &bare), None);
    }

    #[test]
    fn sticky_cookie_pins_falls_back_and_strips() {
        let set = BackendSet::new(RoundRobin);
        for name in ["web1", "web2", "web3"] {
            set.insert(name.to_string(), 1).unwrap();
        }
        let cookie = StickyCookie::new("SERVERID");
        // No cookie: balanced, cookie to set.
        let first = cookie
            .pick(&set, &HeaderMap::new(), &PickContext::default())
            .unwrap();
        assert!(first.set_cookie);
        let mut response = HeaderMap::new();
        cookie.insert(&mut response, &first.key);
        assert_eq!(
            response[SET_COOKIE],
            format!("SERVERID={}; path=/", first.key)
        );
        assert_eq!(response[CACHE_CONTROL], "private");
        // With the cookie: pinned, every time, even while draining.
        let mut request = HeaderMap::new();
        request.insert(
            COOKIE,
            HeaderValue::from_static("lang=en; SERVERID=web2; t=1"),
        );
        for _ in 0..5 {
            let p = cookie
                .pick(&set, &request, &PickContext::default())
                .unwrap();
            assert_eq!((p.key.as_str(), p.set_cookie), ("web2", false));
        }
        set.set_admin(&"web2".to_string(), AdminState::Drain)
            .unwrap();
        assert_eq!(
            cookie
                .pick(&set, &request, &PickContext::default())
                .unwrap()
                .key,
            "web2"
        );
        // Down: falls back to the algorithm, never web2, and resets the cookie.
        set.set_health(&"web2".to_string(), Health::Down).unwrap();
        for _ in 0..5 {
            let p = cookie
                .pick(&set, &request, &PickContext::default())
                .unwrap();
            assert_ne!(p.key, "web2");
            assert!(p.set_cookie);
        }
        // indirect: the server never sees SERVERID.
        cookie.strip(&mut request);
        assert_eq!(request[COOKIE], "lang=en; t=1");
    }
}
