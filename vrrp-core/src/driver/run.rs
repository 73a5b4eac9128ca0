//! [`Driver`]: the loop that runs routers on a [`VrrpSocket`].

use std::io;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::driver::timer::Deadline;
use crate::driver::{DriverSnapshot, MAX_DATAGRAM, RouterSnapshot, VrrpSocket};
use crate::packet::Vrid;
use crate::{Event, Router};

/// What the owner of a [`Driver`] can tell it while it runs.
///
/// Routers are named by their VRID: a driver serves one interface and address family, where
/// a VRID is unique.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// A tracked object of router `vrid` changed (`index` into its `Config::trackers`).
    /// Unknown VRIDs and indexes are ignored.
    Tracker {
        /// The router.
        vrid: Vrid,
        /// The tracker's index.
        index: usize,
        /// Up or not.
        up: bool,
    },
    /// The interface's link went up or down (every router on it).
    Link {
        /// Up or not.
        up: bool,
    },
    /// Adds a router and starts it at once ([`Router::startup`]). It must be of the socket's
    /// address family (adverts of another family fail and count in
    /// [`DriverStats::send_errors`]). A router already serving its VRID is first removed as
    /// by [`Command::Remove`], so that replacing a router is one command.
    Add(Box<Router>),
    /// Removes router `vrid` gracefully: it shuts down ([`Router::shutdown`]: a Master sends
    /// priority 0, RFC 5798 §6.4.3), its last advert is sent and its last events are
    /// delivered (the final one is `StateChanged` to [`State::Initialize`](crate::State)
    /// with [`Reason::Shutdown`](crate::Reason)); then it is dropped. The other routers run
    /// on untouched. An unknown VRID is ignored.
    Remove {
        /// The router.
        vrid: Vrid,
    },
    /// Router `vrid` follows a member of its sync group into `to` ([`Router::follow`]).
    Follow {
        /// The router.
        vrid: Vrid,
        /// The state the group member entered.
        to: crate::State,
        /// The member's name, for the router's [`Reason::SyncGroup`](crate::Reason).
        member: String,
    },
    /// Replies with a [`DriverSnapshot`] of every router and the driver's counters (taken
    /// between two inputs; a closed reply channel is ignored).
    Snapshot(oneshot::Sender<DriverSnapshot>),
    /// Stop gracefully: a Master sends priority 0 (RFC 5798 §6.4.3), then the driver returns.
    Stop,
}

/// An event of one of the driver's routers.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverEvent {
    /// The router's VRID.
    pub vrid: Vrid,
    /// When the router produced it.
    pub at: Instant,
    /// What happened.
    pub event: Event,
}

/// What the driver itself counted (the routers count the rest in their own `stats()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams that were not VRRP over IP at all (truncated, bad IP header).
    pub malformed: u64,
    /// Advertisements for a VRID no router here serves.
    pub unknown_vrid: u64,
    /// Advertisements that could not be sent (the error is logged by the caller's events).
    pub send_errors: u64,
}

/// Runs routers on one socket: feeds them received advertisements (dispatched by VRID) and
/// their deadlines, sends what they transmit, and forwards their events. Routers can be added
/// and removed while it runs ([`Command::Add`], [`Command::Remove`]) without disturbing the
/// others, and it reports on demand ([`Command::Snapshot`]).
#[derive(Debug)]
pub struct Driver {
    socket: VrrpSocket,
    routers: Vec<Router>,
    stats: DriverStats,
}

impl Driver {
    /// A driver for `routers`, all on `socket`'s interface and address family.
    pub fn new(socket: VrrpSocket, routers: Vec<Router>) -> Driver {
        Driver {
            socket,
            routers,
            stats: DriverStats::default(),
        }
    }

