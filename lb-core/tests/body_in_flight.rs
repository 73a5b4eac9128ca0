//! An HTTP request counts in flight until its response body ends (`CompleteOnBodyEnd`), not
//! when the response headers arrive: a backend whose bodies stream slowly looks busy to
//! least-connections while they stream, and gets fewer new requests.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame};
use http_body_util::BodyExt;
use lb_core::balance::CompleteOnBodyEnd;
use lb_core::{Balance, LeastConnections};
use tokio::time::Sleep;
use tower::discover::ServiceList;
use tower::{Service, ServiceExt};

/// A body whose one frame comes after `delay` (headers come at once).
struct SlowBody {
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl Body for SlowBody {
    type Data = &'static [u8];
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(sleep) = self.sleep.as_mut() {
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        self.done = true;
        Poll::Ready(Some(Ok(Frame::data(&b"page"[..]))))
    }
}

/// An upstream answering at once with a body that takes `body_time` to stream.
fn upstream(
    name: &'static str,
    body_time: Duration,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<SlowBody>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send {
    tower::service_fn(move |_: http::Request<()>| async move {
        let body = SlowBody {
            sleep: Some(Box::pin(tokio::time::sleep(body_time))),
            done: false,
        };
        let mut response = http::Response::new(body);
        response
            .headers_mut()
            .insert("server", http::HeaderValue::from_static(name));
        Ok::<_, Infallible>(response)
    })
}

/// One request through `service`, served.
async fn serve<S>(service: &mut S) -> S::Response
where
    S: Service<http::Request<()>>,
    S::Error: std::fmt::Debug,
{
    service
        .ready()
        .await
        .expect("ready")
        .call(http::Request::new(()))
        .await
        .expect("served")
}

#[tokio::test(start_paused = true)]
async fn a_backend_streaming_slow_bodies_gets_fewer_requests_while_they_stream() {
    let upstreams = [
        upstream("fast1", Duration::from_millis(1)),
        upstream("fast2", Duration::from_millis(1)),
        upstream("slow", Duration::from_secs(10)),
    ];
    // `Balance::http` is `new` + `complete_on(CompleteOnBodyEnd)`.
    let mut balance = Balance::http(ServiceList::new(upstreams), LeastConnections::new());
    let set = balance.backends().clone();

    let mut readers = Vec::new();
    let mut to_slow = 0;
    for _ in 0..30 {
        let response = serve(&mut balance).await;
        if response.headers()["server"] == "slow" {
            to_slow += 1;
        }
        // The client reads each body in its own task, as a proxy streams it on.
        readers.push(tokio::spawn(async move {
            response.into_body().collect().await.map(|b| b.to_bytes())
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Slow's (key 2) first body is still streaming: it counts in flight, headers long arrived.
    let in_flight = |key: usize| set.snapshot().get(&key).expect("member").load().in_flight();
    assert!(in_flight(2) >= 1, "the streaming body counts in flight");
    // Headers only: each would have had a third (10); counted to the body's end, slow had
    // one request in flight against idle fast ones for the whole run.
    assert_eq!(to_slow, 1, "slow got {to_slow} of 30");

    for reader in readers {
        let body = reader.await.expect("reader ran").expect("body read");
        assert_eq!(&body[..], b"page");
    }
    for key in 0..3 {
        assert_eq!(
            in_flight(key),
            0,
            "backend {key}: every body ended, nothing counted"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_body_stops_counting_and_the_default_stops_at_the_response() {
    let mut balance = Balance::new(
        ServiceList::new([upstream("slow", Duration::from_secs(10))]),
        LeastConnections::new(),
    )
    .complete_on(CompleteOnBodyEnd);
    let set = balance.backends().clone();
    let in_flight = || set.snapshot().get(&0).expect("member").load().in_flight();
    let response = serve(&mut balance).await;
    assert_eq!(in_flight(), 1);
    drop(response); // the client went away mid-body
    assert_eq!(in_flight(), 0);

    // Without `complete_on`, the response (any type) ends the count, as before.
    let mut plain = Balance::new(
        ServiceList::new([upstream("slow", Duration::from_secs(10))]),
        LeastConnections::new(),
    );
    let plain_set = plain.backends().clone();
    let _response = serve(&mut plain).await;
    assert_eq!(
        plain_set
            .snapshot()
            .get(&0)
            .expect("member")
            .load()
            .in_flight(),
        0
    );
}
