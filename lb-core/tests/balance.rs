//! The tower `Balance` and its layers with real tower services (`service_fn`, `ConcurrencyLimit`)
//! on tokio: membership from a live discover stream, health and admin changes, backpressure,
//! requests in flight on a removed backend, retries with redispatch, maxconn queueing.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use lb_core::balance::BalanceError;
use lb_core::maxconn::MaxConnError;
use lb_core::{
    BackendSet, Balance, ConsistentHash, Health, LeastConnections, MaxConnLayer, NoBackend,
    RetryLayer, RoundRobin,
};
use tokio::sync::mpsc;
use tower::discover::{Change, ServiceList};
use tower::{BoxError, Layer, Service, ServiceExt};

/// A discover stream fed by the test.
struct Channel<S>(mpsc::UnboundedReceiver<Change<String, S>>);

impl<S> futures_core::Stream for Channel<S> {
    type Item = Result<Change<String, S>, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

type Named = tower::util::BoxCloneSyncService<u32, String, BoxError>;

/// A backend that answers its name after `delay`, counting the requests it got.
fn backend(name: &'static str, delay: Duration, hits: Arc<AtomicUsize>) -> Named {
    Named::new(tower::service_fn(move |_: u32| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok::<_, BoxError>(name.to_string())
        }
    }))
}

/// A backend that fails every request with `error`, counting them in `attempts`.
fn failing(error: &'static str, attempts: Arc<AtomicUsize>) -> Named {
    Named::new(tower::service_fn(move |_: u32| {
        attempts.fetch_add(1, Ordering::SeqCst);
        async move { Err::<String, BoxError>(error.into()) }
    }))
}

async fn send<S>(svc: &mut S, req: u32) -> Result<String, BalanceError>
where
    S: Service<u32, Response = String, Error = BalanceError>,
{
    svc.ready().await?.call(req).await
}

