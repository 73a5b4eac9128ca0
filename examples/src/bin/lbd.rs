//! `lbd`: an HAProxy-class load balancer composed from `lb-core` and `health-check`.
//!
//! **Only the configuration check exists so far** (issue 10): `lbd --check --config FILE`
//! reads the file ([`examples::lbd::config`]), prints every mistake as
//! `file:line:column: key: message` and exits 1, or prints
//! `FILE: configuration OK (N listeners, M servers)` and exits 0. Warnings (e.g. a TLS
//! certificate file missing on this host) go to stderr and do not change the exit code.
//!
//! Without `--check`, lbd checks the file the same way and then prints
//! `lbd: the proxy itself is not implemented yet (issue 10)` to stderr and exits 2.
//!
//! ```text
//! lbd --check --config /etc/ha/lbd.toml   # check the file and exit (1 on errors)
//! ```
//!
//! Exit codes: 0 the file is valid (`--check`), 1 the file has mistakes or cannot be read,
//! 2 a usage error, or a run without `--check` (not implemented yet).

use std::process::ExitCode;

use examples::lbd::config;

const USAGE: &str = "usage: lbd --check --config FILE

  --config, -f FILE   the configuration (TOML)
  --check             check the file, print its mistakes with file:line:column, exit
                      (0: valid, 1: mistakes)
  --help, -h          this text

Only --check is implemented so far: the proxy itself is issue 10's next step.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut check_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-f" => match args.next() {
                Some(p) => path = Some(p),
                None => {
                    eprintln!("lbd: --config needs a FILE\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--check" => check_only = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("lbd: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("lbd: --config FILE is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("lbd: cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match config::parse(&path, &text) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("lbd: {} error(s) in {path}", errors.len());
            return ExitCode::from(1);
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if check_only {
        let (l, s) = (config.listeners.len(), config.server_count());
        println!(
            "{path}: configuration OK ({l} listener{}, {s} server{})",
            if l == 1 { "" } else { "s" },
            if s == 1 { "" } else { "s" },
        );
        return ExitCode::SUCCESS;
    }
    eprintln!("lbd: the proxy itself is not implemented yet (issue 10)");
    ExitCode::from(2)
}
