//! `ha-demo`: the whole high-availability story, told by this workspace's crates, as a new
//! user meets it: two balancer hosts sharing a virtual address, three backends, a client
//! sending HTTP load, and five failures.
//!
//! ```text
//! cargo run --release -p examples --bin ha-demo     # as root: namespaces; else what it can
//! sudo target/release/ha-demo                       # the namespace story after a plain build
//! target/release/ha-demo --simulate                 # without namespaces, root or not
//! target/release/ha-demo --vrrp-only                # VRRP alone: two vrrpd, a pinging client
//! ```
//!
//! As root it builds network namespaces named after its PID (`hd<pid>sw` holding a bridge,
//! `hd<pid>h1` and `hd<pid>h2` the balancer hosts, `hd<pid>be` the backends, `hd<pid>cl`
//! the client), runs hald's daemon ([`examples::hald::daemon`]: VRRP and the HTTP balancer
//! in one process) on both hosts sharing 10.99.0.200, and sends HTTP load at it while a
//! backend is killed, the Master's balancer is killed, the Master host's link is cut, the
//! Master is stopped on purpose (a planned handover) and the backend comes back (see
//! [`full`]). For each it prints the failed requests, the longest gap between answers and
//! the time to recover. Then it removes everything, also after an error, a panic, or
//! SIGINT / SIGTERM / SIGHUP (only SIGKILL leaves `hd<pid>*` namespaces behind: `ip netns
//! del` them). Traffic stays inside those namespaces.
//!
//! The balancers, the backends and the client are this same binary run again in their
//! namespaces (`--balancer CONFIG`, `--backend ADDRESS NAME`, `--load ADDRESS`; and
//! `--router CONFIG`, `--client ADDRESS` for `--vrrp-only`), so one `cargo run` builds all
//! the story needs. Without root (or `ip`), or with `--simulate`, it runs what it can: the
//! balancer half on loopback (lbd's balancer, the one hald runs, over three loopback
//! backends: one killed, then brought back) and the VRRP half on `vrrp_core::sim` (the same
//! state machines on a simulated segment with a virtual clock).
//!
//! The last line of the report is for scripts: `result: mode=namespaces
//! backend_killed.failed=0 backend_killed.gap=0.0112s backend_killed.recovered=0.0000s ...
//! master_down_interval=0.3609s`.

mod backend;
mod client;
mod full;
mod load;
mod logs;
mod loopback;
mod netns;
mod scenarios;
mod simulate;
mod story;

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use examples::vrrpd::{config, daemon};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

