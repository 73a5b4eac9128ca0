//! `IP_FREEBIND` in a namespace: lbd's TCP proxy listens on a VIP that no interface of its
//! host holds yet, as it must when it starts on a VRRP Backup. On host h1 of a lab, with
//! `net.ipv4.ip_nonlocal_bind = 0` (so that nothing but the socket option allows it), a plain
//! `bind` to the VIP fails with `EADDRNOTAVAIL` while the proxy's listener starts; then the VIP
//! is added to h1's eth0 (what vrrpd does on a takeover) and a client in the lab's client
//! namespace gets an echo from a server that listens on h1's loopback only, so the bytes came
//! through the proxy on the VIP.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use lb_core::RoundRobin;
use lb_core::proxy::{ServerSettings, TcpProxy, TcpSettings};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const VIP: &str = "10.99.0.200";
const PORT: u16 = 8000;
const WAIT: Duration = Duration::from_secs(5);

/// `ip args…`, which must succeed.
fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Moves the calling thread into network namespace `netns` (sockets opened afterwards are
/// the namespace's).
fn enter(netns: &str) {
    let file = std::fs::File::open(PathBuf::from("/run/netns").join(netns))
        .unwrap_or_else(|e| panic!("namespace {netns}: {e}"));
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// A server on loopback that echoes every byte (loopback of the namespace it runs in).
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// What the proxy's namespace thread reports once it has tried to listen.
struct Listening {
    /// What a plain `bind` to the VIP gave.
    plain_bind: std::io::Result<()>,
    /// The proxy's address, or why it did not start.
    proxy: Result<SocketAddr, String>,
}

/// Runs, in namespace `netns` on a thread of its own: the plain-bind probe, an echo server on
/// loopback and a [`TcpProxy`] on `bind` in front of it, until `stop` fires. Returns the
/// thread and what it found (sent once the proxy is listening or failed).
fn spawn_proxy(
    netns: String,
    bind: SocketAddr,
    stop: oneshot::Receiver<()>,
) -> (std::thread::JoinHandle<u64>, mpsc::Receiver<Listening>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        enter(&netns);
        let plain_bind = std::net::TcpListener::bind(bind).map(drop);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let echo = echo_server().await;
            let settings =
                TcpSettings::new("freebind", bind, vec![ServerSettings::new("echo", echo)]);
            let proxy = match TcpProxy::start(settings, RoundRobin) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Listening {
                        plain_bind,
                        proxy: Err(e.to_string()),
                    });
                    return 0;
                }
            };
            let _ = tx.send(Listening {
                plain_bind,
                proxy: Ok(proxy.local_addr()),
            });
            let _ = stop.await;
            let served = proxy.stats().servers.iter().map(|s| s.total).sum();
            proxy.drain(WAIT).await;
            served
        })
    });
    (thread, rx)
}

/// From namespace `netns`: connects to `to`, sends `message`, half-closes, returns what came
/// back.
fn echo_from(netns: String, to: SocketAddr, message: &'static [u8]) -> Vec<u8> {
    std::thread::spawn(move || {
        enter(&netns);
        let mut stream = TcpStream::connect_timeout(&to, WAIT)
            .unwrap_or_else(|e| panic!("connecting from {netns} to {to}: {e}"));
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream.write_all(message).expect("the client writes");
        stream.shutdown(Shutdown::Write).expect("half-close");
        let mut back = Vec::new();
        stream.read_to_end(&mut back).expect("the client reads");
        back
    })
    .join()
    .expect("the client thread")
}

#[test]
fn the_proxy_listens_on_an_absent_vip_and_serves_once_it_arrives() {
    let test = "the_proxy_listens_on_an_absent_vip_and_serves_once_it_arrives";
    let Some(netlab) = lab::Netlab::or_skip(test, "fb") else {
        return;
    };
    netlab.up();
    let (host, client) = (netlab.ns("h1"), netlab.ns("cl"));

    // Only IP_FREEBIND may allow the bind: not the namespace's sysctl, not an address.
    ip(&[
        "netns",
        "exec",
        &host,
        "sysctl",
        "-qw",
        "net.ipv4.ip_nonlocal_bind=0",
    ]);
    let sysctl = ip(&[
        "netns",
        "exec",
        &host,
        "sysctl",
        "-n",
        "net.ipv4.ip_nonlocal_bind",
    ]);
    assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "0");
    let addrs = ip(&["-n", &host, "-o", "addr", "show"]);
    assert!(
        !String::from_utf8_lossy(&addrs.stdout).contains(VIP),
        "{VIP} is already on {host}"
    );

    let bind = SocketAddr::new(VIP.parse().expect("VIP"), PORT);
    let (stop, stopped) = oneshot::channel();
    let (thread, listening) = spawn_proxy(host.clone(), bind, stopped);
    let found = listening
        .recv_timeout(WAIT)
        .expect("the proxy's thread reports");
    let plain = found
        .plain_bind
        .expect_err("a plain bind to an absent VIP fails");
    assert_eq!(
        plain.kind(),
        std::io::ErrorKind::AddrNotAvailable,
        "a plain bind to {bind}: {plain}"
    );
    let listens = found
        .proxy
        .unwrap_or_else(|e| panic!("the proxy does not start on the absent {bind}: {e}"));
    assert_eq!(listens, bind);

    // The takeover: the VIP arrives on h1's interface, the proxy serves on it.
    ip(&[
        "-n",
        &host,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "eth0",
    ]);
    let message = b"through the proxy on the VIP";
    let back = echo_from(client, bind, message);
    assert_eq!(
        back,
        message.to_vec(),
        "the echo through {bind}: {:?}",
        String::from_utf8_lossy(&back)
    );

    let _ = stop.send(());
    let served = thread.join().expect("the proxy's thread");
    assert_eq!(served, 1, "the echo server's connections through the proxy");
}
