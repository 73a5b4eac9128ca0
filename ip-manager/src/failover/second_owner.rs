//! [`SecondOwnerWatch`]: split brain seen on the wire. While the router is Master, its
//! virtual addresses are probed ([`OwnerProbe`]) once per interval; another host answering for
//! one is a second Master that VRRP does not see (adverts blocked both ways: a firewall, a
//! security group) or a host that kept the address after its daemon died.
//!
//! Each episode is reported once when it starts ([`FailoverEvent::SecondOwner`]) and once when
//! it ends ([`FailoverEvent::SecondOwnerGone`], with its duration): after
//! [`quiet_rounds`](SecondOwnerWatch::quiet_rounds) probes in a row without an answer, or when
//! this router leaves Master.
//!
//! A peer that answers for the address for a moment is reported too, with its short duration:
//! FRR 8.4's macvlan answers ARP for a round while its vrrpd starts (measured in the lab). The
//! answer was real (a client asking then would have learnt the wrong host); the duration tells
//! a transient from a split brain that lasts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vrrp_core::State;

use super::FailoverEvent;
use crate::{OwnerAnswer, OwnerProbe, Vip};

/// Counters of a [`SecondOwnerWatch`], for status pages and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondOwnerStats {
    /// Rounds of probes sent.
    pub probes: u64,
    /// Episodes so far (one per address and other holder).
    pub episodes: u64,
    /// Of those, the ones going on now.
    pub open: u64,
}

#[derive(Debug, Default)]
struct Counters {
    probes: AtomicU64,
    episodes: AtomicU64,
    open: AtomicU64,
}

/// Probes a Master's virtual addresses for a second holder, one round per interval from one
/// interval after becoming Master; an episode starts at its first answer
/// ([`FailoverEvent::SecondOwner`]) and ends after [`quiet_rounds`](Self::quiet_rounds) rounds
/// without one, or on leaving Master ([`FailoverEvent::SecondOwnerGone`]).
///
/// ```no_run
/// use std::time::Duration;
/// use ip_manager::failover::{SecondOwnerWatch, VipApplier};
/// use ip_manager::{NetlinkManager, OwnerProbe, Vip};
///
/// # async fn watch(applier: &VipApplier) -> Result<(), ip_manager::Error> {
/// let netlink = NetlinkManager::new()?;
/// let vips = vec![Vip::parse("10.99.0.200/24", "eth0")?];
/// let addresses: Vec<_> = vips.iter().map(|v| v.address).collect();
/// let probe = OwnerProbe::new(&netlink, "eth0", &addresses).await?;
/// let (reports, mut read) = tokio::sync::mpsc::channel(16);
/// let watch = SecondOwnerWatch::new(probe, &vips)
///     .interval(Duration::from_secs(1)) // the advert interval
///     .spawn(applier.state(), reports);
/// while let Some(event) = read.recv().await {
///     eprintln!("{event}"); // "split brain: 10.99.0.200/24 on eth0 is also held by ..."
/// }
/// # drop(watch);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "it probes nothing until spawned"]
pub struct SecondOwnerWatch {
    probe: OwnerProbe,
    vips: Vec<Vip>,
    interval: Duration,
    quiet_rounds: u32,
}

impl SecondOwnerWatch {
    /// A watch of `vips` with `probe`; one round a second, episodes ending after 3 quiet
    /// rounds.
    pub fn new(probe: OwnerProbe, vips: &[Vip]) -> SecondOwnerWatch {
        SecondOwnerWatch {
            probe,
            vips: vips.to_vec(),
            interval: Duration::from_secs(1),
            quiet_rounds: 3,
        }
    }

    /// Time between rounds (default 1 s; give the advert interval, no less than 10 ms).
    /// The first round goes out one interval after becoming Master, when a preempted Master
    /// has let its addresses go; an answer comes back within a round, so a second holder is
    /// reported at most two intervals after both hold the address.
    pub fn interval(mut self, interval: Duration) -> SecondOwnerWatch {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Rounds in a row without an answer that end an episode (default 3, at least 1).
    pub fn quiet_rounds(mut self, rounds: u32) -> SecondOwnerWatch {
        self.quiet_rounds = rounds.max(1);
        self
    }

    /// Probes while `state` says Master, reporting on `reports` (a full channel loses the
    /// report, never holds up the probes). Stops when the state's sender is gone or the
    /// handle is dropped.
    pub fn spawn(
        self,
        state: watch::Receiver<State>,
        reports: mpsc::Sender<FailoverEvent>,
    ) -> SecondOwnerHandle {
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(self, state, reports, counters.clone()));
        SecondOwnerHandle { task, counters }
    }
}

