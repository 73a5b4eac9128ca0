//! What the namespace tests share: their prerequisites, and the rule that a test which cannot
//! run here skips loudly, except under CI, where it fails.

pub(crate) mod client;
#[allow(dead_code)] // not every test binary sends mail
pub(crate) mod mail;
pub(crate) mod vrrp;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The path of `shared/lab/netlab.sh`, or why a namespace test cannot run here: not root, one
/// of `tools` (program, version flag) missing, or no shared dir beside the repository.
pub(crate) fn prerequisites(tools: &[(&str, &str)]) -> Result<PathBuf, String> {
    if !examples::vrrpd::capabilities::effective_root() {
        return Err("it is not running as root (network namespaces need it)".into());
    }
    for (program, flag) in tools {
        let runs = Command::new(program)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !runs {
            return Err(format!("`{program}` is not installed"));
        }
    }
    let shared = match std::env::var_os("HA_SHARED_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // The shared dir sits beside the repository root, which is this crate's parent.
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let netlab = shared.join("lab/netlab.sh");
    if netlab.is_file() {
        Ok(netlab)
    } else {
        Err(format!(
            "{} does not exist (set HA_SHARED_DIR to the shared dir)",
            netlab.display()
        ))
    }
}

/// The path of `netlab.sh` when `test` can run here; otherwise `None` after [`skip`]ping it
/// (loudly, or failing it under `CI`).
#[allow(dead_code)]
pub(crate) fn netlab_or_skip(test: &str, tools: &[(&str, &str)]) -> Option<PathBuf> {
    match prerequisites(tools) {
        Ok(path) => Some(path),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// Skips `test` with a loud message, or fails it when `CI` is set.
pub(crate) fn skip(test: &str, why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI must run {test}, but {why}");
    }
    eprintln!("\n*** SKIPPED {test}: not run because {why} (with CI set this fails) ***\n");
}

/// Runs `netlab.sh ACTION 2` with IPv6 under `prefix`: the two-host lab every namespace test uses.
// Not every test binary that includes this module builds a lab.
#[allow(dead_code)]
pub(crate) fn netlab(script: &Path, prefix: &str, action: &str) -> std::process::Output {
    Command::new("bash")
        .arg(script)
        .args([action, "2"])
        .env("LAB_PREFIX", prefix)
        .env("LAB_IPV6", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {} {action}: {e}", script.display()))
}

/// Brings the two-host lab up afresh under `prefix` (taking down what a crashed run left);
/// fails the test if it cannot.
#[allow(dead_code)]
pub(crate) fn netlab_up(script: &Path, prefix: &str) {
    drop(netlab(script, prefix, "down"));
    let up = netlab(script, prefix, "up");
    assert!(
        up.status.success(),
        "netlab up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
}

/// The two-host lab of a test that drives it itself: its script and its prefix (a tag and
/// this process's id, so that parallel runs do not meet). Taken down when dropped, also when
/// an assertion fails.
#[allow(dead_code)]
pub(crate) struct Netlab {
    pub(crate) script: PathBuf,
    pub(crate) prefix: String,
}

#[allow(dead_code)]
impl Netlab {
    /// The lab `tag` names when `test` can run here (root, iproute2); not up yet.
    pub(crate) fn or_skip(test: &str, tag: &str) -> Option<Netlab> {
        let script = netlab_or_skip(test, &[("ip", "-V")])?;
        let prefix = format!("{tag}{}", std::process::id() % 10_000);
        Some(Netlab { script, prefix })
    }

    /// Brings it up afresh (see [`netlab_up`]).
    pub(crate) fn up(&self) {
        netlab_up(&self.script, &self.prefix);
    }

    /// The name of namespace `host` (`h1`, `h2`, `cl`).
    pub(crate) fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }
}

impl Drop for Netlab {
    fn drop(&mut self) {
        let _ = netlab(&self.script, &self.prefix, "down");
    }
}

/// An empty directory `NAME` in the temporary directory, emptied if a previous run left it.
#[allow(dead_code)]
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `f` on a current-thread runtime on a thread inside network namespace `ns`: sockets
/// (and netlink) belong to the namespace of the thread that opens them.
#[allow(dead_code)]
pub(crate) fn in_namespace<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    spawn_in_namespace(ns, f)
        .join()
        .expect("the namespace thread")
}

/// [`in_namespace`] without waiting: the thread's handle.
#[allow(dead_code)]
pub(crate) fn spawn_in_namespace<
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T> {
    use std::os::fd::AsFd;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace file");
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}
