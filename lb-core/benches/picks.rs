//! Pick cost of every algorithm, beside its peers, in one run:
//! - single-threaded, 3 / 30 / 300 backends of equal weight and 30 of weights 1..=4:
//!   `raw` is [`Snapshot::pick`] (no key clone, no in-flight counting), `guard` is
//!   [`BackendSet::pick`] with the key (`Arc<str>`) cloned and the [`InFlight`] guard dropped;
//! - `loaded_*`: LeastConnections and P2C with 10 requests held on random backends (and, for
//!   peak-EWMA, a latency sample on every backend), so the comparisons see real load;
//! - `2t`: [`BackendSet::pick`] timed on one thread while a second thread picks from the same
//!   `Arc<BackendSet>` without pause;
//! - peers: tower 0.5's p2c `Balance` (one `poll_ready` + `call` over `service_fn` services,
//!   no-op futures run inline) and pingora-load-balancing's `LoadBalancer::select` with its
//!   `RoundRobin` and Ketama `Consistent` selections.
//!
//! The target: every pick under 50 ns at 30 backends single-threaded, and no slower than the
//! peer equivalent. Backends are loopback addresses; nothing connects anywhere.
//!
//! Run: `cargo bench -p lb-core --bench picks -- --warm-up-time 1 --measurement-time 2`
//! (a filter such as `LeastConnections/` or `peer_` narrows it). Figures go in
//! `lb-core/README.md`.

use std::convert::Infallible;
use std::future::{poll_fn, ready};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_executor::block_on;
use lb_core::backend::Snapshot;
use lb_core::{
    Algorithm, BackendSet, ConsistentHash, First, InFlight, LeastConnections, PickContext,
    PowerOfTwoChoices, Random, RoundRobin, SmoothWeightedRoundRobin, StaticRoundRobin,
};
use pingora_load_balancing::LoadBalancer;
use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, Constant, PendingRequests};

/// Backend counts every algorithm is measured with.
const SIZES: [usize; 3] = [3, 30, 300];
/// How many request keys consistent hashing rotates through.
const KEYS: usize = 1024;

type Key = Arc<str>;

/// The `i`th backend's address: loopback only, never connected to.
fn addr(i: usize) -> String {
    format!("127.0.0.1:{}", 10_000 + i)
}

fn set_of<A: Algorithm>(algorithm: A, weights: &[u32]) -> Arc<BackendSet<Key, A>> {
    let set = BackendSet::new(algorithm);
    for (i, &w) in weights.iter().enumerate() {
        set.insert(Key::from(addr(i)), w).expect("a new key");
    }
    Arc::new(set)
}

fn equal(n: usize) -> Vec<u32> {
    vec![1; n]
}

/// 30 backends of weights 1, 2, 3, 4, 1, 2...
fn weighted() -> Vec<u32> {
    (0..30).map(|i| 1 + (i % 4) as u32).collect()
}

/// A small deterministic generator (xorshift64*), so runs pick the same "random" backends.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 1024 client IPv4 addresses as bytes: the request keys consistent hashing sees.
fn client_keys() -> Vec<[u8; 4]> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..KEYS)
        .map(|_| (rng.next() as u32).to_be_bytes())
        .collect()
}

/// The context of the `i`th request: a rotating key for hashing algorithms, none otherwise.
fn context(keys: Option<&[[u8; 4]]>, i: usize) -> PickContext<'_> {
    match keys {
        Some(k) => PickContext::with_key(&k[i % KEYS]),
        None => PickContext::default(),
    }
}

fn raw_pick<'s, A: Algorithm>(
    snapshot: &'s Snapshot<Key, A>,
    algorithm: &A,
    cx: &PickContext<'_>,
) -> &'s lb_core::backend::Backend<Key> {
    snapshot.pick(algorithm, cx).expect("a backend")
}

fn guard_pick<A: Algorithm>(set: &BackendSet<Key, A>, cx: &PickContext<'_>) -> (Key, InFlight) {
    set.pick(cx).expect("a backend")
}