const USAGE: &str = "usage: ha-demo [--simulate] [--vrrp-only]\n\
    \n\
    As root: two hald balancer hosts, three backends and an HTTP client in network namespaces;\n\
    a backend is killed, the Master's balancer killed, the Master's link cut, the Master stopped\n\
    on purpose, the backend brought back; for each: failed requests, longest gap, time to recover.\n\
    Otherwise (or with --simulate): the balancer half on loopback, the VRRP half on the simulator.\n\
    --vrrp-only: VRRP alone (two vrrpd, a pinging client, the Master crashes; with --simulate or\n\
    without root: on the deterministic simulator).\n\
    (--balancer CONFIG, --backend ADDRESS NAME, --load ADDRESS, --router CONFIG and --client\n\
    ADDRESS are how ha-demo runs its parts inside their namespaces.)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut simulate = false;
    let mut vrrp_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--simulate" => simulate = true,
            "--vrrp-only" => vrrp_only = true,
            "--router" => {
                return match args.next() {
                    Some(path) => daemon("vrrpd", &path, config::parse, daemon::run),
                    None => usage("--router needs a config file"),
                };
            }
            "--balancer" => {
                return match args.next() {
                    Some(path) => daemon(
                        "hald",
                        &path,
                        examples::hald::config::parse,
                        examples::hald::daemon::run,
                    ),
                    None => usage("--balancer needs a config file"),
                };
            }
            "--client" => {
                return match args.next().and_then(|a| a.parse().ok()) {
                    Some(target) => client::run(target),
                    None => usage("--client needs an IPv4 address"),
                };
            }
            "--backend" => {
                let addr = args.next().and_then(|a| a.parse().ok());
                return match (addr, args.next()) {
                    (Some(addr), Some(name)) => block_on("--backend", backend::run(addr, name)),
                    _ => usage("--backend needs an address:port and a name"),
                };
            }
            "--load" => {
                return match args.next().and_then(|a| a.parse().ok()) {
                    Some(addr) => block_on("--load", load::run(addr)),
                    None => usage("--load needs an address:port"),
                };
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let fallback = if vrrp_only { simulated } else { what_it_can };
    if simulate {
        println!(
            "ha-demo: {} (--simulate)",
            if vrrp_only {
                "the failover story on the deterministic simulator"
            } else {
                "no namespaces: the balancer half on loopback, the VRRP half on the simulator"
            }
        );
        return fallback();
    }
    if let Err(why) = namespaces_possible() {
        println!(
            "ha-demo: {why}, so it runs what it can without namespaces{}\n\
             (for the real thing: sudo target/release/ha-demo)",
            if vrrp_only {
                ": the story on the deterministic simulator"
            } else {
                ": the balancer half on loopback, the VRRP half on the simulator"
            }
        );
        return fallback();
    }
    if vrrp_only {
        in_namespaces(
            |lab| {
                format!(
                    "two vrrpd routers and a client in network namespaces {}*, VRRPv3 at 100 ms; the Master will be killed (about 5 s)",
                    lab.ns("")
                )
            },
            netns::run,
            |o| print!("{}", story::report(o)),
            fallback,
        )
    } else {
        in_namespaces(
            |lab| {
                format!(
                    "two hald balancer hosts, three backends and an HTTP client in network namespaces {}*, VRRPv3 at 100 ms; five failures under load (about 20 s)",
                    lab.ns("")
                )
            },
            full::run,
            |s| print!("{}", full::report(s)),
            fallback,
        )
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("ha-demo: {problem}\n{USAGE}");
    ExitCode::from(2)
}

/// A runtime on this thread; `None` (said on stderr, `who` naming the mode) when it cannot
/// start.
fn runtime(who: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("ha-demo {who}: cannot start the runtime: {e}");
            None
        }
    }
}

/// Runs `future` on a [`runtime`].
fn block_on(who: &str, future: impl Future<Output = ExitCode>) -> ExitCode {
    runtime(who).map_or(ExitCode::FAILURE, |r| r.block_on(future))
}

