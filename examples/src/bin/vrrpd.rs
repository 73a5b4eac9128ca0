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

use std::process::ExitCode;

use examples::vrrpd::{config, daemon};

const USAGE: &str = "usage: vrrpd --config FILE [--check] [--status-socket PATH]
       vrrpd --status [--config FILE | --status-socket PATH]

  --config, -f FILE       the configuration (TOML); reloaded on SIGHUP
  --check                 check the file, print its mistakes with file:line:column, exit
  --status                print the running daemon's status as JSON (exit 1 if none answers)
  --status-socket PATH    the status socket (default: the file's status_socket, else
                          /run/vrrpd/vrrpd.sock)
  --help, -h              this text";

fn main() -> ExitCode {
    daemon::main("vrrpd", USAGE, config::parse, daemon::run)
}
