//! One `Balance` shared by many tasks through clones (no `tower::buffer::Buffer`, no boxing):
//! every request is served, the load counts are shared (least-connections sees the requests of
//! every clone), backpressure wakes every waiting clone, and a membership change applied by one
//! clone reaches the others.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use lb_core::balance::BalanceError;
use lb_core::{Balance, Health, LeastConnections};
use tokio::sync::mpsc;
use tower::discover::{Change, ServiceList};
use tower::limit::ConcurrencyLimit;
use tower::{BoxError, Service, ServiceExt};

type Named = tower::util::BoxCloneSyncService<u32, String, BoxError>;

/// A backend answering its name after `delay`, at most 2 requests at a time, recording the
/// most it ever ran at once.
fn backend(name: &'static str, delay: Duration, peak: Arc<(AtomicUsize, AtomicUsize)>) -> Named {
    let inner = tower::service_fn(move |_: u32| {
        let peak = peak.clone();
        async move {
            let now = peak.0.fetch_add(1, Ordering::SeqCst) + 1;
            peak.1.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            peak.0.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, BoxError>(name.to_string())
        }
    });
    Named::new(ConcurrencyLimit::new(inner, 2))
}

fn assert_shareable<T: Clone + Send + Sync + 'static>(_: &T) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_in_eight_tasks_share_one_balancer_and_its_backpressure() {
    let peaks: Vec<Arc<(AtomicUsize, AtomicUsize)>> = (0..3).map(|_| Arc::default()).collect();
    let services = [
        backend("fast1", Duration::from_millis(1), peaks[0].clone()),
        backend("fast2", Duration::from_millis(1), peaks[1].clone()),
        backend("slow", Duration::from_millis(20), peaks[2].clone()),
    ];
    let balance = Balance::new(ServiceList::new(services), LeastConnections::new());
    assert_shareable(&balance);

    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let mut balance = balance.clone();
            tokio::spawn(async move {
                let mut names = Vec::new();
                for i in 0..25 {
                    let name = balance.ready().await?.call(t * 100 + i).await?;
                    names.push(name);
                }
                Ok::<_, BalanceError>(names)
            })
        })
        .collect();
    let mut served = Vec::new();
    for task in tasks {
        let names = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("no clone left waiting for a wake-up")
            .expect("task ran")
            .expect("every request served");
        served.extend(names);
    }
    assert_eq!(served.len(), 200);
    let slow = served.iter().filter(|n| *n == "slow").count();
    assert!(
        slow < 200 / 3,
        "least connections across clones: slow got {slow}"
    );
    for (i, p) in peaks.iter().enumerate() {
        assert!(
            p.1.load(Ordering::SeqCst) <= 2,
            "backend {i} over its limit"
        );
    }
    // Every clone's requests counted in the one set, and all finished.
    for b in balance.backends().snapshot().backends() {
        assert_eq!(b.load().in_flight(), 0, "backend {}", b.key());
    }
}

/// A discover stream fed by the test.
struct Channel<S>(mpsc::UnboundedReceiver<Change<&'static str, S>>);

impl<S> futures_core::Stream for Channel<S> {
    type Item = Result<Change<&'static str, S>, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

#[tokio::test]
async fn a_membership_change_applied_by_one_clone_reaches_the_others() {
    let named = |name: &'static str| {
        tower::service_fn(move |_: u32| async move { Ok::<_, Infallible>(name.to_string()) })
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(Change::Insert("a", named("a"))).expect("open");
    let mut first = Balance::new(Channel(rx), LeastConnections::new());
    assert_eq!(
        first
            .ready()
            .await
            .expect("ready")
            .call(0)
            .await
            .expect("served"),
        "a"
    );
    let mut second = first.clone();

    // The first clone polls the stream and applies "b"; the second never saw the change.
    tx.send(Change::Insert("b", named("b"))).expect("open");
    first.ready().await.expect("ready");
    assert_eq!(first.len(), 2);
    first
        .backends()
        .set_health(&"a", Health::Down)
        .expect("member");
    let via_second = second
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await
        .expect("served");
    assert_eq!(via_second, "b");
    assert_eq!(second.len(), 2);

    // And a removal, applied by the second, leaves the first.
    tx.send(Change::Remove("b")).expect("open");
    second.ready().await.expect("ready");
    first
        .ready()
        .await
        .expect("ready: no backend left fails the call");
    assert_eq!(first.len(), 1);
}
