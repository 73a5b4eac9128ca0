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