/// A running [`SecondOwnerWatch`]; dropping it stops the probes.
#[derive(Debug)]
#[must_use = "dropping the handle stops the probes"]
pub struct SecondOwnerHandle {
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl SecondOwnerHandle {
    /// The counters now.
    pub fn stats(&self) -> SecondOwnerStats {
        let c = &self.counters;
        SecondOwnerStats {
            probes: c.probes.load(Ordering::Relaxed),
            episodes: c.episodes.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SecondOwnerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Episode {
    vip: Vip,
    first: Instant,
    last: Instant,
    answers: u64,
    quiet: u32,
}

async fn run(
    w: SecondOwnerWatch,
    mut state: watch::Receiver<State>,
    reports: mpsc::Sender<FailoverEvent>,
    counters: Arc<Counters>,
) {
    let addresses: Vec<IpAddr> = w.vips.iter().map(|v| v.address).collect();
    let ours = w.probe.mac();
    let report = |e: FailoverEvent| {
        let _ = reports.try_send(e);
    };
    loop {
        if state.wait_for(|s| *s == State::Master).await.is_err() {
            return;
        }
        let mut open: BTreeMap<OwnerAnswer, Episode> = BTreeMap::new();
        // The first round one interval in: a preempted Master has let the addresses go.
        let mut round = Instant::now() + w.interval;
        let mut asked = false;
        let mut answered: Vec<OwnerAnswer> = Vec::new();
        loop {
            let answer = tokio::select! {
                () = tokio::time::sleep_until(round) => None,
                a = w.probe.answer() => Some(a),
                changed = state.wait_for(|s| *s != State::Master) => {
                    if changed.is_err() {
                        return;
                    }
                    let now = Instant::now();
                    for (answer, e) in std::mem::take(&mut open) {
                        report(gone(answer, &e, now - e.first, true));
                    }
                    counters.open.store(0, Ordering::Relaxed);
                    break;
                }
            };
            let now = Instant::now();
            if let Some(answer) = answer {
                // Reported as it comes, not at the end of the round.
                if !asked || !addresses.contains(&answer.address) {
                    continue;
                }
                // A holder may answer a round more than once (each of its devices that
                // holds the address): counted once a round.
                let first_this_round = !answered.contains(&answer);
                if first_this_round {
                    answered.push(answer);
                }
                if let Some(e) = open.get_mut(&answer) {
                    if first_this_round {
                        e.last = now;
                        e.answers += 1;
                        e.quiet = 0;
                    }
                } else if let Some(vip) = w.vips.iter().find(|v| v.address == answer.address) {
                    counters.episodes.fetch_add(1, Ordering::Relaxed);
                    report(FailoverEvent::SecondOwner {
                        vip: vip.clone(),
                        theirs: answer.mac,
                        ours,
                    });
                    let (first, last) = (now, now);
                    let (answers, quiet) = (1, 0);
                    let vip = vip.clone();
                    let e = Episode {
                        vip,
                        first,
                        last,
                        answers,
                        quiet,
                    };
                    open.insert(answer, e);
                }
                counters.open.store(open.len() as u64, Ordering::Relaxed);
                continue;
            }
            // A round ends: who did not answer it is one round quieter.
            if asked {
                let quiet: Vec<OwnerAnswer> = open
                    .iter_mut()
                    .filter(|(a, _)| !answered.contains(a))
                    .filter_map(|(a, e)| {
                        e.quiet += 1;
                        (e.quiet >= w.quiet_rounds).then_some(*a)
                    })
                    .collect();
                for answer in quiet {
                    if let Some(e) = open.remove(&answer) {
                        report(gone(answer, &e, e.last - e.first, false));
                    }
                }
                counters.open.store(open.len() as u64, Ordering::Relaxed);
            }
            answered.clear();
            round += w.interval;
            // A failed send (the link going down: the router goes to Fault) counts as a
            // round without answers.
            let _ = w.probe.ask(&addresses);
            asked = true;
            counters.probes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn gone(answer: OwnerAnswer, e: &Episode, duration: Duration, left_master: bool) -> FailoverEvent {
    FailoverEvent::SecondOwnerGone {
        vip: e.vip.clone(),
        theirs: answer.mac,
        duration,
        answers: e.answers,
        left_master,
    }
}
