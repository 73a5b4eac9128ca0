//! [`HttpProxy`]: lbd's `mode = "http"` listener (HTTP/1.1 keep-alive and, over TLS with ALPN
//! `h2`, HTTP/2 towards clients; pooled HTTP/1.1 connections towards servers).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::balance::HashKeyOf;
use crate::{Algorithm, HashKey, StickyCookie};
use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
#[cfg(feature = "proxy-tls")]
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::error::ProxyError;
use super::frontend::{Frontend, Listening, alike};
use super::http_body::{Idle, ProxyBody, ReqBody};
use super::http_head_timer::{self, HeadClock};
use super::http_headers::{
    X_FORWARDED_FOR, error_response, redirect_https, remove_hop_by_hop, to_origin_form,
};
use super::servers::{Pick, Refused, Server, Slot, Upstream};
use super::settings::{HttpSettings, ServerSettings};

/// A running HTTP proxy: it serves clients on its listener (HTTP/1.1 with keep-alive, or
/// HTTP/2 when a TLS client negotiated `h2`), picks a server for each request through an
/// `lb-core` [`BackendSet`](crate::BackendSet) (hash key, stickiness cookie), and forwards the request over a
/// pooled keep-alive connection to it, streaming both bodies.
///
/// Dropping it stops accepting and closes every connection at once; [`drain`](Self::drain)
/// lets them finish first.
#[must_use = "dropping the proxy stops it and closes its connections"]
pub struct HttpProxy<A: Algorithm> {
    shared: Arc<Shared<A>>,
    listening: Listening<State>,
}

alike!(HttpProxy);

/// What the connections are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Serving,
    /// Handing clients over ([`HttpProxy::close_connections`]): every response says
    /// `Connection: close`, a connection idle for [`CLOSE_IDLE_AFTER`] closes, HTTP/2 sends
    /// GOAWAY; new connections are still served. Back to `Serving` on
    /// [`HttpProxy::keep_connections`].
    Closing,
    /// Finish the request in flight, then close (HTTP/2: GOAWAY).
    Draining,
    /// Close now.
    Stopped,
}

/// In [`State::Closing`], how long a keep-alive connection may wait for its next request
/// before it is closed. A client using the connection sends its next request within
/// microseconds of the last response (and then gets `Connection: close` on its answer); closing
/// the connection at once would race with that request on the wire, which the client would see
/// fail. A connection idle this long is not in use.
const CLOSE_IDLE_AFTER: Duration = Duration::from_millis(100);

/// What every connection shares.
struct Shared<A: Algorithm> {
    front: Frontend<A, Idle>,
    /// Whether responses say `Connection: close` ([`State::Closing`], read per response).
    closing: std::sync::atomic::AtomicBool,
    server_timeout: Duration,
    http_request: Duration,
    hash_key: Option<HashKey>,
    cookie: Option<StickyCookie>,
    redirect_https: bool,
    forward_for: bool,
    http1: hyper::server::conn::http1::Builder,
    #[cfg(feature = "proxy-tls")]
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

/// One client connection: the proxy and what each of its requests needs about the client.
struct Client<A: Algorithm> {
    shared: Arc<Shared<A>>,
    /// When a request head is awaited (HTTP/1: `timeouts.http_request`).
    head_clock: Arc<HeadClock>,
    /// The client's address as `X-Forwarded-For` carries it.
    forwarded_for: HeaderValue,
    /// The client's IP address as `balance source` hashes it.
    source: ([u8; 16], usize),
}

impl<A: Algorithm> HttpProxy<A> {
    alike!(
        accessors,
        in_flight = "request in flight on its server until its response's last byte",
        drain = "asks every connection to finish its request in flight and close (idle \
            keep-alive connections close at once), then closes those left at `deadline`."
    );

