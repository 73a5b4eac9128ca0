//! `vrrpd`: a keepalived-compatible VRRP daemon composed from `vrrp-core` (state machine and
//! tokio driver) and `ip-manager` (netlink addresses, gratuitous ARP / unsolicited NA, notify
//! scripts; or, per instance, `vip_backend` = the EC2 API or operator scripts: see
//! [`examples::vrrpd::vip_backend`]).
//!
//! ```text
//! vrrpd --config /etc/ha/vrrpd.toml           # run
//! vrrpd --check --config /etc/ha/vrrpd.toml   # check the file and exit (non-zero on errors)
//! ```
//!
//! Stops gracefully on SIGTERM / SIGINT: a Master sends priority 0, removes its addresses and
//! the daemon exits 0. Needs CAP_NET_RAW and CAP_NET_ADMIN.
//!
//! Tracked checks (`[[check]]` + `track`) adjust the priority or force Fault. The daemon itself
//! is [`examples::vrrpd::daemon`].

use std::process::ExitCode;

use examples::vrrpd::{config, daemon};
use tracing::error;

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
    let mut check_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-f" => path = args.next(),
            "--check" => check_only = true,
            "--help" | "-h" => {
                println!("usage: vrrpd --config FILE [--check]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!(
                    "vrrpd: unknown argument {other:?}; usage: vrrpd --config FILE [--check]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("vrrpd: --config FILE is required");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vrrpd: cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match config::parse(&path, &text) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("vrrpd: {} error(s) in {path}", errors.len());
            return ExitCode::from(1);
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if check_only {
        println!(
            "{path}: configuration OK ({} instance(s))",
            config.instances.len()
        );
        return ExitCode::SUCCESS;
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
    match runtime.block_on(daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}
