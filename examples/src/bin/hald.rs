//! `hald`: the seeds' whole stack in one process: vrrpd's VRRP instances and lbd's listeners
//! from one TOML file ([`examples::hald::config`]), the balancer's server health moving the
//! instances' priority, a watchdog on the balancer's event loop, and a planned handover that
//! drains the clients before the address moves ([`examples::hald`]).
//!
//! ```text
//! hald --config /etc/ha/hald.toml           # run
//! hald --check --config /etc/ha/hald.toml   # check the file and exit (1 on errors)
//! hald --status --config /etc/ha/hald.toml  # the VRRP instances' status (JSON)
//! ```
//!
//! Signals: SIGTERM / SIGINT hand over gracefully (the listeners hand their clients over,
//! then every Master sends priority 0 and removes its addresses, then the daemon exits 0);
//! SIGHUP reloads the file (instances the reload takes away from Master drain first). Needs
//! CAP_NET_RAW and CAP_NET_ADMIN.
//!
//! Exit codes: 0 a clean stop (or a valid file with `--check`), 1 the file has mistakes or
//! cannot be read, or the daemon could not start, 2 a usage error.

use std::process::ExitCode;

use examples::hald::{config, daemon};

const USAGE: &str = "usage: hald --config FILE [--check] [--status-socket PATH]
       hald --status [--config FILE | --status-socket PATH]

  --config, -f FILE       the configuration (TOML: vrrpd's and lbd's keys, and [hald])
  --check                 check the file, print its mistakes with file:line:column, exit
  --status                print the running daemon's VRRP status as JSON (exit 1 if none
                          answers)
  --status-socket PATH    the VRRP status socket (default: the file's status_socket)
  --help, -h              this text

Signals: SIGTERM/SIGINT drain, hand over and stop; SIGHUP reloads the file.";

fn main() -> ExitCode {
    // The balancer's runtime: one thread, as lbd's default. VRRP gets its own (see
    // `examples::hald::daemon`), so that the watchdog can tell on this one.
    examples::vrrpd::daemon::main("hald", USAGE, config::parse, daemon::run)
}
