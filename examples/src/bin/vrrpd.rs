//! `vrrpd`: a keepalived-compatible VRRP daemon composed from `vrrp-core` (state machine and
//! tokio driver) and `ip-manager` (netlink addresses, gratuitous ARP / unsolicited NA, notify
//! scripts; or, per instance, `vip_backend` = the EC2 API or operator scripts: see
//! [`examples::vrrpd::vip_backend`]).
//!
//! ```text
//! vrrpd --config /etc/ha/vrrpd.toml           # run
//! vrrpd --check --config /etc/ha/vrrpd.toml   # check the file and exit (non-zero on errors)
//! vrrpd --status [--config FILE]              # print the running daemon's status (JSON)
//! vrrpd --status --status-socket PATH         # the same, from the socket at PATH
//! ```
//!
//! `--status-socket PATH` also works when running: it overrides the file's `status_socket`
//! (default `/run/vrrpd/vrrpd.sock`). `--status` exits 1 when no daemon answers there.
//!
//! Signals: SIGTERM / SIGINT stop gracefully (a Master sends priority 0, removes its
//! addresses, the daemon exits 0); SIGHUP reloads the file: unchanged instances keep their
//! state, changed ones are rebuilt, removed ones shut down gracefully, and a file with
//! mistakes is refused (each logged with `file:line:column`) while the old configuration runs
//! on. Needs CAP_NET_RAW and CAP_NET_ADMIN.
//!
//! Tracked checks (`[[check]]` + `track`) adjust the priority or force Fault;
//! `metrics = { bind = "127.0.0.1:9650" }` serves Prometheus metrics. The daemon itself is
//! [`examples::vrrpd::daemon`], the file [`examples::vrrpd::config`].

use std::path::PathBuf;
use std::process::ExitCode;

use examples::vrrpd::{capabilities, config, daemon, status_socket};
use tracing::error;

const USAGE: &str = "usage: vrrpd --config FILE [--check] [--status-socket PATH]
       vrrpd --status [--config FILE | --status-socket PATH]

  --config, -f FILE       the configuration (TOML); reloaded on SIGHUP
  --check                 check the file, print its mistakes with file:line:column, exit
  --status                print the running daemon's status as JSON (exit 1 if none answers)
  --status-socket PATH    the status socket (default: the file's status_socket, else
                          /run/vrrpd/vrrpd.sock)
  --help, -h              this text";

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
    let mut status = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-f" => path = args.next(),
            "--status-socket" => socket = args.next().map(PathBuf::from),
            "--check" => check_only = true,
            "--status" => status = true,
            other => return examples::cli::help_or_unknown("vrrpd", other, USAGE),
        }
    }
    if status {
        return print_status(path.as_deref(), socket);
    }
    let Some(path) = path else {
        eprintln!("vrrpd: --config FILE is required");
        return ExitCode::from(2);
    };
    let config = match examples::diagnostics::load_at_start("vrrpd", &path, config::parse, |c| {
        &c.warnings
    }) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if check_only {
        println!(
            "{path}: configuration OK ({} instance(s))",
            config.instances.len()
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = capabilities::check() {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vrrpd: cannot start the runtime: {e}");
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

/// `--status`: the socket from `--status-socket`, else the file's `status_socket`, else the
/// default; the answer pretty-printed.
fn print_status(config: Option<&str>, socket: Option<PathBuf>) -> ExitCode {
    let path = match (socket, config) {
        (Some(s), _) => s,
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(text) => config::status_socket_of(&text),
            Err(e) => {
                eprintln!("vrrpd: cannot read {file}: {e}");
                return ExitCode::from(1);
            }
        },
        (None, None) => PathBuf::from(config::DEFAULT_STATUS_SOCKET),
    };
    let answer = match status_socket::query(&path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vrrpd: {e}");
            return ExitCode::from(1);
        }
    };
    match serde_json::from_str::<serde_json::Value>(&answer)
        .and_then(|v| serde_json::to_string_pretty(&v))
    {
        Ok(pretty) => {
            println!("{pretty}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "vrrpd: {} answered with something that is not JSON ({e}): {answer:?}",
                path.display()
            );
            ExitCode::from(1)
        }
    }
}
