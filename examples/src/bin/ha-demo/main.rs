//! `ha-demo`: keepalived's failover story, told by this workspace's crates, as a new user meets
//! it.
//!
//! ```text
//! cargo run --release -p examples --bin ha-demo        # as root: namespaces; else the simulator
//! sudo target/release/ha-demo                          # the namespace story after a plain build
//! target/release/ha-demo --simulate                    # the simulator, root or not
//! ```
//!
//! As root it builds four network namespaces named after its PID (`hd<pid>sw` holding a bridge,
//! `hd<pid>r1`, `hd<pid>r2`, `hd<pid>cl`), runs vrrpd's daemon ([`examples::vrrpd::daemon`])
//! in r1 (priority 150) and r2 (priority 100) with VRRPv3 at 100 ms, pings the virtual address
//! 10.99.0.200 from the client 100 times a second, SIGKILLs the Master, and prints the
//! transitions, the outage the client saw and the takeover time against the theory
//! (Master_Down_Interval, RFC 5798 §6.4.2). Then it removes everything, also after an error, a
//! panic, or SIGINT / SIGTERM / SIGHUP (only SIGKILL leaves `hd<pid>*` namespaces behind:
//! `ip netns del` them). Traffic stays inside those namespaces.
//!
//! The routers are this same binary run again in each namespace with `--router CONFIG`, and so
//! is the client, with `--client ADDRESS` (so one `cargo run` builds everything the story
//! needs). Without root (or `ip`), or with
//! `--simulate`, the same story runs on `vrrp_core::sim`: the same state machines on a
//! simulated segment with a virtual clock.
//!
//! The last line of the report is for scripts:
//! `result: mode=namespaces takeover=0.3102s outage=0.3090s lost=30 master_down_interval=0.3609s`.

mod client;
mod logs;
mod netns;
mod simulate;
mod story;

use std::fmt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use examples::vrrpd::{config, daemon};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

const USAGE: &str = "usage: ha-demo [--simulate]\n\
    \n\
    As root: two vrrpd routers and a client in network namespaces; the Master is killed and the\n\
    outage measured. Otherwise (or with --simulate): the same story on the deterministic simulator.\n\
    (--router CONFIG and --client ADDRESS are how ha-demo runs a router and the client inside\n\
    their namespaces.)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut simulate = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--simulate" => simulate = true,
            "--router" => {
                return match args.next() {
                    Some(config) => router(&config),
                    None => usage("--router needs a config file"),
                };
            }
            "--client" => {
                return match args.next().and_then(|a| a.parse().ok()) {
                    Some(target) => client::run(target),
                    None => usage("--client needs an IPv4 address"),
                };
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    if simulate {
        println!("ha-demo: the failover story on the deterministic simulator (--simulate)");
        return simulated();
    }
    if let Err(why) = namespaces_possible() {
        println!(
            "ha-demo: {why}, so the story runs on the deterministic simulator instead\n\
             (for the real thing: sudo target/release/ha-demo)"
        );
        return simulated();
    }
    in_namespaces()
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("ha-demo: {problem}\n{USAGE}");
    ExitCode::from(2)
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
enum End {
    Story(Result<story::Outcome, netns::LabError>),
    Panicked,
    Signal(&'static str),
}

fn in_namespaces() -> ExitCode {
    let lab = Arc::new(netns::Lab::new());
    println!(
        "ha-demo: two vrrpd routers and a client in network namespaces {}*, VRRPv3 at 100 ms; the Master will be killed (about 5 s)",
        lab.ns("")
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ha-demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        let (done, story) = tokio::sync::oneshot::channel();
        let for_story = lab.clone();
        std::thread::spawn(move || {
            let _ = done.send(netns::run(&for_story));
        });
        tokio::select! {
            r = story => r.map_or(End::Panicked, End::Story),
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
            print!("{}", story::report(&outcome));
            println!("{cleaned}");
            ExitCode::SUCCESS
        }
        End::Story(Err(netns::LabError::Setup { args, stderr })) => {
            println!(
                "ha-demo: cannot build the namespaces (`ip {args}`: {stderr}), so the story runs on the deterministic simulator instead\n{cleaned}"
            );
            simulated()
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

/// `--router CONFIG`: vrrpd's daemon on `config`, in whatever namespace this runs in.
fn router(path: &str) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_timer(EpochTime)
        .init();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ha-demo --router: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match config::parse(path, &text) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ha-demo --router: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The status socket beside the config, in the demo's temp dir, not in /run.
    let options = daemon::Options {
        config_file: path.into(),
        status_socket: Some(std::path::Path::new(path).with_extension("sock")),
    };
    match runtime.block_on(daemon::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
