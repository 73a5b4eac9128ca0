//! The lab's client: a steady ping at the VIP, read back as the times of its replies, for
//! the longest gap a client saw in a handover.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::vrrp::Lab;

/// One ping from the client to `vip` (`-c 1 -W 1`): whether it was answered.
pub(crate) fn pings(lab: &Lab, vip: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("cl"),
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            vip,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The client's neighbour entry for `vip` (`ip neigh show VIP`).
pub(crate) fn neighbour(lab: &Lab, vip: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", &lab.ns("cl"), "neigh", "show", vip])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ping -D -i 0.1` from the client to the VIP, read back as reply times.
pub(crate) struct Pinger {
    child: Child,
    out: PathBuf,
}

impl Pinger {
    /// Starts pinging `vip` every 100 ms from the client namespace.
    pub(crate) fn start(lab: &Lab, name: &str, vip: &str) -> Pinger {
        let out = lab.dir.join(format!("{name}.ping"));
        let file = std::fs::File::create(&out).expect("ping output");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("cl"),
                "ping",
                "-D",
                "-n",
                "-i",
                "0.1",
                vip,
            ])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("ping starts");
        Pinger { child, out }
    }

    /// The reply times (seconds since the epoch) so far.
    pub(crate) fn replies(&self) -> Vec<f64> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect()
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds since the epoch, as `ping -D` prints them.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The longest time without a reply between `from` and the first reply after `to`.
pub(crate) fn longest_gap(replies: &[f64], from: f64, to: f64) -> f64 {
    let mut last = from;
    let mut worst: f64 = 0.0;
    for &t in replies.iter().filter(|&&t| t > from) {
        worst = worst.max(t - last);
        last = t;
        if t > to {
            break;
        }
    }
    worst
}

/// Waits until the client has replies again after `since` and for 1 s more (a settled path).
pub(crate) fn settled(pinger: &Pinger, since: f64, within: Duration) {
    let started = Instant::now();
    loop {
        let replies = pinger.replies();
        let after: Vec<&f64> = replies.iter().filter(|&&t| t > since).collect();
        if after.len() >= 2 && *after[after.len() - 1] - *after[0] >= 1.0 {
            return;
        }
        assert!(started.elapsed() < within, "the client got no replies back");
        std::thread::sleep(Duration::from_millis(50));
    }
}
