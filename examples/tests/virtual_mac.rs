//! The virtual router MAC (RFC 5798 §7.3, keepalived's `use_vmac`) through the public
//! failover API: two hosts run `Failover::builder(..).virtual_mac(true)`; each makes its
//! macvlan `vrrp.51` with `00:00:5e:00:01:33`; the Master holds the VIP there, and the client's
//! neighbour entry for the VIP is the virtual MAC. The Master stops: the other host takes over
//! and the client reaches the VIP at once with the same neighbour entry (nothing to re-learn);
//! the stopped host's macvlan is gone.
//!
//! Needs root and iproute2; under `CI` a missing prerequisite fails the test.

mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use ip_manager::failover::Failover;
use lab::client::pings;
use lab::vrrp::{Lab, V3_IPV4_100MS};
use tokio::sync::oneshot;
use vrrp_core::State;

const VMAC: &str = "00:00:5e:00:01:33";

/// Runs a failover with a virtual MAC on `host` until `stop` fires; `ready` says when it
/// has reached `until` (Master or Backup).
fn host(
    lab: &Lab,
    host: &str,
    priority: u8,
    until: State,
    ready: std::sync::mpsc::Sender<()>,
    stop: oneshot::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    let ns = lab.ns(host);
    std::thread::spawn(move || {
        lab::in_namespace(&ns, move || async move {
            let failover = Failover::builder("eth0", 51)
                .virtual_address("10.99.0.200/24")
                .priority(priority)
                .advert_interval(Duration::from_millis(100))
                .virtual_mac(true)
                .start()
                .await
                .expect("starts");
            tokio::time::timeout(Duration::from_secs(3), failover.wait_for(until))
                .await
                .expect("settles within 3 s")
                .expect("the driver runs");
            let _ = ready.send(());
            let _ = stop.await;
            failover.stop().await;
        })
    })
}

fn ip_out(lab: &Lab, host: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", &lab.ns(host)])
        .args(args)
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn with_a_virtual_mac_the_client_keeps_its_neighbour_entry_across_a_takeover() {
    let test = "with_a_virtual_mac_the_client_keeps_its_neighbour_entry_across_a_takeover";
    let Some(netlab) = lab::netlab_or_skip(test, &[("ip", "-V"), ("ping", "-V")]) else {
        return;
    };
    let lab = Lab::up(netlab, "vm", V3_IPV4_100MS);
    let (ready, settled) = std::sync::mpsc::channel();
    let (stop1, stop1_rx) = oneshot::channel();
    let (stop2, stop2_rx) = oneshot::channel();
    let h1 = host(&lab, "h1", 101, State::Master, ready.clone(), stop1_rx);
    settled
        .recv_timeout(Duration::from_secs(10))
        .expect("h1 Master");
    let h2 = host(&lab, "h2", 100, State::Backup, ready, stop2_rx);
    settled
        .recv_timeout(Duration::from_secs(10))
        .expect("h2 Backup");

    for h in ["h1", "h2"] {
        let link = ip_out(&lab, h, &["-o", "link", "show", "vrrp.51"]);
        assert!(link.contains(VMAC), "{h}: {link}");
    }
    assert!(
        ip_out(&lab, "h1", &["-o", "addr", "show", "dev", "vrrp.51"]).contains("10.99.0.200/24")
    );
    assert!(!ip_out(&lab, "h2", &["-o", "addr"]).contains("10.99.0.200"));
    assert!(
        pings(&lab, "10.99.0.200"),
        "the client reaches the VIP on h1"
    );
    let neigh = ip_out(&lab, "cl", &["neigh", "show", "10.99.0.200"]);
    assert!(
        neigh.contains(VMAC),
        "the client's entry is the virtual MAC: {neigh}"
    );

    // h1 stops (priority 0): h2 takes over; the client's entry stays what it was.
    let stopped = Instant::now();
    let _ = stop1.send(());
    h1.join().expect("h1 thread");
    let mut reached = None;
    while stopped.elapsed() < Duration::from_secs(3) {
        if ip_out(&lab, "h2", &["-o", "addr", "show", "dev", "vrrp.51"]).contains("10.99.0.200/24")
            && pings(&lab, "10.99.0.200")
        {
            reached = Some(stopped.elapsed());
            break;
        }
    }
    let reached = reached.expect("the client reaches the VIP on h2 within 3 s");
    let neigh = ip_out(&lab, "cl", &["neigh", "show", "10.99.0.200"]);
    assert!(neigh.contains(VMAC), "still the virtual MAC: {neigh}");
    assert!(
        !ip_out(&lab, "h1", &["-o", "link"]).contains("vrrp.51"),
        "the stopped host's macvlan is gone"
    );
    let _ = stop2.send(());
    h2.join().expect("h2 thread");
    eprintln!(
        "virtual MAC: the client reached the VIP on the new Master {reached:?} after the stop, same neighbour entry"
    );
}
