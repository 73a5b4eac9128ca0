//! The exec check against real programs: exit codes, arguments without a shell, a script that
//! hangs (killed at the timeout with everything it started, no zombie left), one run in flight.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::at_once;

use health_check::exec::become_subreaper;
use health_check::{Check, CheckError, ExecCheck, Health, Monitor};

/// The processes (alive or zombie) in process group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            out.push((pid, fields[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

/// Waits up to 500 ms for the group to be empty; returns what is left. (Without
/// `become_subreaper`, this machine's pid 1 reaps orphans only after about a second.)
async fn group_gone(pgid: u32) -> Vec<(u32, char)> {
    for _ in 0..50 {
        let left = group_members(pgid);
        if left.is_empty() {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    group_members(pgid)
}

/// The process group of the script that wrote its pid to `pid_file` is gone, zombies too.
async fn assert_group_gone(pid_file: &std::path::Path) {
    let pgid = read_pgid(pid_file).await;
    let left = group_gone(pgid).await;
    assert!(left.is_empty(), "{left:?}");
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hc-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Reads the pgid a script wrote (`echo $$`; the script leads its own group).
async fn read_pgid(path: &std::path::Path) -> u32 {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the script never wrote {}", path.display());
}

#[tokio::test]
async fn exit_codes_and_the_reason_in_words() {
    ExecCheck::new("true")
        .check()
        .await
        .expect("exit 0 is healthy");
    let err = ExecCheck::new("false").check().await.unwrap_err();
    assert_eq!(err.to_string(), "false: exited with status 1");
    let err = ExecCheck::shell("echo first >&2; echo second >&2; exit 7")
        .check()
        .await
        .unwrap_err();
    assert!(matches!(err, CheckError::Exec { .. }));
    assert_eq!(
        err.to_string(),
        "sh -c \"echo first >&2; echo second >&2; exit 7\": exited with status 7: first"
    );
    let err = ExecCheck::shell("kill -9 $$").check().await.unwrap_err();
    assert!(err.to_string().ends_with("killed by signal 9"), "{err}");
    let err = ExecCheck::new("/nonexistent/check-script")
        .check()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/check-script: could not start: No such file"),
        "{err}"
    );
}

#[tokio::test]
async fn arguments_reach_the_program_without_a_shell() {
    // `test "a b" = "a b"`: with no shell, the spaces and the `$` stay inside the arguments.
    ExecCheck::new("test")
        .args(["a b;$HOME", "=", "a b;$HOME"])
        .check()
        .await
        .expect("no word splitting, no expansion");
    // Through a shell the same words split and expand, and the test fails.
    ExecCheck::shell("test a b;$HOME = a b;$HOME")
        .check()
        .await
        .expect_err("the shell splits them");
    ExecCheck::new("sh")
        .args(["-c", "test \"$CHECK_TARGET\" = 10.99.0.200"])
        .env("CHECK_TARGET", "10.99.0.200")
        .check()
        .await
        .expect("environment passed");
    assert_eq!(
        ExecCheck::new("/usr/lib/check")
            .args(["--port", "80"])
            .describe(),
        "exec /usr/lib/check --port 80"
    );
}

#[tokio::test]
async fn a_hanging_script_is_killed_at_the_monitor_timeout_with_its_children_no_zombie() {
    become_subreaper().expect("prctl");
    let pid_file = temp_file("hang.pid");
    // The script starts two children and waits forever.
    let script = format!(
        "echo $$ > {}; sleep 1000 & sleep 1000 & wait",
        pid_file.display()
    );
    let config = at_once(Duration::from_secs(10))
        .timeout(Duration::from_millis(300))
        .fall(1);
    let started = std::time::Instant::now();
    let m = Monitor::spawn(Arc::new(ExecCheck::shell(script)), config).expect("valid config");
    let pgid = read_pgid(&pid_file).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = group_members(pgid);
    assert_eq!(running.len(), 3, "sh and two sleeps run: {running:?}");
    let mut rx = m.subscribe();
    while rx.borrow().health == Health::Up {
        rx.changed().await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let error = rx.borrow().last_error.clone().unwrap_or_default();
    assert_eq!(error, "no answer within 300ms");
    let left = group_gone(pgid).await;
    assert!(left.is_empty(), "left in the group (Z = zombie): {left:?}");
}

#[tokio::test]
async fn own_timeout_kills_the_group_when_called_directly() {
    become_subreaper().expect("prctl");
    let pid_file = temp_file("own.pid");
    let check = ExecCheck::shell(format!("echo $$ > {}; sleep 1000", pid_file.display()))
        .timeout(Duration::from_millis(200));
    let err = check.check().await.unwrap_err();
    assert!(
        matches!(err, CheckError::Timeout { after } if after == Duration::from_millis(200)),
        "{err}"
    );
    assert_group_gone(&pid_file).await;
}

#[tokio::test]
async fn background_children_of_a_finished_run_do_not_outlive_it() {
    become_subreaper().expect("prctl");
    let pid_file = temp_file("bg.pid");
    let check = ExecCheck::shell(format!(
        "echo $$ > {}; sleep 1000 & exit 0",
        pid_file.display()
    ));
    check.check().await.expect("exit 0");
    assert_group_gone(&pid_file).await;
}

#[tokio::test]
async fn at_most_one_run_in_flight() {
    let check = Arc::new(ExecCheck::new("sleep").arg("0.3"));
    let first = tokio::spawn({
        let check = check.clone();
        async move { check.check().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = check.check().await.unwrap_err();
    assert_eq!(
        second.to_string(),
        "sleep 0.3: the previous run is still in flight"
    );
    first
        .await
        .unwrap()
        .expect("the first run finishes normally");
    check.check().await.expect("free again afterwards");
}

#[tokio::test]
async fn monitor_follows_a_script_through_fall_and_rise() {
    let flag = temp_file("healthy");
    std::fs::write(&flag, "").unwrap();
    let config = at_once(Duration::from_millis(30)).rise(2).fall(2);
    let check = ExecCheck::new("test").arg("-e").arg(&flag);
    let m = Monitor::spawn(Arc::new(check), config).expect("valid config");
    let mut transitions = m.transitions();
    let mut rx = m.subscribe();
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow().health, Health::Up);
    std::fs::remove_file(&flag).unwrap();
    let down = tokio_stream::StreamExt::next(&mut transitions)
        .await
        .unwrap();
    assert_eq!((down.to, down.failures), (Health::Down, 2));
    assert!(
        down.last_error
            .as_deref()
            .unwrap_or("")
            .ends_with("exited with status 1"),
        "{down:?}"
    );
    std::fs::write(&flag, "").unwrap();
    let up = tokio_stream::StreamExt::next(&mut transitions)
        .await
        .unwrap();
    assert_eq!((up.to, up.successes), (Health::Up, 2));
}
