//! A real SMTP server for the alert tests: Python's aiosmtpd (installed by `.ci/run`), writing
//! what it receives to a Maildir that the tests read.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether aiosmtpd can run here; if not, the test is skipped loudly (failed under `CI`).
pub(crate) fn aiosmtpd_or_skip(test: &str) -> bool {
    let installed = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        super::skip(test, "aiosmtpd is not installed (pip install aiosmtpd)");
    }
    installed
}

/// The arguments after `python3` that run aiosmtpd on `listen` (`host:port`) into `maildir`.
pub(crate) fn aiosmtpd_args(listen: &str, maildir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["-m", "aiosmtpd", "-n", "-l", listen]
        .iter()
        .map(Into::into)
        .collect();
    args.extend([
        "-c".into(),
        "aiosmtpd.handlers.Mailbox".into(),
        maildir.into(),
    ]);
    args
}

/// aiosmtpd on a free loopback port; stopped on drop.
pub(crate) struct Smtp {
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
    child: Child,
}

impl Smtp {
    /// Starts it, into `maildir`, and waits until it accepts connections.
    pub(crate) fn start(maildir: PathBuf) -> Smtp {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("python3")
            .args(aiosmtpd_args(&format!("127.0.0.1:{port}"), &maildir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let smtp = Smtp {
            port,
            maildir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        smtp
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first mail in `maildir` whose text contains `subject`, waiting up to 10 s for one;
/// quoted-printable soft line breaks undone.
pub(crate) fn mail_with(maildir: &Path, subject: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir(maildir.join("new"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .find(|m| m.contains(subject));
        if let Some(mail) = found {
            return mail.replace("=\n", "");
        }
        assert!(
            Instant::now() < deadline,
            "no mail with {subject:?} in {}",
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
