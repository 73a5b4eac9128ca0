//! The tower `Balance` service's overhead per request (`ready` + `call` + awaiting a response
//! that is ready at once), beside `tower::balance::p2c::Balance` in the same run, over 3, 30 and
//! 300 backends. The backends are no-op `service_fn`s, so this is the balancer's own cost.
//!
//! Run: `cargo bench -p lb-core --bench balance`. Figures go in `lb-core/README.md`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lb_core::{Balance, LeastConnections, PowerOfTwoChoices, RoundRobin};
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::{Service, ServiceExt};

type Answer = fn(u32) -> Ready<Result<u32, Infallible>>;
type Noop = tower::util::ServiceFn<Answer>;

fn noop() -> Noop {
    fn answer(r: u32) -> Ready<Result<u32, Infallible>> {
        ready(Ok(r))
    }
    tower::service_fn(answer as Answer)
}

/// Time for `iters` requests through `service`, one after another.
fn drive<S>(rt: &tokio::runtime::Runtime, service: &mut S, iters: u64) -> Duration
where
    S: Service<u32>,
    S::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let svc = service.ready().await.expect("ready");
            black_box(svc.call(i as u32).await.expect("served"));
        }
        start.elapsed()
    })
}

fn balance(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("balance_call");
    for n in [3usize, 30, 300] {
        let services = || (0..n).map(|_| noop()).collect::<Vec<_>>();
        let mut rr = Balance::new(ServiceList::new(services()), RoundRobin);
        group.bench_function(BenchmarkId::new("lb_core_round_robin", n), |b| {
            b.iter_custom(|iters| drive(&rt, &mut rr, iters))
        });
        let mut lc = Balance::new(ServiceList::new(services()), LeastConnections::new());
        group.bench_function(BenchmarkId::new("lb_core_least_connections", n), |b| {
            b.iter_custom(|iters| drive(&rt, &mut lc, iters))
        });
        let mut p2c = Balance::new(ServiceList::new(services()), PowerOfTwoChoices::in_flight());
        group.bench_function(BenchmarkId::new("lb_core_p2c_in_flight", n), |b| {
            b.iter_custom(|iters| drive(&rt, &mut p2c, iters))
        });
        // tower's p2c over pending-request counts: the same load measure as ours.
        let pending: Vec<_> = services()
            .into_iter()
            .map(|s| PendingRequests::new(s, CompleteOnResponse::default()))
            .collect();
        let mut tower_p2c = tower::balance::p2c::Balance::new(ServiceList::new(pending));
        group.bench_function(BenchmarkId::new("tower_p2c_pending_requests", n), |b| {
            b.iter_custom(|iters| drive(&rt, &mut tower_p2c, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = balance
}
criterion_main!(benches);
