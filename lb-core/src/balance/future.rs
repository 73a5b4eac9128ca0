//! [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::InFlight;
use crate::balance::{BalanceError, CompleteOnResponse, TrackCompletion};

pin_project! {
    /// The response of a balanced request; holds the backend's in-flight count until the
    /// response arrives, then hands it to the [`TrackCompletion`] `C`.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, K, C = CompleteOnResponse> {
        #[pin]
        state: State<F, K, C>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F, K, C> {
        Failed { error: Option<BalanceError> },
        Called {
            #[pin]
            future: F,
            backend: Option<K>,
            in_flight: Option<InFlight>,
            completion: C,
        },
    }
}

impl<F, K, C> ResponseFuture<F, K, C> {
    pub(crate) fn called(future: F, backend: K, in_flight: InFlight, completion: C) -> Self {
        ResponseFuture {
            state: State::Called {
                future,
                backend: Some(backend),
                in_flight: Some(in_flight),
                completion,
            },
        }
    }

    pub(crate) fn failed(error: BalanceError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }
}

fn polled_again() -> BalanceError {
    BalanceError::Discover("response future polled after completion".into())
}

impl<F, K, C, T, E> Future for ResponseFuture<F, K, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<tower::BoxError>,
    K: std::fmt::Display,
    C: TrackCompletion<T>,
{
    type Output = Result<C::Output, BalanceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Failed { error } => {
                Poll::Ready(Err(error.take().unwrap_or_else(polled_again)))
            }
            StateProj::Called {
                future,
                backend,
                in_flight,
                completion,
            } => {
                let result = ready!(future.poll(cx));
                let Some(in_flight) = in_flight.take() else {
                    return Poll::Ready(Err(polled_again()));
                };
                match result {
                    Ok(response) => {
                        Poll::Ready(Ok(completion.track_completion(in_flight, response)))
                    }
                    Err(e) => Poll::Ready(Err(BalanceError::Backend {
                        backend: backend.take().map(|k| k.to_string()).unwrap_or_default(),
                        source: e.into(),
                    })),
                }
            }
        }
    }
}
