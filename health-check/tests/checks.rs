//! The built-in checks against real targets: TCP servers on loopback that answer, refuse, or
//! accept and never answer; real processes that run and exit.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use support::{at_once, fails, passes, serve_tcp};

use health_check::{Check, CheckError, Health, HttpCheck, Monitor, ProcessCheck, TcpCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn tcp_connect_send_expect() {
    let addr = serve_tcp(async |mut sock| {
        let mut buf = [0u8; 64];
        let n = sock.read(&mut buf).await.unwrap_or(0);
        let reply: &[u8] = if &buf[..n] == b"PING\r\n" {
            b"+PONG\r\n"
        } else {
            b"-ERR\r\n"
        };
        let _ = sock.write_all(reply).await;
    })
    .await;
    passes(TcpCheck::new(addr), "connect-only").await;
    passes(
        TcpCheck::new(addr).send("PING\r\n").expect("+PONG"),
        "send/expect",
    )
    .await;
    let err = fails(TcpCheck::new(addr).send("QUIT\r\n").expect("+PONG")).await;
    assert!(
        err.to_string()
            .contains(r#"expected reply starting "+PONG", got "-ERR\r""#),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_gone_is_a_connect_failure_over_tcp_and_http() {
    let addr = support::closed_addr();
    for err in [
        fails(TcpCheck::new(addr)).await,
        fails(HttpCheck::new(addr)).await,
    ] {
        assert!(matches!(err, CheckError::Connect { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn tcp_server_that_never_answers_times_out_in_the_monitor() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    // Accepts and holds the connections, never writes.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = server.accept().await {
            held.push(sock);
        }
    });
    let check = TcpCheck::new(addr).send("PING\r\n").expect("+PONG");
    let config = at_once(Duration::from_millis(50))
        .timeout(Duration::from_millis(100))
        .fall(2);
    let m = Monitor::spawn(Arc::new(check), config).expect("valid config");
    let started = std::time::Instant::now();
    let s = support::down(&m).await;
    assert_eq!(s.failures, 2);
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer within 100ms"),
        "{s:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A copy of sleep under a unique name (`prefix` and this test's pid), so "by name" cannot
/// match anyone else's process: its directory (`hc-DIR-PID`), name and path.
fn unique_sleep(dir: &str, prefix: &str) -> (PathBuf, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hc-{dir}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let name = format!("{prefix}{}", std::process::id() % 1_000_000);
    let exe = dir.join(&name);
    std::fs::copy("/bin/sleep", &exe).expect("a copy of sleep");
    (dir, name, exe)
}

#[tokio::test]
async fn process_by_pid_file_and_by_name_follow_a_real_process() {
    let (dir, name, exe) = unique_sleep("proc", "hc");
    let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
    let pidfile = dir.join("app.pid");
    std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();

    passes(ProcessCheck::pid_file(&pidfile), "running, by pid file").await;
    passes(ProcessCheck::name(&name), "running, by name").await;

    child.kill().unwrap();
    child.wait().unwrap();
    let err = fails(ProcessCheck::pid_file(&pidfile)).await;
    assert!(err.to_string().contains("is not running"), "{err}");
    let err = fails(ProcessCheck::name(&name)).await;
    assert!(
        matches!(err, CheckError::ProcessNotRunning { .. }),
        "{err:?}"
    );

    std::fs::write(&pidfile, "not-a-pid").unwrap();
    let err = fails(ProcessCheck::pid_file(&pidfile)).await;
    assert!(err.to_string().contains("is not a pid"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A monitored process that exits is marked down at once (pidfd), not at the next check: with
/// checks every 10 s and `fall = 3`, polling alone would take 30 s.
#[tokio::test]
async fn a_watched_process_that_exits_is_down_within_milliseconds() {
    let (dir, name, exe) = unique_sleep("exit", "hx");
    let pidfile = dir.join("app.pid");
    for check in [ProcessCheck::pid_file(&pidfile), ProcessCheck::name(&name)] {
        // Two processes by that name: down only when both are gone.
        let mut first = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        let mut second = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        std::fs::write(&pidfile, format!("{}\n", first.id())).unwrap();
        let described = check.describe();
        let monitor = Monitor::spawn(
            Arc::new(check),
            at_once(Duration::from_secs(10)).fall(3).rise(1),
        )
        .unwrap();
        let mut rx = monitor.subscribe();
        while rx.borrow().checks == 0 {
            rx.changed().await.unwrap();
        }
        assert_eq!(rx.borrow().health, Health::Up, "{described}");
        tokio::time::sleep(Duration::from_millis(50)).await;

        // The first one goes, but the target is still up: by name the second still runs; by
        // pid file the file names the second first (a reload that re-execs).
        if !described.starts_with("process") {
            std::fs::write(&pidfile, format!("{}\n", second.id())).unwrap();
        }
        first.kill().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            rx.borrow().health,
            Health::Up,
            "{described}: one left: {:?}",
            *rx.borrow()
        );
        second.kill().unwrap();
        let killed = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), async {
            while rx.borrow().health == Health::Up {
                rx.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{described}: still up 2 s after the exit"));
        let took = killed.elapsed();
        assert!(
            took < Duration::from_millis(50),
            "{described}: down after {took:?}"
        );
        let s = rx.borrow().clone();
        assert_eq!(s.checks, 1, "{described}: no check ran, the exit was heard");
        assert!(s.last_error.is_some(), "{described}: {s:?}");
        first.wait().unwrap();
        second.wait().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// TIME_WAIT sockets on loopback involving `port`, from `ss`.
fn time_wait(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htan", "state", "time-wait"])
        .output()
        .expect("ss (iproute2) runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace().any(|a| {
                a.rsplit_once(':')
                    .is_some_and(|(_, p)| p == port.to_string())
            })
        })
        .count()
}

#[tokio::test]
async fn tcp_check_closes_with_a_reset_and_leaves_no_time_wait() {
    let addr = serve_tcp(async |mut sock| {
        let mut buf = [0u8; 16];
        while sock.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    for _ in 0..20 {
        passes(TcpCheck::new(addr), "connect").await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(time_wait(addr.port()), 0, "checks leave no TIME_WAIT");
    // The contrast: a plain connect and close leaves one each.
    for _ in 0..3 {
        drop(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(time_wait(addr.port()), 3, "a plain close does leave them");
}

#[tokio::test]
async fn a_connect_only_check_is_answered_by_the_kernel_not_the_application() {
    // Like HAProxy's checks: the server's kernel answers the SYN, our delayed ACK never goes
    // out before the reset, so the connection never reaches the application's accept queue.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn({
        let accepted = accepted.clone();
        async move {
            while server.accept().await.is_ok() {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    for _ in 0..50 {
        passes(TcpCheck::new(addr), "the kernel answers").await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A delayed ACK fires after 40 ms: a check descheduled that long may be accepted; allow
    // a few on a loaded machine, not most.
    let n = accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n <= 5, "{n} of 50 checks reached accept()");
    // A check that sends bytes does reach the application (the ACK rides on the data).
    let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = server.accept().await.unwrap();
        let mut buf = vec![0u8; 6];
        sock.read_exact(&mut buf).await.unwrap();
        let _ = tx.send(buf);
    });
    passes(TcpCheck::new(addr).send("HELLO\n"), "sent").await;
    assert_eq!(rx.await.unwrap(), b"HELLO\n");
}
