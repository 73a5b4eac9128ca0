//! `lbd`: an HAProxy-class load balancer composed from `lb-core` and `health-check`.
//!
//! `lbd --config FILE` reads the file ([`examples::lbd::config`]), starts every listener and
//! its health checks ([`examples::lbd::Lbd`]) and runs until SIGTERM or SIGINT, on which it
//! stops accepting and lets the connections in flight finish for up to `--drain-timeout`
//! (default 30 s). SIGHUP reads the file again and applies it without dropping established
//! connections: a listener whose only changes are in its `servers` (added, removed,
//! readdressed, weights, `maxconn`, TLS) or `check` is changed in place (logged as `tuned`;
//! kept-alive client connections go on, requests on a removed server finish there, servers
//! checked as before keep their health state); a listener changed in itself (`bind`, `mode`,
//! `tls`, `balance`, `timeouts`, ...) starts anew on its address while the old one drains
//! (`restarted`, up to `--drain-timeout`). A file with mistakes is refused (its errors
//! logged) and the running configuration stays.
//!
//! `lbd --check --config FILE` prints every mistake as `file:line:column: key: message` and
//! exits 1, or prints `FILE: configuration OK (N listeners, M servers)` and exits 0. Warnings
//! (e.g. a TLS certificate file missing on this host) go to stderr and do not change the
//! exit code.
//!
//! ```text
//! lbd --config /etc/ha/lbd.toml           # run
//! lbd --check --config /etc/ha/lbd.toml   # check the file and exit (1 on errors)
//! ```
//!
//! It runs on one thread by default (as HAProxy's `nbthread 1`); `--threads N` runs N.
//!
//! Exit codes: 0 a clean stop (or a valid file with `--check`), 1 the file has mistakes or
//! cannot be read, or a listener could not start, 2 a usage error.

use std::process::ExitCode;

use std::time::Duration;

use examples::lbd::Lbd;
use examples::lbd::config::{self, Config};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

/// mimalloc: its thread-local free lists make the small, short-lived allocations of every
/// proxied request (hyper's messages and buffers, header maps) cheaper than glibc's malloc
/// (measured in BENCHMARKS.md, "lbd vs HAProxy").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: lbd --config FILE [--check] [--threads N] [--drain-timeout DURATION]
       lbd --config FILE --admin COMMAND

  --config, -f FILE          the configuration (TOML)
  --check                    check the file, print its mistakes with file:line:column, exit
                             (0: valid, 1: mistakes)
  --threads N                worker threads (default 1)
  --drain-timeout DURATION   on SIGTERM/SIGINT (and for listeners a reload replaces), how
                             long connections in flight may finish (default 30s)
  --admin COMMAND            send COMMAND to the running lbd's admin_socket and print the
                             answer: `set server L/S state ready|drain|maint`,
                             `set server L/S weight N`, `show servers state`
  --help, -h                 this text

Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the file.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut check_only = false;
    let mut threads = 1usize;
    let mut drain = Duration::from_secs(30);
    let mut admin = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--admin" => match args.next() {
                Some(c) => admin = Some(c),
                None => {
                    eprintln!("lbd: --admin needs a COMMAND\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--config" | "-f" => match args.next() {
                Some(p) => path = Some(p),
                None => {
                    eprintln!("lbd: --config needs a FILE\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--check" => check_only = true,
            "--threads" => match args.next().map(|n| n.parse::<usize>()) {
                Some(Ok(n)) if n > 0 => threads = n,
                _ => {
                    eprintln!("lbd: --threads needs a number of threads, at least 1\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--drain-timeout" => match args.next().map(|d| examples::duration::parse(&d)) {
                Some(Ok(d)) => drain = d,
                Some(Err(e)) => {
                    eprintln!("lbd: --drain-timeout: {e}\n{USAGE}");
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("lbd: --drain-timeout needs a DURATION (e.g. 30s)\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => return examples::cli::help_or_unknown("lbd", other, USAGE),
        }
    }
    let (path, config) = match examples::cli::load_config("lbd", path, check_only, config::parse) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Some(command) = admin {
        return send_admin(&config, &command);
    }
    examples::cli::init_logging();
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lbd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(path, config, drain))
}

/// `--admin COMMAND`: the answer of the running lbd, printed (exit 1 on an error).
fn send_admin(config: &Config, command: &str) -> ExitCode {
    let Some(socket) = &config.admin_socket else {
        eprintln!(
            "lbd: the file sets no admin_socket (e.g. admin_socket = \"/run/lbd/admin.sock\")"
        );
        return ExitCode::from(1);
    };
    match examples::lbd::admin::ask(socket, command) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error:") {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("lbd: {}: {e} (is lbd running?)", socket.display());
            ExitCode::from(1)
        }
    }
}

/// Reads and checks the file: the config, or the lines to print.
fn load(path: &str) -> Result<Config, Vec<String>> {
    examples::diagnostics::load("lbd", path, config::parse)
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads.
async fn run(path: String, config: Config, drain: Duration) -> ExitCode {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            error!("cannot install the signal handlers");
            return ExitCode::from(1);
        }
    };
    let mut lbd = match Lbd::start(&config).await {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(1);
        }
    };
    for (name, addr) in lbd.addresses() {
        info!("listener {name} accepting on {addr}");
    }
    for addr in lbd.stats_pages() {
        info!("stats page on http://{addr}");
    }
    info!(
        "lbd started with {path} ({} listener(s))",
        config.listeners.len()
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match load(&path) {
                Err(lines) => {
                    for line in lines {
                        error!("reload refused: {line}");
                    }
                }
                Ok(new) => match lbd.reload(&new, drain).await {
                    Ok(r) => info!(
                        unchanged = ?r.unchanged, tuned = ?r.tuned, restarted = ?r.restarted,
                        added = ?r.added, removed = ?r.removed, "reloaded {path}"
                    ),
                    Err(e) => error!("reload of {path} failed: {e}"),
                },
            },
        }
    }
    info!("stopping: draining connections for up to {drain:?}");
    let reports = lbd.drain(drain).await;
    let closed: usize = reports.iter().map(|(_, r)| r.closed).sum();
    info!("stopped ({closed} connection(s) closed at the deadline)");
    ExitCode::SUCCESS
}
