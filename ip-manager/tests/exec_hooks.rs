//! The exec backend against real processes: exit codes, captured output, no shell by default,
//! and a hanging script (with a child of its own) killed as a whole group at the timeout.

use std::time::Duration;

use ip_manager::{Error, ExecHook, ExecManager, IpManager, Vip};

#[tokio::test]
async fn success_captures_output_and_passes_arguments_literally() {
    // No shell: `$(id)` and `;` reach the program as they are.
    let out = ExecHook::new("printf", ["%s|%s|%s\n"])
        .run(&["$(id)", "a;b", "x y"])
        .await
        .unwrap();
    assert_eq!(out.stdout, "$(id)|a;b|x y\n");
    assert!(out.status.success());
}

#[tokio::test]
async fn shell_hooks_get_extra_arguments_as_positional_parameters() {
    let out = ExecHook::shell("echo \"$1-$2\" >&2; echo out")
        .run(&["master", "VI_1"])
        .await
        .unwrap();
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "master-VI_1\n");
}

#[tokio::test]
async fn keepalived_notify_arguments() {
    let out = ExecHook::new("echo", Vec::<String>::new())
        .notify("VI_1", "MASTER", 101)
        .await
        .unwrap();
    assert_eq!(out.stdout, "INSTANCE VI_1 MASTER 101\n");
}

#[tokio::test]
async fn failure_reports_status_and_stderr() {
    let err = ExecHook::shell("echo 'no route to the API' >&2; exit 3")
        .run(&[])
        .await
        .unwrap_err();
    match &err {
        Error::HookFailed { status, stderr, .. } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "no route to the API\n");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("no route to the API"), "{err}");
    let missing = ExecHook::new("/nonexistent/hook", Vec::<String>::new())
        .run(&[])
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/hook"),
        "{missing}"
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group_and_leaves_no_orphan() {
    let dir = std::env::temp_dir().join(format!("exec-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("child.pid");
    // The script starts a child that would outlive it, records its pid, and hangs.
    let script = format!("sleep 300 & echo $! > {}; sleep 300", pidfile.display());
    let started = std::time::Instant::now();
    let err = ExecHook::shell(script)
        .timeout(Duration::from_millis(300))
        .run(&[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HookTimedOut { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the monitor did not stall"
    );
    let child: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Give the kernel a moment to reap; then the child must be gone (or a zombie of init).
    let mut alive = true;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        alive = !stat.is_empty() && !stat.contains(") Z ");
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive, "the script's child {child} survived the timeout");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn exec_manager_runs_add_and_remove_with_cidr_and_interface() {
    let dir = std::env::temp_dir().join(format!("exec-mgr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls");
    let hook = |verb: &str| ExecHook::shell(format!("echo {verb} \"$@\" >> {}", log.display()));
    let ips = ExecManager::new(hook("add"), hook("del"));
    let vip = Vip::parse("10.99.0.200/24", "eth0").unwrap();
    ips.add(&vip).await.unwrap();
    assert!(ips.owns(&vip).await.unwrap());
    ips.remove(&vip).await.unwrap();
    assert!(!ips.owns(&vip).await.unwrap());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "add 10.99.0.200/24 eth0\ndel 10.99.0.200/24 eth0\n"
    );
    let failing = ExecManager::new(ExecHook::shell("exit 1"), ExecHook::shell("exit 0"));
    assert!(failing.add(&vip).await.is_err());
    assert!(
        !failing.owns(&vip).await.unwrap(),
        "a failed add is not recorded"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
