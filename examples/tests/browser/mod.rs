//! Debian's chromium, headless, driven by the tests that check lbd's stats page in a real
//! browser: launch it on a URL, dump the DOM it built, read the page's table rows. The user
//! crate also declares `mod lab` (for `skip`).

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Where Debian installs it.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one browser run may take before it is killed.
pub(crate) const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Chromium started by this test in a process group of its own, with a fresh profile; on drop
/// the whole group is killed (by its id) and the profile removed, whatever happened.
pub(crate) struct Browser {
    pub(crate) child: Child,
    profile: PathBuf,
}

impl Browser {
    /// Headless chromium loading `url`, with `extra` flags; its stdout and stderr are piped.
    pub(crate) fn launch(url: &str, extra: &[&str]) -> Browser {
        let profile = tempdir();
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("chromium starts");
        Browser { child, profile }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Everything a pipe gives until it closes, read on a thread of its own.
pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// The DOM chromium dumps for `url` after loading it.
pub(crate) fn dump_dom(url: &str) -> String {
    let mut browser = Browser::launch(url, &["--dump-dom"]);
    let out = drain(browser.child.stdout.take().expect("a piped stream"));
    let err = drain(browser.child.stderr.take().expect("a piped stream"));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = browser.child.try_wait().expect("waiting for chromium") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(browser); // its helper processes too
    let (dom, log) = (
        out.join().expect("the reader thread"),
        err.join().expect("the reader thread"),
    );
    match status {
        Some(s) if s.success() => dom,
        Some(s) => panic!("chromium {url} failed ({s}):\n{log}"),
        None => panic!("chromium {url} took more than {BROWSER_TIMEOUT:?}:\n{log}"),
    }
}

pub(crate) fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stats-browser-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// The text of `<tr id="ID" ...>...</tr>` in a dumped DOM, tags removed.
pub(crate) fn row_text(dom: &str, id: &str) -> Option<String> {
    let start = dom.find(&format!("<tr id=\"{id}\""))?;
    let len = dom[start..].find("</tr>")?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[start..start + len].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The class attribute of row `id`.
pub(crate) fn row_class(dom: &str, id: &str) -> Option<String> {
    let start = dom.find(&format!("<tr id=\"{id}\""))?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let class = &tag[tag.find("class=\"")? + 7..];
    Some(class[..class.find('"')?].to_owned())
}

pub(crate) fn chromium_or_skip(test: &str) -> bool {
    if std::path::Path::new(CHROMIUM).is_file() {
        return true;
    }
    crate::lab::skip(
        test,
        &format!("{CHROMIUM} is missing (apt-get install -y chromium)"),
    );
    false
}
