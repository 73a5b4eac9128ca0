//! 10,000 TCP checks at a 1 s interval against local listeners, for 30 s: CPU of the checking
//! process, how late each check ran against its slot, memory per monitor.
//!
//! ```text
//! cargo bench -p health-check --bench scale                    # 10,000 checks, 30 s
//! CHECKS=2000 SECS=5 RUNTIME=multi cargo bench -p health-check --bench scale
//! ```
//!
//! The listeners run in a child process (this same binary, `HC_SCALE_ROLE=listeners`) so that
//! accepting 10,000 connections a second is not counted as the checker's CPU. Monitors start
//! with `Start::After(i * interval / N)`, evenly spread as HAProxy spreads its first checks, so
//! every run's slot is known and its lateness measured exactly (from inside the check, i.e.
//! including the wake-up of the task).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use health_check::{Check, CheckError, Monitor, MonitorConfig, Start, TcpCheck};
use tokio::time::Instant;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lateness histogram in 1 ms buckets (the last bucket: 100 ms and more).
struct Lateness {
    buckets: Vec<AtomicU64>,
    max_us: AtomicU64,
    failures: AtomicU64,
}

impl Lateness {
    fn record(&self, late: Duration) {
        let ms = usize::try_from(late.as_millis()).unwrap_or(usize::MAX);
        let i = ms.min(self.buckets.len() - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn quantile_ms(&self, q: f64) -> usize {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (ms, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ms;
            }
        }
        counts.len()
    }

    fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// A TCP check that records how late it started against its slot.
struct Timed {
    inner: TcpCheck,
    first_slot: Instant,
    interval: Duration,
    runs: AtomicU64,
    lateness: Arc<Lateness>,
}

#[async_trait]
impl Check for Timed {
    async fn check(&self) -> Result<(), CheckError> {
        let now = Instant::now();
        let k = self.runs.fetch_add(1, Ordering::Relaxed);
        let slot = self.first_slot + self.interval * u32::try_from(k).unwrap_or(u32::MAX);
        self.lateness.record(now.saturating_duration_since(slot));
        let result = self.inner.check().await;
        if result.is_err() {
            self.lateness.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// (utime, stime) of a process, in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 2..].split_whitespace().collect())
        .unwrap_or_default();
    // After "pid (comm) ": state is field 0; utime and stime are fields 11 and 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (get(11), get(12))
}

/// Resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn listeners(count: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut ports = Vec::new();
        for _ in 0..count {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback listener");
            ports.push(l.local_addr().expect("addr").port());
            tokio::spawn(async move {
                while let Ok((sock, _)) = l.accept().await {
                    drop(sock);
                }
            });
        }
        let line: Vec<String> = ports.iter().map(u16::to_string).collect();
        println!("{}", line.join(" "));
        // Until the parent closes our stdin.
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await;
    });
}

/// The kernel's floor: the same connects (same socket options) from a plain blocking loop, paced
/// to `rate` per second, no runtime, no timers.
fn floor(ports: &[u16], rate: u64, secs: u64) {
    let start = std::time::Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        let batch_start = std::time::Instant::now();
        for _ in 0..rate / 100 {
            let port = ports[(n % ports.len() as u64) as usize];
            // The same socket options as `TcpCheck`: delayed ACK, reset on close.
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Ok(s) = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            {
                let _ = s.set_tcp_quickack(false);
                let _ = s.set_linger(Some(Duration::ZERO));
                let _ = s.connect(&addr.into());
            }
            n += 1;
        }
        // 100 batches a second.
        if let Some(rest) = Duration::from_millis(10).checked_sub(batch_start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// CPU (% of one core) of process `pid` over `secs`, after `warmup`.
fn measure(pid: &str, warmup: Duration, secs: u64) -> f64 {
    std::thread::sleep(warmup);
    let (u0, s0) = cpu_ticks(pid);
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (u1, s1) = cpu_ticks(pid);
    (u1 + s1 - u0 - s0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0
}

/// HAProxy with one server per check, `check inter 1s`, one thread: its CPU over `secs`.
fn haproxy(ports: &[u16], checks: u64, secs: u64) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("hc-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    // HAProxy refuses to run without a listener: an idle one on a unix socket.
    let mut cfg = format!(
        "global\n  nbthread 1\n  maxconn 1000\n\ndefaults\n  mode tcp\n  timeout connect 500ms\n  timeout check 500ms\n  timeout client 1s\n  timeout server 1s\n\nfrontend idle\n  bind {}\n  default_backend scale\n\nbackend scale\n  default-server check inter 1s\n",
        dir.join("idle.sock").display()
    );
    for i in 0..checks {
        let port = ports[(i % ports.len() as u64) as usize];
        cfg.push_str(&format!("  server s{i} 127.0.0.1:{port}\n"));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).ok()?;
    let mut child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let cpu = measure(&child.id().to_string(), Duration::from_secs(3), secs);
    let alive = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    alive.then_some(cpu)
}

fn main() {
    match std::env::var("HC_SCALE_ROLE").as_deref() {
        Ok("listeners") => return listeners(env_or("LISTENERS", 100)),
        Ok("floor") => {
            let ports: Vec<u16> = std::env::var("PORTS")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            return floor(&ports, env_or("CHECKS", 10_000), env_or("SECS", 30) + 2);
        }
        _ => {}
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: run only when benched.
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale: run with `cargo bench -p health-check --bench scale`");
        return;
    }
    let checks = env_or("CHECKS", 10_000);
    let secs = env_or("SECS", 30);
    let listener_count = env_or("LISTENERS", 100);
    let multi = std::env::var("RUNTIME").as_deref() == Ok("multi");

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("HC_SCALE_ROLE", "listeners")
        .env("LISTENERS", listener_count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the listener process");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut first_line)
        .expect("ports");
    let ports: Vec<u16> = first_line
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let addrs: Vec<SocketAddr> = first_line
        .split_whitespace()
        .map(|p| format!("127.0.0.1:{p}").parse().expect("port"))
        .collect();

    let runtime = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");

    let ours = runtime.block_on(async {
        let interval = Duration::from_secs(1);
        let lateness = Arc::new(Lateness {
            buckets: (0..101).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let rss_before = rss_kib();
        let mut monitors = Vec::with_capacity(checks as usize);
        for i in 0..checks {
            let offset = interval * u32::try_from(i).unwrap_or(0) / u32::try_from(checks).unwrap_or(1);
            let addr = addrs[(i % addrs.len() as u64) as usize];
            let check = Timed {
                inner: TcpCheck::new(addr),
                first_slot: Instant::now() + offset,
                interval,
                runs: AtomicU64::new(0),
                lateness: lateness.clone(),
            };
            let config = MonitorConfig::default().interval(interval).timeout(Duration::from_millis(500)).start(Start::After(offset));
            monitors.push(Monitor::spawn(Arc::new(check), config).expect("valid config"));
        }
        let rss_after = rss_kib();
        let me = std::process::id().to_string();
        let them = child.id().to_string();
        let (cpu0, their0, t0) = (cpu_ticks(&me), cpu_ticks(&them), std::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu1, their1, t1) = (cpu_ticks(&me), cpu_ticks(&them), std::time::Instant::now());
        let wall = (t1 - t0).as_secs_f64();
        let percent = |ticks: u64| ticks as f64 / 100.0 / wall * 100.0;
        let (user, sys) = (percent(cpu1.0 - cpu0.0), percent(cpu1.1 - cpu0.1));
        let cpu = user + sys;
        let listener_cpu = percent(their1.0 + their1.1 - their0.0 - their0.1);
        let runs = lateness.total();
        println!(
            "scale: {checks} TCP checks at 1 s, {secs} s, {} runtime, {listener_count} listeners",
            if multi { "multi-thread (2 workers)" } else { "current-thread" }
        );
        println!(
            "  runs {runs} (expected ~{}), failures {}",
            checks * secs,
            lateness.failures.load(Ordering::Relaxed)
        );
        println!(
            "  checker CPU {cpu:.1}% of one core ({user:.1}% user, {sys:.1}% system; listener process {listener_cpu:.1}%)"
        );
        println!(
            "  lateness vs slot: p50 {} ms, p99 {} ms, p99.9 {} ms, max {:.1} ms",
            lateness.quantile_ms(0.5),
            lateness.quantile_ms(0.99),
            lateness.quantile_ms(0.999),
            lateness.max_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
        println!(
            "  memory: {:.0} bytes per monitor (RSS {} KiB before, {} KiB after spawning; {} KiB at the end)",
            (rss_after.saturating_sub(rss_before) * 1024) as f64 / checks as f64,
            rss_before,
            rss_after,
            rss_kib()
        );
        drop(monitors);
        cpu
    });
    drop(runtime);

    // The same connects from a blocking loop: what the kernel costs whoever makes them.
    let mut floor_child = Command::new(std::env::current_exe().expect("own path"))
        .env("HC_SCALE_ROLE", "floor")
        .env("PORTS", first_line.trim())
        .env("CHECKS", checks.to_string())
        .env("SECS", secs.to_string())
        .spawn()
        .expect("start the floor process");
    let floor_cpu = measure(&floor_child.id().to_string(), Duration::from_secs(1), secs);
    let _ = floor_child.wait();
    println!(
        "  kernel floor (blocking connect + reset loop, same rate): {floor_cpu:.1}% of one core"
    );
    println!(
        "  health-check / floor: {:.2}",
        ours / floor_cpu.max(f64::MIN_POSITIVE)
    );
    match haproxy(&ports, checks, secs) {
        Some(h) => println!(
            "  HAProxy ({checks} servers, check inter 1s, nbthread 1): {h:.1}% of one core; health-check / HAProxy: {:.2}",
            ours / h.max(f64::MIN_POSITIVE)
        ),
        None => println!("  HAProxy: not installed or did not start (apt-get install haproxy)"),
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
