//! The state machine's hot paths and its scale:
//! - one received advert handled in Backup (parse, validate, timer update): target < 200 ns;
//! - 10,000 routers at a 1 s interval driven through the API with a virtual clock
//!   (5,000 Masters sending, 5,000 Backups receiving): target < 2% of one core;
//! - the simulator: target >= 1,000,000 router-seconds per CPU second at 1 s adverts.
//!
//! Run: `cargo bench -p vrrp-core --bench router`. Figures go in `vrrp-core/README.md`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vrrp_core::packet::{IpHeader, Priority, Vrid};
use vrrp_core::router::{Config, Router, State, Transmit};

fn config(host: u32, vrid: u8, priority: u8) -> Config {
    let addr = IpAddr::from((0x0a00_0000u32 | host).to_be_bytes());
    let mut c = Config::new(
        Vrid::new(vrid).expect("non-zero"),
        addr,
        vec![IpAddr::from([10, 99, 0, 200])],
    );
    c.priority = Priority::new(priority);
    c
}

/// A Master's first advert, to feed to Backups.
fn master_advert(host: u32, vrid: u8) -> Transmit {
    let mut m = Router::new(config(host, vrid, 255)).expect("valid");
    m.startup(Instant::now());
    m.poll_transmit().expect("owner advertises at once")
}

fn backup_receives(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut b = Router::new(config(2, 51, 100)).expect("valid");
    b.startup(t0);
    while b.poll_event().is_some() {}
    let tx = master_advert(1, 51);
    let ip = IpHeader {
        source: tx.source,
        destination: tx.destination,
        ttl: 255,
    };
    let mut now = t0;
    c.bench_function("router/backup_handle_advert", |bench| {
        bench.iter(|| {
            now += Duration::from_millis(1);
            b.handle_packet(now, black_box(ip), black_box(&tx.payload));
            black_box(b.poll_timeout())
        })
    });
    assert_eq!(b.state(), State::Backup);
}

fn ten_thousand_routers(c: &mut Criterion) {
    const PAIRS: u32 = 5_000;
    let t0 = Instant::now();
    let mut masters: Vec<Router> = (0..PAIRS)
        .map(|i| {
            let mut r = Router::new(config(i + 1, (i % 255 + 1) as u8, 255)).expect("valid");
            r.startup(t0);
            while r.poll_transmit().is_some() {}
            r
        })
        .collect();
    let mut backups: Vec<Router> = (0..PAIRS)
        .map(|i| {
            let mut r =
                Router::new(config(PAIRS + i + 1, (i % 255 + 1) as u8, 100)).expect("valid");
            r.startup(t0);
            r
        })
        .collect();
    let mut second = 0u64;
    // One iteration = one virtual second of the whole fleet: every Master's timer fires and
    // its advert is encoded, every Backup handles one advert and re-arms its timer.
    c.bench_function("router/10k_routers_one_virtual_second", |bench| {
        bench.iter(|| {
            second += 1;
            let now = t0 + Duration::from_secs(second);
            for (m, b) in masters.iter_mut().zip(backups.iter_mut()) {
                m.handle_timeout(now);
                if let Some(tx) = m.poll_transmit() {
                    let ip = IpHeader {
                        source: tx.source,
                        destination: tx.destination,
                        ttl: 255,
                    };
                    b.handle_packet(now, ip, &tx.payload);
                }
                while b.poll_event().is_some() {}
            }
        })
    });
    assert!(backups.iter().all(|b| b.state() == State::Backup));
}

fn simulator(c: &mut Criterion) {
    // 3 routers, 1 s adverts, 1,000 virtual seconds = 3,000 router-seconds per iteration.
    c.bench_function("sim/3_routers_1000_virtual_seconds", |bench| {
        bench.iter(|| {
            let mut s = vrrp_core::sim::Sim::new(7);
            s.link.delay = Duration::from_millis(1);
            for (host, prio) in [(11, 101), (12, 100), (13, 99)] {
                s.add(config(host, 51, prio)).expect("valid config");
            }
            s.run_for(Duration::from_secs(1000));
            black_box(s.in_state(State::Master).len())
        })
    });
}

criterion_group!(benches, backup_receives, ten_thousand_routers, simulator);
criterion_main!(benches);
