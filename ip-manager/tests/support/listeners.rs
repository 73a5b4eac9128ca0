//! Stopping a test server by the port it listens on: moto_server may run under a launcher (a
//! pyenv shim) that killing the spawned child does not reach. Shared by ip-manager's
//! `aws_moto` and examples' `vrrpd_vip_backend`, which compile this file in.

use std::process::Command;

/// Kills every process that `ss` (`Command::new("ss")`, or `ip netns exec NS ss` for a
/// namespace) shows listening on TCP `port`.
pub(crate) fn kill_listeners(mut ss: Command, port: &str) {
    let Ok(out) = ss.arg("-Hltnp").arg(format!("sport = :{port}")).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for pid in text
        .split("pid=")
        .skip(1)
        .filter_map(|s| s.split(',').next())
    {
        let _ = Command::new("kill").arg(pid).status();
    }
}

/// Waits until something accepts TCP connections on loopback `port`; false after `within`.
#[allow(dead_code)] // not every test that compiles this file in starts a server
pub(crate) fn wait_listening(port: u16, within: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}