    /// Listens on `settings.bind` (with `SO_REUSEADDR` and `IP_FREEBIND`) and starts serving
    /// with `algorithm`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with IO and time enabled.
    pub fn start(settings: HttpSettings, algorithm: A) -> Result<Self, ProxyError> {
        let HttpSettings {
            listen: settings,
            http_request,
            hash_key,
            cookie,
            redirect_https,
            forward_for,
        } = settings;
        let server_timeout = settings.timeouts.server;
        let (front, bound) =
            Frontend::open(settings, algorithm, redirect_https, |_| Idle::default())?;
        let mut http1 = hyper::server::conn::http1::Builder::new();
        // `timeouts.http_request` is kept by a `HeadClock` per connection (see `drive`):
        // hyper's own would arm a timer for every request.
        http1.header_read_timeout(None).keep_alive(true);
        #[cfg(feature = "proxy-tls")]
        let http2 = {
            let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            http2.timer(TokioTimer::new()).keep_alive_interval(None);
            http2
        };
        let shared = Arc::new(Shared {
            front,
            server_timeout,
            http_request,
            hash_key,
            cookie: cookie.map(StickyCookie::new),
            redirect_https,
            forward_for,
            http1,
            #[cfg(feature = "proxy-tls")]
            http2,
            closing: std::sync::atomic::AtomicBool::new(false),
        });
        let states = [State::Serving, State::Draining, State::Stopped];
        let listening = Listening::start(&shared, |s| &s.front, bound, states, serve, "http");
        Ok(HttpProxy { shared, listening })
    }

    /// Replaces its servers while it runs (a reload), without closing any client connection:
    /// new requests, on kept-alive connections too, are balanced over `servers`; requests in
    /// flight on a server that went away finish there (its pooled connections close after
    /// them). A server whose name, address and TLS configuration (the same `Arc`) stay keeps
    /// its counters, its pooled connections and its health in [`backends`](Self::backends);
    /// new servers join up; every weight and `maxconn` is set as `servers` says.
    ///
    /// Fails, changing nothing, when `servers` is empty (allowed with `redirect_https`) or
    /// names a server twice.
    pub fn update_servers(&self, servers: &[ServerSettings]) -> Result<(), ProxyError> {
        (self.shared.front).update_servers(servers, self.shared.redirect_https, |_| Idle::default())
    }

    /// Starts handing its clients over to another host (this host is about to give up the
    /// address it listens on), so that none of their requests fails:
    /// - new clients are ignored, neither refused nor accepted: their SYNs go unanswered and
    ///   they send them again a second later, to whichever host holds the address by then
    ///   (clients already in the accept queue are served);
    /// - every HTTP/1 response from now on carries `Connection: close` and its connection
    ///   closes after it; a keep-alive connection left idle for 100 ms closes (sooner would
    ///   race with a request already on its way); HTTP/2 connections get GOAWAY.
    ///
    /// [`wait_idle`](Self::wait_idle) then tells when the last connection has gone: the host
    /// can hand the address over. [`keep_connections`](Self::keep_connections) undoes it.
    /// Does nothing to the connections while draining.
    pub fn close_connections(&self) {
        self.set_closing(true);
    }

    /// Keep-alive again after [`close_connections`](Self::close_connections) (this host holds
    /// the address again). Connections already told to close still close.
    pub fn keep_connections(&self) {
        self.set_closing(false);
    }