    /// Starts the routers and runs until [`Command::Stop`] (or the command channel closing),
    /// then shuts them down gracefully and returns the driver's counters. Socket read errors
    /// other than malformed datagrams end the loop with the error.
    ///
    /// Deadlines are kept with a timerfd (microseconds), not tokio's millisecond timer: a
    /// Backup's takeover starts within microseconds of its Master_Down deadline.
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) -> io::Result<DriverStats> {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut timer = Deadline::new()?;
        let now = Instant::now();
        for r in &mut self.routers {
            r.startup(now.into_std());
        }
        self.flush(&events).await;
        loop {
            let deadline = self.routers.iter().filter_map(Router::poll_timeout).min();
            timer.arm(deadline)?;
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None | Some(Command::Stop) => {
                        let now = Instant::now().into_std();
                        for r in &mut self.routers {
                            r.shutdown(now);
                        }
                        self.flush(&events).await;
                        return Ok(self.stats);
                    }
                    Some(Command::Tracker { vrid, index, up }) => {
                        let now = Instant::now().into_std();
                        for r in self.routers.iter_mut().filter(|r| r.config().vrid == vrid) {
                            r.set_tracker(now, index, up);
                        }
                    }
                    Some(Command::Link { up }) => {
                        let now = Instant::now().into_std();
                        for r in &mut self.routers {
                            r.set_link(now, up);
                        }
                    }
                    Some(Command::Add(router)) => {
                        let mut router = *router;
                        self.remove(router.config().vrid, &events).await;
                        router.startup(Instant::now().into_std());
                        self.routers.push(router);
                    }
                    Some(Command::Remove { vrid }) => self.remove(vrid, &events).await,
                    Some(Command::Follow { vrid, to, member }) => {
                        if let Some(r) = self.routers.iter_mut().find(|r| r.config().vrid == vrid) {
                            r.follow(Instant::now().into_std(), to, &member);
                        }
                    }
                    Some(Command::Snapshot(reply)) => {
                        // Nobody waiting for the answer any more is not an error.
                        let _ = reply.send(self.snapshot());
                    }
                },
                fired = timer.fired() => {
                    fired?;
                    let now = Instant::now().into_std();
                    for r in &mut self.routers {
                        if r.poll_timeout().is_some_and(|d| d <= now) {
                            r.handle_timeout(now);
                        }
                    }
                }
                received = self.socket.recv(&mut buffer) => match received {
                    Ok(rx) => {
                        let now = Instant::now().into_std();
                        // The VRID is the second byte in both versions.
                        let vrid = rx.payload.get(1).copied();
                        let mut served = false;
                        for r in &mut self.routers {
                            if Some(r.config().vrid.get()) == vrid {
                                r.handle_packet(now, rx.header, rx.payload);
                                served = true;
                            }
                        }
                        if !served {
                            self.stats.unknown_vrid += 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => self.stats.malformed += 1,
                    Err(e) => return Err(e),
                },
            }
            self.flush(&events).await;
        }
    }

    /// Sends every pending advertisement, then forwards every pending event: on a takeover
    /// the advertisement leaves first, then the owner adds the addresses and announces them.
    async fn flush(&mut self, events: &mpsc::UnboundedSender<DriverEvent>) {
        for i in 0..self.routers.len() {
            self.flush_one(i, events).await;
        }
    }

    async fn flush_one(&mut self, i: usize, events: &mpsc::UnboundedSender<DriverEvent>) {
        let Some(router) = self.routers.get_mut(i) else {
            return;
        };
        while let Some(t) = router.poll_transmit() {
            if self.socket.send(&t).await.is_err() {
                self.stats.send_errors += 1;
            }
        }
        let vrid = router.config().vrid;
        while let Some(event) = router.poll_event() {
            // Nobody listening is not the driver's problem: the routers run on.
            let _ = events.send(DriverEvent {
                vrid,
                at: Instant::now(),
                event,
            });
        }
    }

    /// Shuts router `vrid` down, sends and forwards what it still has, and drops it.
    async fn remove(&mut self, vrid: Vrid, events: &mpsc::UnboundedSender<DriverEvent>) {
        let Some(i) = self.routers.iter().position(|r| r.config().vrid == vrid) else {
            return;
        };
        // Whatever the others queued goes first, so events keep their order.
        self.flush(events).await;
        self.routers[i].shutdown(Instant::now().into_std());
        self.flush_one(i, events).await;
        self.routers.remove(i);
    }

    fn snapshot(&self) -> DriverSnapshot {
        DriverSnapshot {
            routers: self.routers.iter().map(RouterSnapshot::of).collect(),
            stats: self.stats,
        }
    }
}
