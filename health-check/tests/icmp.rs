//! [`IcmpCheck`] against real kernels: loopback answers (IPv4 and IPv6); an address in a
//! network namespace of the test's own that nobody holds, and one whose host ignores echo
//! requests, do not, and the check fails after its timeout, not before and not much later.
//! Needs root (raw ICMP socket, a new namespace); skipped with a note otherwise.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use health_check::{Check, CheckError, IcmpCheck};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("runs ip");
    assert!(out.status.success(), "ip {args}: {out:?}");
}

/// Runs `test` on a thread of its own in a new network namespace (gone with the thread):
/// loopback up, and a veth pair whose end `v0` holds 10.250.0.1/24 and fd00:250::1/64 while
/// nothing holds .2 or ::2 (the other end has no address: neighbour resolution goes
/// unanswered). Without root, skips the test with a note.
fn in_namespace(test: impl FnOnce() + Send + 'static) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        // Commands forked from this thread run in its namespace.
        ip("link set lo up");
        ip("link add v0 type veth peer name v1");
        ip("addr add 10.250.0.1/24 dev v0");
        ip("-6 addr add fd00:250::1/64 dev v0 nodad");
        ip("link set v1 up");
        ip("link set v0 up");
        test();
    })
    .join()
    .expect("the test passed");
}

fn run(check: &IcmpCheck) -> (Result<(), CheckError>, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let result = rt.block_on(check.check());
    (result, start.elapsed())
}

#[test]
fn loopback_answers_over_ipv4_and_ipv6() {
    in_namespace(|| {
        for addr in ["127.0.0.1", "::1", "10.250.0.1", "fd00:250::1"] {
            let check = IcmpCheck::new(addr.parse().expect("an address"));
            for _ in 0..3 {
                let (result, took) = run(&check);
                assert!(result.is_ok(), "{addr}: {result:?}");
                assert!(took < Duration::from_millis(500), "{addr}: {took:?}");
            }
            assert_eq!(check.describe(), format!("icmp {addr}"));
        }
    });
}

#[test]
fn an_address_that_does_not_answer_fails_at_the_timeout() {
    in_namespace(|| {
        let timeout = Duration::from_millis(300);
        for addr in ["10.250.0.2", "fd00:250::2"] {
            let addr: IpAddr = addr.parse().expect("an address");
            let (result, took) = run(&IcmpCheck::new(addr).timeout(timeout));
            assert!(
                matches!(result, Err(CheckError::Timeout { after }) if after == timeout),
                "{addr}: {result:?}"
            );
            assert!(
                took >= timeout && took < timeout + Duration::from_millis(700),
                "{addr}: {took:?}"
            );
        }
    });
}

#[test]
fn a_host_that_ignores_echo_requests_is_down_and_up_again_when_it_answers() {
    in_namespace(|| {
        let sysctl = |v: u8| {
            let path = "/proc/sys/net/ipv4/icmp_echo_ignore_all";
            std::fs::write(path, v.to_string()).expect("per-namespace sysctl");
        };
        let check = IcmpCheck::new("10.250.0.1".parse().expect("an address"))
            .timeout(Duration::from_millis(200));
        sysctl(1);
        let (result, _) = run(&check);
        assert!(
            matches!(result, Err(CheckError::Timeout { .. })),
            "{result:?}"
        );
        sysctl(0);
        // The late reply to nothing and a fresh request: only the fresh one's reply counts.
        let (result, _) = run(&check);
        assert!(result.is_ok(), "{result:?}");
    });
}
