//! lbd's runtime admin (HAProxy's `stats socket` commands) through `lbd --admin`: a server put
//! in maintenance takes no request, stays so across a reload, and is back when set ready; a
//! weight changes the share; mistakes name the fix and exit 1.

mod lbdlab;

use std::net::SocketAddr;
use std::process::Command;

use lbdlab::{Backend, Lbd, free_addr, get};

/// `lbd --config FILE --admin COMMAND`: exit success and what it printed (stdout + stderr).
fn admin(lbd: &Lbd, command: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("--config")
        .arg(&lbd.config)
        .arg("--admin")
        .arg(command)
        .output()
        .expect("lbd runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// How many of 20 requests each server answered (by its name in the body): (s1, s2).
async fn shares(addr: SocketAddr) -> (usize, usize) {
    let mut counts = (0, 0);
    for _ in 0..20 {
        match get(addr, "/").await.expect("an answer").as_str() {
            "s1" => counts.0 += 1,
            "s2" => counts.1 += 1,
            other => panic!("answered by {other:?}"),
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_drain_ready_and_weight_apply_at_once_and_survive_a_reload() {
    let dir = std::env::temp_dir().join(format!("lbd-admin-{}", std::process::id()));
    let socket = dir.join("admin.sock");
    let (a1, a2, bind) = (free_addr(), free_addr(), free_addr());
    let _s1 = Backend::start("s1", a1).await;
    let _s2 = Backend::start("s2", a2).await;
    let config = format!(
        "admin_socket = \"{}\"\n\n[[listen]]\nname = \"web\"\nbind = \"{bind}\"\nmode = \"http\"\nservers = [{{ name = \"s1\", addr = \"{a1}\" }}, {{ name = \"s2\", addr = \"{a2}\" }}]\n",
        socket.display()
    );
    let lbd = Lbd::start(&config);
    assert_eq!(shares(bind).await, (10, 10));

    let (ok, said) = admin(&lbd, "set server web/s2 state maint");
    assert!(ok && said.contains("web/s2 state maint"), "{said}");
    assert_eq!(shares(bind).await, (20, 0));
    let (_, shown) = admin(&lbd, "show servers state");
    assert!(shown.contains("web s2 maint 1 unchecked"), "{shown}");

    // A reload (the servers' weights touched) keeps the operator's setting.
    let reloaded = config.replace(
        &format!("addr = \"{a1}\" }}"),
        &format!("addr = \"{a1}\", weight = 2 }}"),
    );
    lbd.reload(&reloaded);
    assert_eq!(shares(bind).await, (20, 0));

    let (ok, _) = admin(&lbd, "set server web/s2 state ready");
    assert!(ok);
    let (s1, s2) = shares(bind).await;
    assert!(s2 > 0 && s1 > s2, "weight 2 against 1: {s1} / {s2}");
    let (ok, _) = admin(&lbd, "set server web/s1 weight 1");
    assert!(ok);
    assert_eq!(shares(bind).await, (10, 10));

    for (command, says) in [
        (
            "set server web/s9 state drain",
            "has no server \"s9\" (servers: [\"s1\", \"s2\"])",
        ),
        ("set server api/s1 state drain", "no listener \"api\""),
        ("set server web/s1 state off", "use ready, drain or maint"),
        ("enable server web/s1", "unknown command"),
    ] {
        let (ok, said) = admin(&lbd, command);
        assert!(!ok && said.contains(says), "{command}: {said}");
    }
    drop(lbd);
    let _ = std::fs::remove_dir_all(&dir);
}
