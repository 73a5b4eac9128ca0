//! `hald`: the seeds' whole stack in one process: vrrpd's VRRP instances and lbd's listeners
//! from one TOML file ([`examples::hald::config`]), the balancer's server health moving the
//! instances' priority, a watchdog on the balancer's event loop, and a planned handover that
//! drains the clients before the address moves ([`examples::hald`]).
//!
//! ```text
//! hald --config /etc/ha/hald.toml           # run
//! hald --check --config /etc/ha/hald.toml   # check the file and exit (1 on errors)
//! ```
//!
//! Signals: SIGTERM / SIGINT hand over gracefully (the listeners hand their clients over,
//! then every Master sends priority 0 and removes its addresses, then the daemon exits 0);
//! SIGHUP reloads the file (instances the reload takes away from Master drain first). Needs
//! CAP_NET_RAW and CAP_NET_ADMIN.
//!
//! Exit codes: 0 a clean stop (or a valid file with `--check`), 1 the file has mistakes or
//! cannot be read, or the daemon could not start, 2 a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use examples::hald::{config, daemon};
use examples::vrrpd::capabilities;
use tracing::error;

const USAGE: &str = "usage: hald --config FILE [--check] [--status-socket PATH]

  --config, -f FILE       the configuration (TOML: vrrpd's and lbd's keys, and [hald])
  --check                 check the file, print its mistakes with file:line:column, exit
  --status-socket PATH    the VRRP status socket (default: the file's status_socket)
  --help, -h              this text

Signals: SIGTERM/SIGINT drain, hand over and stop; SIGHUP reloads the file.";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut socket = None;
    let mut check_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-f" => path = args.next(),
            "--status-socket" => socket = args.next().map(PathBuf::from),
            "--check" => check_only = true,
            other => return examples::cli::help_or_unknown("hald", other, USAGE),
        }
    }
    let Some(path) = path else {
        eprintln!("hald: --config FILE is required");
        return ExitCode::from(2);
    };
    let config =
        match examples::diagnostics::load_at_start("hald", &path, config::parse, |c| &c.warnings) {
            Ok(c) => c,
            Err(code) => return code,
        };
    if check_only {
        println!(
            "{path}: configuration OK ({} instance(s), {} listener(s), {} server(s))",
            config.vrrp.instances.len(),
            config.balancer.listeners.len(),
            config.balancer.server_count()
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = capabilities::check() {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    // The balancer's runtime: one thread, as lbd's default. VRRP gets its own (see
    // `examples::hald::daemon`), so that the watchdog can tell on this one.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hald: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = daemon::Options {
        config_file: PathBuf::from(path),
        status_socket: socket,
    };
    match runtime.block_on(daemon::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}