fn simulated() -> ExitCode {
    match simulate::run() {
        Ok(outcome) => {
            print!("{}", story::report(&outcome));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ha-demo: the simulated routers refused their config: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Without namespaces: the balancer half on loopback, then the VRRP half on the simulator.
fn what_it_can() -> ExitCode {
    let Some(runtime) = runtime("(loopback)") else {
        return ExitCode::FAILURE;
    };
    let half = match runtime.block_on(loopback::run()) {
        Ok(half) => half,
        Err(e) => {
            eprintln!("ha-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = match simulate::run() {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("ha-demo: the simulated routers refused their config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = format!(
        "\nThe balancer half, on loopback: lbd's balancer (the one hald runs) on {}",
        half.listen
    );
    out.push_str(&story::timeline(&half.lines));
    out.push_str(&scenarios::table(&half.scenarios));
    let _ = write!(
        out,
        "\nThe VRRP half, on the simulator: two routers, the Master crashes{}",
        story::report_body(&sim)
    );
    let _ = writeln!(
        out,
        "result: mode=loopback+simulator{}{}",
        scenarios::result_fields(&half.scenarios),
        story::result_fields(&sim)
    );
    print!("{out}");
    ExitCode::SUCCESS
}

/// Root, and `ip` for the namespaces.
fn namespaces_possible() -> Result<(), String> {
    if !examples::vrrpd::capabilities::effective_root() {
        return Err("not running as root (network namespaces need it)".into());
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if ip {
        Ok(())
    } else {
        Err("`ip` is not installed (iproute2)".into())
    }
}

/// How the namespace story ended.
enum End<T> {
    Story(Result<T, netns::LabError>),
    Panicked,
    Signal(&'static str),
}

/// Runs `story` in a new lab (announced by `header`), prints its outcome with `print`, and
/// tears the lab down whatever happens; `fallback` runs when the namespaces cannot be built.
fn in_namespaces<T: Send + 'static>(
    header: impl Fn(&netns::Lab) -> String,
    story: fn(&netns::Lab) -> Result<T, netns::LabError>,
    print: impl Fn(&T),
    fallback: fn() -> ExitCode,
) -> ExitCode {
    let Some(runtime) = runtime("") else {
        return ExitCode::FAILURE;
    };
    let lab = Arc::new(netns::Lab::new());
    println!("ha-demo: {}", header(&lab));
    let end = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return End::Signal("(no signal handlers)");
        };
        // The story blocks (it runs commands and waits); a thread of its own keeps the signals
        // heard. Its panic drops the sender.
        let (done, told) = tokio::sync::oneshot::channel();
        let for_story = lab.clone();
        std::thread::spawn(move || {
            let _ = done.send(story(&for_story));
        });
        tokio::select! {
            r = told => r.map_or(End::Panicked, End::Story),
            _ = tokio::signal::ctrl_c() => End::Signal("SIGINT"),
            _ = term.recv() => End::Signal("SIGTERM"),
            _ = hup.recv() => End::Signal("SIGHUP"),
        }
    });
    let deleted = lab.teardown();
    let cleaned = format!(
        "cleaned up: deleted namespaces {}",
        if deleted.is_empty() {
            "(none were made)".to_owned()
        } else {
            deleted.join(", ")
        }
    );
    match end {
        End::Story(Ok(outcome)) => {
            print(&outcome);
            println!("{cleaned}");
            ExitCode::SUCCESS
        }
        End::Story(Err(netns::LabError::Setup { args, stderr })) => {
            println!(
                "ha-demo: cannot build the namespaces (`ip {args}`: {stderr}), so it runs what it can without them\n{cleaned}"
            );
            fallback()
        }
        End::Story(Err(e)) => {
            eprintln!("ha-demo: {e}\n{cleaned}");
            ExitCode::FAILURE
        }
        End::Panicked => {
            eprintln!("ha-demo: the story panicked\n{cleaned}");
            ExitCode::FAILURE
        }
        End::Signal(name) => {
            eprintln!("ha-demo: interrupted by {name}\n{cleaned}");
            ExitCode::from(130)
        }
    }
}

/// Log timestamps as seconds since the epoch, so that the story can line the routers' logs up
/// with the client's replies and its own clock.
struct EpochTime;

impl FormatTime for EpochTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write!(w, "{}.{:06}", t.as_secs(), t.subsec_micros())
    }
}

/// `--router CONFIG` and `--balancer CONFIG`: `program`'s daemon (vrrpd's, hald's) on the
/// file at `path`, read and checked by `parse`, in whatever namespace this runs in. It logs on
/// stderr with [`EpochTime`] stamps (the story reads them); its status socket is beside the
/// file, in the demo's temp dir, not in /run.
fn daemon<C, F, E>(
    program: &str,
    path: &str,
    parse: impl FnOnce(&str, &str) -> Result<C, Vec<examples::diagnostics::ConfigError>>,
    run: impl FnOnce(C, daemon::Options) -> F,
) -> ExitCode
where
    C: examples::cli::Checked,
    F: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_timer(EpochTime)
        .init();
    let config = match examples::diagnostics::load_at_start(program, path, parse, C::warnings) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let options = daemon::Options {
        config_file: path.into(),
        status_socket: Some(std::path::Path::new(path).with_extension("sock")),
        program: program.to_owned(),
    };
    examples::cli::run_current_thread(program, run(config, options))
}
