//! `lbd --check` as an operator meets it: every configuration under `examples/configs/` (the
//! lab's HAProxy setups written for lbd) passes, and every broken file under
//! `tests/lbd_broken/` is refused with exactly the `file:line:column` messages its
//! `# expect:` comments list, in file order; and every shipped configuration is run by some
//! test (so a new one without a test fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lbd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(args)
        .output()
        .expect("lbd runs")
}

fn check(path: &Path) -> Output {
    lbd(&["--check", "--config", path.to_str().expect("a UTF-8 path")])
}

/// The `.toml` files of a directory of this crate, sorted.
fn tomls(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_config_passes_check() {
    let files = tomls("configs");
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let out = check(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}:\n{stderr}", file.display());
        assert!(
            stdout.contains(&format!("{}: configuration OK (", file.display())),
            "{stdout}"
        );
        // The only warning allowed: TLS files that are not on this host.
        for line in stderr.lines() {
            assert!(
                line.starts_with("warning: ") && line.contains("is not a file here"),
                "{}: unexpected output {line:?}",
                file.display()
            );
        }
    }
}

#[test]
fn the_counts_are_listeners_and_servers() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let out = check(&configs.join("https_termination.toml"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .ends_with("configuration OK (2 listeners, 3 servers)\n"),
        "{out:?}"
    );
    let out = check(&configs.join("https_sni.toml"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .ends_with("configuration OK (1 listener, 2 servers)\n"),
        "{out:?}"
    );
    let out = check(&configs.join("tls_servers.toml"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .ends_with("configuration OK (1 listener, 2 servers)\n"),
        "{out:?}"
    );
}

#[test]
fn every_broken_file_is_refused_with_each_mistake_at_its_line() {
    let files = tomls("tests/lbd_broken");
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let name = file.display().to_string();
        let want: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| format!("{name}:{e}"))
            .collect();
        assert!(!want.is_empty(), "{name} lists no # expect: lines");
        let out = check(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}:\n{stderr}");
        let got: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("lbd: ") && !l.starts_with("warning: "))
            .collect();
        assert_eq!(got, want, "{name}");
        assert!(
            stderr.contains(&format!("lbd: {} error(s) in {name}", want.len())),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
    }
}

#[test]
fn a_taken_address_a_missing_file_and_bad_arguments_each_say_what_is_wrong() {
    // A listener whose address is taken: lbd names it and exits 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address");
    let dir = std::env::temp_dir().join(format!("lbd-taken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("lbd.toml");
    std::fs::write(
        &file,
        format!(
            "[[listen]]\nname = \"web\"\nbind = \"{addr}\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:9\" }}]\n"
        ),
    )
    .expect("write");
    let out = lbd(&["--config", file.to_str().expect("UTF-8")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");

    let out = lbd(&["--check", "--config", "/nonexistent/lbd.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/lbd.toml"));
    let out = lbd(&["--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config FILE is required"));
    let out = lbd(&["--chek"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_shipped_config_is_run_by_a_test() {
    // A test runs a shipped file by naming it ("NAME" for lbdlab's `Ports::config` and
    // `shipped`, or NAME.toml); this file only checks them, so it does not count.
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&tests).expect("the tests directory") {
        let path = entry.expect("a directory entry").path();
        let is_rs = path.extension().is_some_and(|x| x == "rs");
        if is_rs && !path.ends_with("lbd_configs.rs") {
            sources.push_str(&std::fs::read_to_string(&path).expect("readable"));
        }
    }
    let untested: Vec<String> = tomls("configs")
        .iter()
        .map(|p| {
            p.file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| {
            !sources.contains(&format!("\"{name}\"")) && !sources.contains(&format!("{name}.toml"))
        })
        .collect();
    assert!(
        untested.is_empty(),
        "no test under tests/ runs examples/configs/{{{}}}.toml: add one (see lbd_http.rs)",
        untested.join(",")
    );
}