    /// Closing (`on`: [`State::Serving`] → [`State::Closing`]) or serving again; a draining
    /// proxy stays as it is.
    fn set_closing(&self, on: bool) {
        self.shared.front.ignore_new_clients(on);
        self.shared.closing.store(on, Ordering::Relaxed);
        let (from, to) = if on {
            (State::Serving, State::Closing)
        } else {
            (State::Closing, State::Serving)
        };
        self.listening.signal.send_if_modified(|s| {
            let change = *s == from;
            if change {
                *s = to;
            }
            change
        });
    }
}

/// One client connection, from accept to close.
async fn serve<A: Algorithm>(
    shared: Arc<Shared<A>>,
    stream: TcpStream,
    peer: SocketAddr,
    mut state: watch::Receiver<State>,
) {
    let _ = stream.set_nodelay(true);
    let mut source = [0u8; 16];
    let source_len = match peer.ip() {
        IpAddr::V4(ip) => {
            source[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            source.copy_from_slice(&ip.octets());
            16
        }
    };
    let forwarded_for = HeaderValue::from_str(&peer.ip().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    let head_clock = Arc::new(HeadClock::new());
    let client = Arc::new(Client {
        shared: shared.clone(),
        head_clock: head_clock.clone(),
        forwarded_for,
        source: (source, source_len),
    });
    let service = service_fn(move |request| {
        let client = client.clone();
        async move { Ok::<_, Infallible>(client.handle(request).await) }
    });
    #[cfg(feature = "proxy-tls")]
    let tls = shared.front.tls.as_ref();
    #[cfg(not(feature = "proxy-tls"))]
    let tls: Option<std::convert::Infallible> = None;
    match tls {
        None => {
            let connection = shared.http1.serve_connection(TokioIo::new(stream), service);
            let head = Some((&*head_clock, shared.http_request));
            drive(connection, &mut state, &shared.front.name, peer, head).await;
        }
        #[cfg(not(feature = "proxy-tls"))]
        Some(never) => match never {},
        #[cfg(feature = "proxy-tls")]
        Some(acceptor) => {
            let handshake = tokio::time::timeout(shared.http_request, acceptor.accept(stream));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(proxy = %shared.front.name, %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(proxy = %shared.front.name, %peer, "TLS handshake timed out");
                    return;
                }
            };
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                let connection = shared.http2.serve_connection(TokioIo::new(tls), service);
                drive(connection, &mut state, &shared.front.name, peer, None).await;
            } else {
                let connection = shared.http1.serve_connection(TokioIo::new(tls), service);
                let head = Some((&*head_clock, shared.http_request));
                drive(connection, &mut state, &shared.front.name, peer, head).await;
            }
        }
    }
}

/// A served connection that can be asked to finish (hyper's HTTP/1 and HTTP/2 connections).
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn shut_down(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(feature = "proxy-tls")]
impl<I, S, B> Graceful for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serves a connection until it ends; when the proxy drains, lets it finish its request in
/// flight, and when it stops, drops it. With `head` (HTTP/1), a connection that waited for a
/// request head longer than its timeout is closed.
async fn drive<C: Graceful>(
    connection: C,
    state: &mut watch::Receiver<State>,
    proxy: &str,
    peer: SocketAddr,
    head: Option<(&HeadClock, Duration)>,
) {
    tokio::pin!(connection);
    let head_expired = async {
        match head {
            Some((clock, timeout)) => http_head_timer::expired(clock, timeout).await,
            None => std::future::pending().await,
        }
    };
    // While closing: an HTTP/1 connection idle for CLOSE_IDLE_AFTER, an HTTP/2 one at once.
    let mut closing = state.clone();
    let idle_while_closing = async {
        loop {
            if closing.wait_for(|s| *s != State::Serving).await.is_err() {
                return std::future::pending().await;
            }
            let Some((clock, _)) = head else { return };
            // Idle for CLOSE_IDLE_AFTER since closing began, not only since the last response:
            // a connection whose next request waits unread (the runtime was busy) is in use.
            let idle = async {
                tokio::time::sleep(CLOSE_IDLE_AFTER).await;
                http_head_timer::expired(clock, CLOSE_IDLE_AFTER).await;
            };
            tokio::select! {
                () = idle => return,
                _ = closing.wait_for(|s| *s == State::Serving) => {}
            }
        }
    };
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        // A closed channel (the proxy dropped) ends the wait too.
        _ = state.wait_for(|s| *s >= State::Draining) => None,
        () = idle_while_closing => None,
        () = head_expired => {
            tracing::debug!(proxy, %peer, "no request head within timeouts.http_request: closing");
            return;
        }
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            connection.as_mut().shut_down();
            tokio::select! {
                ended = connection.as_mut() => ended,
                _ = state.wait_for(|s| *s >= State::Stopped) => Ok(()),
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(proxy, %peer, error = %e, "client connection ended");
    }
}

/// Opens a connection to `server` (TCP, then TLS if configured) and shakes hands as HTTP/1.1;
/// the connection's task is spawned.
async fn open(server: &Server<Idle>) -> io::Result<SendRequest<ReqBody>> {
    match server.connect().await? {
        Upstream::Plain(stream) => handshake(stream).await,
        #[cfg(feature = "proxy-tls")]
        Upstream::Tls(tls) => handshake(*tls).await,
    }
}

async fn handshake<T>(io: T) -> io::Result<SendRequest<ReqBody>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A request head (and a small body) goes out in one flat `write`: cheaper than a
    // vectored write of several pieces.
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "server connection ended");
        }
    });
    Ok(sender)
}

