//! What the daemons' command lines share.

use std::process::ExitCode;

/// The end of a daemon's argument loop, for an argument it does not know otherwise:
/// `--help` (`-h`) prints `usage` and exits 0; anything else is named on stderr with
/// `usage`, and exits 2.
pub fn help_or_unknown(program: &str, argument: &str, usage: &str) -> ExitCode {
    if matches!(argument, "--help" | "-h") {
        println!("{usage}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{program}: unknown argument {argument:?}\n{usage}");
        ExitCode::from(2)
    }
}

/// The daemons' logging: to stderr (in colour on a terminal), `RUST_LOG` or `info`, without
/// module paths.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs a daemon's `main` future on a current-thread runtime: exit 0 when it returns `Ok`,
/// 1 (its error logged) when it fails or the runtime cannot start.
pub fn run_current_thread<E: std::fmt::Display>(
    program: &str,
    main: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// A daemon's checked configuration, as [`load_config`] reports it.
pub trait Checked {
    /// What works but is probably not what was meant.
    fn warnings(&self) -> &[crate::diagnostics::ConfigError];
    /// What `--check` prints in `FILE: configuration OK (SUMMARY)`.
    fn summary(&self) -> String;
}

/// The configuration a daemon was given (`--config FILE`, `path`), read and checked by
/// `parse` with its warnings printed; with `--check` (`check_only`), `FILE: configuration OK
/// (SUMMARY)` printed. `Err` is the exit code when the daemon must exit now: 2 without a file,
/// 1 when it has mistakes (each printed with file:line:column), 0 after `--check`.
pub fn load_config<T: Checked>(
    program: &str,
    path: Option<String>,
    check_only: bool,
    parse: impl FnOnce(&str, &str) -> Result<T, Vec<crate::diagnostics::ConfigError>>,
) -> Result<(String, T), ExitCode> {
    let Some(path) = path else {
        eprintln!("{program}: --config FILE is required");
        return Err(ExitCode::from(2));
    };
    let config = crate::diagnostics::load_at_start(program, &path, parse, T::warnings)?;
    if check_only {
        println!("{path}: configuration OK ({})", config.summary());
        return Err(ExitCode::SUCCESS);
    }
    Ok((path, config))
}

/// The arguments vrrpd and hald share: `--config FILE` (`-f`), `--check`, `--status`,
/// `--status-socket PATH`, `--help` (`-h`).
#[derive(Debug, Default)]
pub struct DaemonArgs {
    /// `--config FILE`.
    pub config: Option<String>,
    /// `--status-socket PATH`.
    pub status_socket: Option<std::path::PathBuf>,
    /// `--check`: check the file and exit.
    pub check_only: bool,
    /// `--status`: print the running daemon's status and exit.
    pub status: bool,
}

impl DaemonArgs {
    /// Reads `args` (without the program name); `Err` is the exit code when the daemon must
    /// exit now (after `--help`, or on an unknown argument, named with `usage`).
    pub fn parse(
        program: &str,
        usage: &str,
        args: impl IntoIterator<Item = String>,
    ) -> Result<DaemonArgs, ExitCode> {
        let mut out = DaemonArgs::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--config" | "-f" => out.config = args.next(),
                "--status-socket" => out.status_socket = args.next().map(Into::into),
                "--check" => out.check_only = true,
                "--status" => out.status = true,
                other => return Err(help_or_unknown(program, other, usage)),
            }
        }
        Ok(out)
    }
}