/// Holds 10 requests on random backends and, when `latency` is set, gives every backend a
/// peak-EWMA latency sample of 1-50 µs first.
fn hold_load<A: Algorithm>(set: &BackendSet<Key, A>, latency: bool) -> Vec<InFlight> {
    let snapshot = set.snapshot();
    let backends = snapshot.backends();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    if latency {
        for b in backends {
            let want = Duration::from_micros(1 + rng.below(50) as u64);
            let guard = snapshot.start(b);
            let t = Instant::now();
            while t.elapsed() < want {
                std::hint::spin_loop();
            }
            guard.finish();
        }
    }
    (0..10)
        .map(|_| snapshot.start(&backends[rng.below(backends.len())]))
        .collect()
}

/// Picks from `set` on another thread without pause until dropped.
struct Contender {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Contender {
    fn start<A: Algorithm>(set: &Arc<BackendSet<Key, A>>, keys: Option<Arc<Vec<[u8; 4]>>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let set = Arc::clone(set);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let keys = keys.as_deref().map(Vec::as_slice);
                let mut i = KEYS / 2;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    drop(black_box(guard_pick(&set, &context(keys, i))));
                }
                i as u64
            })
        };
        Contender {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the contending thread does not panic");
        }
    }
}

/// Every measurement of one algorithm: raw and guarded picks at each size and weighted, then
/// two threads contending.
fn algorithm<A: Algorithm + Clone>(c: &mut Criterion, name: &str, a: A, keyed: bool) {
    let keys = Arc::new(client_keys());
    let k = keyed.then_some(keys.as_slice());
    let mut g = c.benchmark_group(name);
    let cases: Vec<(String, Vec<u32>)> = SIZES
        .iter()
        .map(|&n| (n.to_string(), equal(n)))
        .chain([("30w".to_string(), weighted())])
        .collect();
    for (label, weights) in &cases {
        let set = set_of(a.clone(), weights);
        let snapshot = set.snapshot();
        let mut i = 0usize;
        g.bench_function(format!("raw/{label}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(raw_pick(&snapshot, &a, &context(k, i)));
            })
        });
        g.bench_function(format!("guard/{label}"), |b| {
            b.iter(|| {
                i += 1;
                drop(black_box(guard_pick(&set, &context(k, i))));
            })
        });
    }
    for &n in &SIZES {
        let set = set_of(a.clone(), &equal(n));
        let _other = Contender::start(&set, keyed.then(|| Arc::clone(&keys)));
        let mut i = 0usize;
        g.bench_function(format!("2t/{n}"), |b| {
            b.iter(|| {
                i += 1;
                drop(black_box(guard_pick(&set, &context(k, i))));
            })
        });
    }
    g.finish();
}

/// LeastConnections and P2C with load held: the comparisons see unequal counts.
fn loaded<A: Algorithm + Clone>(c: &mut Criterion, name: &str, a: A, latency: bool) {
    let mut g = c.benchmark_group(name);
    for &n in &SIZES {
        let set = set_of(a.clone(), &equal(n));
        let _held = hold_load(&set, latency);
        let snapshot = set.snapshot();
        let cx = PickContext::default();
        g.bench_function(format!("loaded_raw/{n}"), |b| {
            b.iter(|| black_box(raw_pick(&snapshot, &a, &cx)))
        });
        g.bench_function(format!("loaded_guard/{n}"), |b| {
            b.iter(|| drop(black_box(guard_pick(&set, &cx))))
        });
    }
    g.finish();
}

fn ours(c: &mut Criterion) {
    algorithm(c, "RoundRobin", RoundRobin, false);
    algorithm(c, "StaticRoundRobin", StaticRoundRobin, false);
    algorithm(
        c,
        "SmoothWeightedRoundRobin",
        SmoothWeightedRoundRobin,
        false,
    );
    algorithm(c, "LeastConnections", LeastConnections::new(), false);
    loaded(c, "LeastConnections", LeastConnections::new(), false);
    algorithm(c, "P2C_in_flight", PowerOfTwoChoices::in_flight(), false);
    loaded(c, "P2C_in_flight", PowerOfTwoChoices::in_flight(), false);
    algorithm(c, "P2C_peak_ewma", PowerOfTwoChoices::peak_ewma(), false);
    loaded(c, "P2C_peak_ewma", PowerOfTwoChoices::peak_ewma(), true);
    algorithm(c, "Random", Random::new(), false);
    algorithm(c, "First", First, false);
    algorithm(c, "ConsistentHash", ConsistentHash::new(), true);
}

