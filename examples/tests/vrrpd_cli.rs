//! The vrrpd binary as an operator meets it: `--check` with errors and warnings, and a start
//! without the capabilities it needs.

mod lab;

use std::process::Command;

fn vrrpd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vrrpd"))
}

/// `vrrpd --check --config FILE`.
fn check(config: &std::path::Path) -> std::process::Output {
    vrrpd()
        .arg("--check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("runs")
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vrrpd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn check_reports_every_mistake_with_file_line_and_exits_non_zero() {
    let bad = write(
        "bad.toml",
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 0\nversion = 2\nadvert_interval = \"250ms\"\nvirtual_addresses = [\"10.0.0.200/24\"]\n",
    );
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    assert!(
        err.contains(&format!("{file}:4:8: instance[0].vrid: 0 is out of range")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:6:19: instance[0].advert_interval")),
        "{err}"
    );
    assert!(err.contains("2 error(s)"), "{err}");

    let good = write(
        "good.toml",
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_addresses = [\"10.0.0.200/24\"]\nauth_pass = \"secret\"\n",
    );
    let out = check(&good);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK (1 instance(s))"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning:"),
        "v3 auth_pass is ignored, with a warning"
    );

    let out = vrrpd()
        .arg("--config")
        .arg("/nonexistent/vrrpd.toml")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/vrrpd.toml"));
}

/// vrrpd on `config` as user nobody, with `capabilities` (setpriv's flags) only.
fn vrrpd_as_nobody(config: &std::path::Path, capabilities: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(capabilities)
        .arg(env!("CARGO_BIN_EXE_vrrpd"))
        .arg("--config")
        .arg(config)
        .output()
        .expect("setpriv runs")
}

#[test]
fn without_its_capabilities_it_refuses_to_start_naming_the_missing_one() {
    let test = "without_its_capabilities_it_refuses_to_start_naming_the_missing_one";
    if let Err(why) = lab::prerequisites(&[("setpriv", "--version")]) {
        return lab::skip(test, &why);
    }
    let config = write(
        "lo.toml",
        "[[instance]]\nname = \"VI_1\"\ninterface = \"lo\"\nvrid = 51\nvirtual_addresses = [\"10.99.0.200/24\"]\nunicast_source = \"127.0.0.1\"\n",
    );
    // As nobody, every capability dropped.
    let out = vrrpd_as_nobody(&config, &["--inh-caps=-all", "--bounding-set=-all"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs CAP_NET_RAW") && err.contains("and CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(
        err.contains("AmbientCapabilities"),
        "the fix is named: {err}"
    );
    // With CAP_NET_RAW alone it would open its sockets, win, and fail to add the address:
    // it refuses at start instead, naming CAP_NET_ADMIN.
    let out = vrrpd_as_nobody(
        &config,
        &[
            "--inh-caps=-all,+net_raw",
            "--ambient-caps=-all,+net_raw",
            "--bounding-set=-all,+net_raw",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs CAP_NET_ADMIN (adding and removing the virtual addresses)")
            && !err.contains("CAP_NET_RAW ("),
        "{err}"
    );
}
