//! [`TrackCompletion`]: when a balanced request stops counting in flight (tower's
//! `load::TrackCompletion`, for lb-core's in-flight guard).

use crate::InFlight;

/// Decides when a request is complete: it receives the request's [`InFlight`] guard with the
/// backend's response and keeps the guard as long as the request is still running.
///
/// Least-connections and p2c read the in-flight counts, so a guard released too early makes a
/// slow backend look idle. [`CompleteOnResponse`] (the default) releases it when the response
/// future resolves, which is right for discrete responses; `CompleteOnBodyEnd` (feature
/// `http`) keeps it until an `http::Response`'s body has ended or been dropped.
pub trait TrackCompletion<V>: Clone {
    /// The response as the caller receives it (e.g. with its body wrapped).
    type Output;

    /// Attaches `in_flight` to `response`: dropping the guard ends the request's count, and
    /// [`InFlight::finish`] first also records its latency.
    fn track_completion(&self, in_flight: InFlight, response: V) -> Self::Output;
}

/// The request is complete when its response future resolves (the response is returned
/// unchanged); its latency is recorded then.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompleteOnResponse;

impl<V> TrackCompletion<V> for CompleteOnResponse {
    type Output = V;

    fn track_completion(&self, in_flight: InFlight, response: V) -> V {
        in_flight.finish();
        response
    }
}
