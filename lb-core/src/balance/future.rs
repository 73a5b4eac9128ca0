//! [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::InFlight;
use crate::balance::BalanceError;

pin_project! {
    /// The response of a balanced request; holds the backend's in-flight count until done.
    #[derive(Debug)]
    pub struct ResponseFuture<F, K> {
        #[pin]
        state: State<F>,
        backend: Option<K>,
        in_flight: Option<InFlight>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Failed { error: Option<BalanceError> },
        Called { #[pin] future: F },
    }
}

impl<F, K> ResponseFuture<F, K> {
    pub(crate) fn called(future: F, backend: K, in_flight: InFlight) -> Self {
        ResponseFuture {
            state: State::Called { future },
            backend: Some(backend),
            in_flight: Some(in_flight),
        }
    }

    pub(crate) fn failed(error: BalanceError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
            backend: None,
            in_flight: None,
        }
    }
}

impl<F, K, T, E> Future for ResponseFuture<F, K>
where
    F: Future<Output = Result<T, E>>,
    E: Into<tower::BoxError>,
    K: std::fmt::Display,
{
    type Output = Result<T, BalanceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Failed { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or(BalanceError::Discover("polled after completion".into())))),
            StateProj::Called { future } => {
                let result = ready!(future.poll(cx));
                let in_flight = this.in_flight.take();
                match result {
                    Ok(response) => {
                        if let Some(f) = in_flight {
                            f.finish();
                        }
                        Poll::Ready(Ok(response))
                    }
                    Err(e) => Poll::Ready(Err(BalanceError::Backend {
                        backend: this
                            .backend
                            .take()
                            .map(|k| k.to_string())
                            .unwrap_or_default(),
                        source: e.into(),
                    })),
                }
            }
        }
    }
}