/// Whether a request that may have reached the server can be sent again (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

impl<A: Algorithm> Client<A> {
    /// One request: counted, answered (redirect, forward, or the proxy's error).
    async fn handle(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        self.head_clock.head_received();
        let shared = &*self.shared;
        let http1 = request.version() < http::Version::HTTP_2;
        shared
            .front
            .counters
            .requests
            .fetch_add(1, Ordering::Relaxed);
        let response = if shared.redirect_https {
            own(redirect_https(&request).unwrap_or_else(|| error_response(StatusCode::BAD_REQUEST)))
        } else {
            self.forward(request).await
        };
        shared
            .front
            .counters
            .responses
            .count(response.status().as_u16());
        let mut response = response;
        if http1 && shared.closing.load(Ordering::Relaxed) {
            // hyper closes the connection after a response that says so.
            (response.headers_mut())
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.body_mut().on_end(self.head_clock.clone());
        response
    }

    /// Picks a server, sends the request over a pooled (or new) connection, and returns its
    /// response with the body streaming.
    async fn forward(&self, mut request: Request<Incoming>) -> Response<ProxyBody> {
        let shared = &*self.shared;
        let mut hashed = Vec::new();
        let key: Option<&[u8]> = match &shared.hash_key {
            None => None,
            Some(HashKey::Source) => Some(&self.source.0[..self.source.1]),
            Some(key) => key.hash_key(&request, &mut hashed).then_some(&hashed[..]),
        };
        let sticky = shared
            .cookie
            .as_ref()
            .and_then(|c| c.value(request.headers()));
        let reserved = shared
            .front
            .servers
            .reserve(&Pick { key, sticky }, None)
            .await;
        // Retries balance: the cookie's server was the first choice.
        let pick = Pick { key, sticky: None };
        let mut slot = match reserved {
            Ok(slot) => slot,
            Err(refused) => return self.refused(refused),
        };

        let headers = request.headers_mut();
        remove_hop_by_hop(headers);
        if shared.forward_for {
            headers.append(&X_FORWARDED_FOR, self.forwarded_for.clone());
        }
        if let Some(cookie) = &shared.cookie
            && headers.contains_key(http::header::COOKIE)
        {
            cookie.strip(headers);
        }
        to_origin_form(&mut request);
        // What to send again if the connection fails before the response: a request without
        // a body that is safe to repeat.
        let spare = (idempotent(request.method()) && request.body().is_end_stream()).then(|| {
            let mut copy = Request::new(());
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.headers_mut() = request.headers().clone();
            copy
        });
        let (parts, body) = request.into_parts();
        let mut request = Some(Request::from_parts(
            parts,
            ReqBody::counted(body, slot.table().clone(), slot.index()),
        ));

        let mut attempts = shared.front.servers.policy.retry.attempts();
        // After a pooled connection failed, the next attempt opens a new one.
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                take_ready(&slot.server().extra).await
            };
            let is_pooled = pooled.is_some();
            let mut sender = match pooled {
                Some(sender) => sender,
                None => match shared
                    .front
                    .servers
                    .connect(&pick, slot, &mut attempts, open)
                    .await
                {
                    Ok((sender, connected)) => {
                        slot = connected;
                        sender
                    }
                    Err(refused) => return self.refused(refused),
                },
            };
            let Some(outgoing) = request.take() else {
                return self.failed(&slot, StatusCode::BAD_GATEWAY);
            };
            let server = &slot.server().counters;
            server.established();
            let sent =
                tokio::time::timeout(shared.server_timeout, sender.try_send_request(outgoing));
            match sent.await {
                Ok(Ok(response)) => return self.respond(response, slot, sender),
                Err(_) => {
                    tracing::debug!(proxy = %shared.front.name, server = %server.name, "no response within timeouts.server");
                    return self.failed(&slot, StatusCode::GATEWAY_TIMEOUT);
                }
                Ok(Err(mut error)) => {
                    let returned = error.take_message();
                    let error = error.into_error();
                    tracing::debug!(proxy = %shared.front.name, server = %server.name, %error, pooled = is_pooled, "request failed");
                    // A parse error is the server's bad response: not retried.
                    let again = if error.is_parse() {
                        None
                    } else {
                        returned.or_else(|| {
                            spare.as_ref().map(|spare| {
                                let mut again = Request::new(ReqBody::empty());
                                *again.method_mut() = spare.method().clone();
                                *again.uri_mut() = spare.uri().clone();
                                *again.headers_mut() = spare.headers().clone();
                                again
                            })
                        })
                    };
                    let Some(again) = again else {
                        return self.failed(&slot, StatusCode::BAD_GATEWAY);
                    };
                    request = Some(again);
                    if is_pooled {
                        // The server closed a kept connection (its keep-alive timeout, a
                        // restart): a new connection, not a retry.
                        fresh_only = true;
                        continue;
                    }
                    server.response_failed();
                    fresh_only = false;
                    slot = match shared
                        .front
                        .servers
                        .retry(&pick, slot, &mut attempts, false)
                        .await
                    {
                        Ok(next) => next,
                        Err(Refused::ConnectFailed) => {
                            shared.front.counters.failed.fetch_add(1, Ordering::Relaxed);
                            return own(error_response(StatusCode::BAD_GATEWAY));
                        }
                        Err(refused) => return self.refused(refused),
                    };
                }
            }
        }
    }

    /// The server's response on its way back: hop-by-hop headers removed, the stickiness
    /// cookie inserted if the request was balanced.
    fn respond(
        &self,
        response: Response<Incoming>,
        slot: Slot<Idle>,
        sender: SendRequest<ReqBody>,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        let server = slot.server();
        server.counters.responses.count(parts.status.as_u16());
        remove_hop_by_hop(&mut parts.headers);
        if let Some(cookie) = &self.shared.cookie
            && !slot.sticky
        {
            cookie.insert(&mut parts.headers, &server.settings.name);
        }
        Response::from_parts(parts, ProxyBody::streamed(body, slot, sender))
    }

    /// The server failed this request: counted on it, answered with `status`.
    fn failed(&self, slot: &Slot<Idle>, status: StatusCode) -> Response<ProxyBody> {
        slot.server().counters.response_failed();
        own(error_response(status))
    }

    /// No server took the request: 503 (none available, queue full), 502 (connects failed).
    fn refused(&self, refused: Refused) -> Response<ProxyBody> {
        self.shared
            .front
            .counters
            .failed
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(proxy = %self.shared.front.name, reason = ?refused, "no server for request");
        let status = match refused {
            Refused::ConnectFailed => StatusCode::BAD_GATEWAY,
            Refused::NoBackend(_) | Refused::QueueTimeout => StatusCode::SERVICE_UNAVAILABLE,
        };
        own(error_response(status))
    }
}

/// A pooled connection of the server that is ready for a request, if any.
async fn take_ready(idle: &Idle) -> Option<SendRequest<ReqBody>> {
    while let Some(mut sender) = idle.take() {
        if sender.is_ready() || sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
    None
}

/// The proxy's own answer as a response with a [`ProxyBody`].
fn own(response: Response<Bytes>) -> Response<ProxyBody> {
    response.map(ProxyBody::full)
}