#[tokio::test]
async fn round_robin_over_three_services_in_turn() {
    let services = ["a", "b", "c"].map(|n| backend(n, Duration::ZERO, Arc::default()));
    let mut balance = Balance::new(ServiceList::new(services), RoundRobin);
    let mut got = Vec::new();
    for i in 0..6 {
        got.push(send(&mut balance, i).await.unwrap());
    }
    assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn membership_follows_discover_and_in_flight_requests_survive_removal() {
    let (tx, rx) = mpsc::unbounded_channel();
    let hits_a = Arc::new(AtomicUsize::new(0));
    let hits_b = Arc::new(AtomicUsize::new(0));
    tx.send(Change::Insert(
        "a".into(),
        backend("a", Duration::from_secs(5), hits_a.clone()),
    ))
    .unwrap();
    tx.send(Change::Insert(
        "b".into(),
        backend("b", Duration::ZERO, hits_b.clone()),
    ))
    .unwrap();
    let mut balance = Balance::new(Channel(rx), RoundRobin);
    // Start a slow request on a, then remove a while it is in flight.
    balance.ready().await.unwrap();
    let slow = balance.call(1);
    tx.send(Change::Remove("a".into())).unwrap();
    for i in 0..4 {
        assert_eq!(send(&mut balance, i).await.unwrap(), "b");
    }
    assert_eq!(balance.len(), 1);
    // The request in flight on the removed backend completes normally.
    assert_eq!(slow.await.unwrap(), "a");
    assert_eq!(
        (hits_a.load(Ordering::SeqCst), hits_b.load(Ordering::SeqCst)),
        (1, 4)
    );
}

#[tokio::test]
async fn down_and_maintenance_backends_get_nothing_and_none_left_is_an_error_at_once() {
    let services = ["a", "b"].map(|n| backend(n, Duration::ZERO, Arc::default()));
    let mut balance = Balance::new(ServiceList::new(services), RoundRobin);
    send(&mut balance, 0).await.unwrap();
    // ServiceList keys are the positions.
    let set = balance.backends().clone();
    set.set_health(&0, Health::Down).unwrap();
    for i in 0..4 {
        assert_eq!(send(&mut balance, i).await.unwrap(), "b");
    }
    set.set_admin(&1, lb_core::AdminState::Maintenance).unwrap();
    let err = send(&mut balance, 9).await.unwrap_err();
    assert!(
        matches!(
            err,
            BalanceError::NoBackend(NoBackend::NoneAvailable { members: 2, .. })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "no backend available: 2 configured, 1 in maintenance, 1 down"
    );
    set.set_health(&0, Health::Up).unwrap();
    assert_eq!(send(&mut balance, 10).await.unwrap(), "a");
}

#[tokio::test(start_paused = true)]
async fn least_connections_sends_less_to_the_slow_backend() {
    let hits: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
    let services = vec![
        backend("slow", Duration::from_millis(100), hits[0].clone()),
        backend("fast1", Duration::from_millis(10), hits[1].clone()),
        backend("fast2", Duration::from_millis(10), hits[2].clone()),
    ];
    let mut balance = Balance::new(ServiceList::new(services), LeastConnections::new());
    let mut running = tokio::task::JoinSet::new();
    for i in 0..300 {
        balance.ready().await.unwrap();
        running.spawn(balance.call(i));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while let Some(r) = running.join_next().await {
        r.unwrap().unwrap();
    }
    let h: Vec<usize> = hits.iter().map(|h| h.load(Ordering::SeqCst)).collect();
    // 10x slower: it holds ~10x longer, so leastconn gives it far fewer requests.
    assert!(h[0] * 3 < h[1] && h[0] * 3 < h[2], "{h:?}");
}

#[tokio::test(start_paused = true)]
async fn backpressure_poll_ready_waits_while_every_backend_is_saturated() {
    let limited = |name| {
        tower::limit::ConcurrencyLimitLayer::new(1).layer(backend(
            name,
            Duration::from_secs(1),
            Arc::default(),
        ))
    };
    let mut balance = Balance::new(
        ServiceList::new(vec![limited("a"), limited("b")]),
        RoundRobin,
    );
    balance.ready().await.unwrap();
    let first = tokio::spawn(balance.call(1));
    balance.ready().await.unwrap();
    let second = tokio::spawn(balance.call(2));
    // Both backends are at their limit: not ready until one finishes (1 s later).
    let before = tokio::time::Instant::now();
    balance.ready().await.unwrap();
    assert!(
        before.elapsed() >= Duration::from_millis(999),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(first.await.unwrap().unwrap(), "a");
    assert_eq!(second.await.unwrap().unwrap(), "b");
}

#[tokio::test]
async fn consistent_hash_sends_a_key_to_the_same_backend() {
    let services: Vec<Named> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|n| backend(n, Duration::ZERO, Arc::default()))
        .collect();
    let set = Arc::new(BackendSet::new(ConsistentHash::new()));
    let key_of = |req: &u32, out: &mut Vec<u8>| {
        out.extend_from_slice(&(req % 10).to_le_bytes());
        true
    };
    let mut balance = Balance::with_set(ServiceList::new(services), set, key_of);
    let mut first = Vec::new();
    for k in 0..10 {
        first.push(send(&mut balance, k).await.unwrap());
    }
    for round in 1..5 {
        for k in 0..10 {
            assert_eq!(
                send(&mut balance, k + 10 * round).await.unwrap(),
                first[k as usize]
            );
        }
    }
    let distinct: std::collections::HashSet<_> = first.iter().collect();
    assert!(distinct.len() >= 2, "keys spread: {first:?}");
}

#[tokio::test]
async fn retries_then_redispatch_hide_a_dead_backend() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let dead = failing("connection refused", attempts.clone());
    let alive = backend("alive", Duration::ZERO, Arc::default());
    let balance = Balance::new(ServiceList::new(vec![dead, alive]), RoundRobin);
    // HAProxy: retries 3 + option redispatch.
    let mut retry = RetryLayer::new(3, true).layer(balance);
    // Round robin sends the first request to the dead one: two retries there, the last
    // elsewhere; the client sees a success.
    assert_eq!(send(&mut retry, 0).await.unwrap(), "alive");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // Without redispatch the error comes back, naming the backend.
    let dead_again = Named::new(tower::service_fn(|_: u32| async {
        Err::<String, BoxError>("connection refused".into())
    }));
    let balance = Balance::new(ServiceList::new(vec![dead_again]), RoundRobin);
    let mut retry = RetryLayer::new(2, false).layer(balance);
    let err = send(&mut retry, 0).await.unwrap_err();
    assert_eq!(err.backend(), Some("0"));
    assert_eq!(err.to_string(), "backend 0 failed: connection refused");
    // A policy that refuses: no retry at all.
    let count = Arc::new(AtomicUsize::new(0));
    let counted = failing("HTTP 500", count.clone());
    let balance = Balance::new(ServiceList::new(vec![counted]), RoundRobin);
    let mut retry = RetryLayer::new(3, true)
        .retry_if(|e| e.to_string().contains("refused"))
        .layer(balance);
    send(&mut retry, 0).await.unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn maxconn_queues_in_order_refuses_a_full_queue_and_times_out() {
    let hits = Arc::new(AtomicUsize::new(0));
    let inner = backend("a", Duration::from_secs(1), hits.clone());
    let limited = MaxConnLayer::new(2, 1, Duration::from_millis(1500)).layer(inner);
    let mut running = Vec::new();
    for i in 0..3 {
        let mut svc = limited.clone();
        running.push(tokio::spawn(
            async move { svc.ready().await?.call(i).await },
        ));
    }
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!((limited.active(), limited.queued()), (2, 1));
    // The queue (1) is full: the fourth is refused at once.
    let mut fourth = limited.clone();
    let err = fourth.ready().await.unwrap().call(4).await.unwrap_err();
    assert!(matches!(err, MaxConnError::QueueFull { queue: 1 }), "{err}");
    // The queued one runs when a slot frees (1 s) and finishes at 2 s.
    for r in running {
        assert_eq!(r.await.unwrap().unwrap(), "a");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Slots held for 1 s and a queue timeout of 0.5 s: the waiting one gives up.
    let quick = MaxConnLayer::new(1, 5, Duration::from_millis(500)).layer(backend(
        "b",
        Duration::from_secs(1),
        Arc::default(),
    ));
    let mut a = quick.clone();
    let holder = tokio::spawn(async move { a.ready().await?.call(1).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut b = quick.clone();
    let started = tokio::time::Instant::now();
    let err = b.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(matches!(err, MaxConnError::QueueTimeout { .. }), "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(quick.queued(), 0);
    holder.await.unwrap().unwrap();
}