/// tower's p2c `Balance` over `n` no-op services: one `poll_ready` + `call` (+ the response
/// future, ready at once) per pick, `iters` of them inside one `block_on`.
fn tower_p2c(c: &mut Criterion) {
    let mut g = c.benchmark_group("peer_tower_p2c");
    for &n in &SIZES {
        let services: Vec<_> = (0..n)
            .map(|_| {
                PendingRequests::new(
                    tower::service_fn(|(): ()| ready(Ok::<(), Infallible>(()))),
                    CompleteOnResponse::default(),
                )
            })
            .collect();
        let mut balance = Balance::<_, ()>::new(ServiceList::new(services));
        g.bench_function(format!("pending_requests/{n}"), |b| {
            b.iter_custom(|iters| block_on(calls(&mut balance, iters)))
        });

        let services: Vec<_> = (0..n)
            .map(|_| {
                Constant::new(
                    tower::service_fn(|(): ()| ready(Ok::<(), Infallible>(()))),
                    1u32,
                )
            })
            .collect();
        let mut balance = Balance::<_, ()>::new(ServiceList::new(services));
        g.bench_function(format!("constant/{n}"), |b| {
            b.iter_custom(|iters| block_on(calls(&mut balance, iters)))
        });
    }
    g.finish();
}

/// `iters` requests through `svc`, timed.
async fn calls<S>(svc: &mut S, iters: u64) -> Duration
where
    S: Service<()>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iters {
        poll_fn(|cx| svc.poll_ready(cx))
            .await
            .expect("a ready service");
        black_box(svc.call(()).await.expect("a response"));
    }
    start.elapsed()
}

fn pingora_lb<S>(n: usize) -> Arc<LoadBalancer<S>>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let lb = LoadBalancer::<S>::try_from_iter((0..n).map(addr)).expect("loopback addresses");
    Arc::new(lb)
}

/// pingora-load-balancing's `select` (round robin and Ketama), alone and with a second thread
/// selecting from the same balancer.
fn pingora(c: &mut Criterion) {
    let keys = client_keys();
    let mut g = c.benchmark_group("peer_pingora");
    for &n in &SIZES {
        let rr = pingora_lb::<pingora_load_balancing::selection::RoundRobin>(n);
        g.bench_function(format!("round_robin/{n}"), |b| {
            b.iter(|| black_box(rr.select(b"", 256).expect("a backend")))
        });
        let ketama = pingora_lb::<Consistent>(n);
        let mut i = 0usize;
        g.bench_function(format!("ketama/{n}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(ketama.select(&keys[i % KEYS], 256).expect("a backend"))
            })
        });
    }
    for &n in &SIZES {
        let rr = pingora_lb::<pingora_load_balancing::selection::RoundRobin>(n);
        let stop = Arc::new(AtomicBool::new(false));
        let other = {
            let rr = Arc::clone(&rr);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    black_box(rr.select(b"", 256));
                }
            })
        };
        g.bench_function(format!("round_robin_2t/{n}"), |b| {
            b.iter(|| black_box(rr.select(b"", 256).expect("a backend")))
        });
        stop.store(true, Ordering::Relaxed);
        other.join().expect("the contending thread does not panic");
    }
    g.finish();
}

/// What the guarded pick adds to a raw one, piece by piece: the clock read that starts the
/// in-flight guard (kept for peak-EWMA's latency sample) and one `Arc` clone + drop (the key
/// and the guard's handle on the backend's load are one each).
fn reference(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference");
    g.bench_function("instant_now", |b| b.iter(Instant::now));
    let key = Key::from(addr(0));
    g.bench_function("arc_clone_drop", |b| {
        b.iter(|| drop(black_box(Arc::clone(&key))))
    });
    g.finish();
}

criterion_group!(benches, ours, tower_p2c, pingora, reference);
criterion_main!(benches);
