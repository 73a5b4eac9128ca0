//! [`CompleteOnBodyEnd`] and [`InFlightBody`] (feature `http`): an HTTP request counts in flight
//! until its response body ends.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::InFlight;
use crate::balance::TrackCompletion;

/// An `http::Response` is complete when its body has ended (the last frame was read, or the
/// body says it is at its end) or was dropped (the client went away): until then the request
/// counts in flight on its backend, so a backend streaming slow bodies looks busy to
/// least-connections and p2c. Its latency, for peak-EWMA, is measured to the end of the body.
///
/// ```
/// use http_body_util::BodyExt;
/// use lb_core::balance::CompleteOnBodyEnd;
/// use lb_core::{Balance, LeastConnections};
/// use tower::{Service, ServiceExt, discover::ServiceList};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let upstreams = ["web1", "web2"].map(|_| {
///     tower::service_fn(|_: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
///     })
/// });
/// let mut balance = Balance::new(ServiceList::new(upstreams), LeastConnections::new())
///     .complete_on(CompleteOnBodyEnd);
/// // The response's body is an `InFlightBody<String>`: the request counts until it is read.
/// let response = balance.ready().await?.call(http::Request::new(())).await?;
/// assert!(response.body().in_flight());
/// let body = response.into_body().collect().await?.to_bytes();
/// assert_eq!(&body[..], b"hello");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CompleteOnBodyEnd;

impl<B: Body> TrackCompletion<http::Response<B>> for CompleteOnBodyEnd {
    type Output = http::Response<InFlightBody<B>>;

    fn track_completion(
        &self,
        in_flight: InFlight,
        response: http::Response<B>,
    ) -> http::Response<InFlightBody<B>> {
        response.map(|body| {
            // An empty body may never be polled (hyper checks `is_end_stream` first).
            let in_flight = if body.is_end_stream() {
                in_flight.finish();
                None
            } else {
                Some(in_flight)
            };
            InFlightBody {
                inner: body,
                in_flight,
            }
        })
    }
}

pin_project! {
    /// A response body that keeps its request counted in flight on its backend until the body
    /// ends, fails or is dropped.
    #[derive(Debug)]
    pub struct InFlightBody<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B> InFlightBody<B> {
    /// Whether the request still counts in flight (the body has not ended yet).
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The body inside; the request stops counting in flight.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Body> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            // A failed body ends the request without a latency sample.
            Some(Err(_)) => drop(this.in_flight.take()),
            Some(Ok(_)) if !this.inner.is_end_stream() => {}
            Some(Ok(_)) | None => {
                if let Some(in_flight) = this.in_flight.take() {
                    in_flight.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
