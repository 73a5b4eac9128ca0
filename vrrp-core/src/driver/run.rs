//! [`Driver`]: the loop that runs routers on a [`VrrpSocket`].

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::driver::timer::Deadline;
use crate::driver::{
    CommandError, DriverSnapshot, MAX_DATAGRAM, Received, RouterSnapshot, VrrpSocket,
};
use crate::packet::Vrid;
use crate::{Event, Router};

/// How many queued datagrams a fired deadline hears before it is handled
/// ([`Driver::drain_queued`]).
const DRAIN_MAX: usize = 64;

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
    /// Router `vrid` steps down on purpose if Master ([`Router::resign`]: priority 0 out,
    /// Backup); the reply says whether it was Master, or that no such router runs.
    Resign {
        /// The router.
        vrid: Vrid,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<bool, CommandError>>,
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
    /// Tracked object `name` of router `vrid` changed; the reply (if any) says whether the
    /// router and the tracker exist, naming the trackers it has when not.
    Track {
        /// The router.
        vrid: Vrid,
        /// The tracker's [`name`](crate::router::Tracker::name).
        name: String,
        /// Up or not.
        up: bool,
        /// Where the outcome goes.
        reply: Option<oneshot::Sender<Result<(), CommandError>>>,
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
    /// When the router produced it, on the clock the routers run on (`std`'s, as every
    /// `now` the crate takes).
    pub at: std::time::Instant,
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
    /// other than malformed datagrams end the loop with the error, and timer errors too; the
    /// routers are shut down first either way, so that the last event of each is a
    /// `StateChanged` to [`State::Initialize`](crate::State): a Master never ends silently
    /// while its owner still holds the addresses.
    ///
    /// Deadlines are kept with a timerfd (microseconds), not tokio's millisecond timer: a
    /// Backup's takeover starts within microseconds of its Master_Down deadline.
    ///
    /// [`Driver::spawn`] runs it on a task of its own behind a cloneable [`DriverHandle`](super::DriverHandle)
    /// with bounded channels; this form suits an owner that keeps its own channels.
    pub async fn run(
        self,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) -> io::Result<DriverStats> {
        self.run_on(Commands::Unbounded(commands), Events::Unbounded(events))
            .await
    }

    pub(super) async fn run_on(
        mut self,
        mut commands: Commands,
        events: Events,
    ) -> io::Result<DriverStats> {
        let result = self.run_until_stopped(&mut commands, &events).await;
        let now = Instant::now().into_std();
        for r in &mut self.routers {
            r.shutdown(now);
        }
        self.flush(&events).await;
        result.map(|()| self.stats)
    }

    async fn run_until_stopped(
        &mut self,
        commands: &mut Commands,
        events: &Events,
    ) -> io::Result<()> {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut timer = Deadline::new()?;
        let now = Instant::now();
        for r in &mut self.routers {
            r.startup(now.into_std());
        }
        self.flush(events).await;
        loop {
            let deadline = self.routers.iter().filter_map(Router::poll_timeout).min();
            timer.arm(deadline)?;
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None | Some(Command::Stop) => return Ok(()),
                    Some(command) => self.command(command, events).await,
                },
                fired = timer.fired() => {
                    fired?;
                    // What the socket already holds arrived before this deadline was seen
                    // (the process was not running: a busy machine, a stop): hear it first,
                    // or a Backup whose Master's advert waits in the socket takes over for
                    // nothing and steps back at once (both hosts hold the VIP meanwhile).
                    self.drain_queued(&mut buffer)?;
                    let now = Instant::now().into_std();
                    for r in &mut self.routers {
                        if r.poll_timeout().is_some_and(|d| d <= now) {
                            r.handle_timeout(now);
                        }
                    }
                }
                received = self.socket.recv(&mut buffer) => self.deliver(received)?,
            }
            self.flush(events).await;
        }
    }

    /// Hands a received datagram to the routers of its VRID (counting what none serves and
    /// what is not VRRP over IP); other socket errors are returned.
    fn deliver(&mut self, received: io::Result<Received<'_>>) -> io::Result<()> {
        match received {
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
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.stats.malformed += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Delivers the datagrams the socket is known to hold now, without waiting (at most
    /// [`DRAIN_MAX`]: a flood cannot hold the deadlines back for long).
    fn drain_queued(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..DRAIN_MAX {
            let received = {
                let mut recv = pin!(self.socket.recv(buffer));
                match recv.as_mut().poll(&mut cx) {
                    Poll::Ready(received) => received,
                    Poll::Pending => return Ok(()),
                }
            };
            self.deliver(received)?;
        }
        Ok(())
    }

    /// Every command but `Stop`.
    async fn command(&mut self, command: Command, events: &Events) {
        let now = Instant::now().into_std();
        match command {
            Command::Stop => {}
            Command::Tracker { vrid, index, up } => {
                for r in self.routers.iter_mut().filter(|r| r.config().vrid == vrid) {
                    r.set_tracker(now, index, up);
                }
            }
            Command::Track {
                vrid,
                name,
                up,
                reply,
            } => {
                let outcome = match self.routers.iter_mut().find(|r| r.config().vrid == vrid) {
                    None => Err(CommandError::UnknownRouter { vrid }),
                    Some(r) => match r.config().trackers.iter().position(|t| t.name == name) {
                        Some(index) => {
                            r.set_tracker(now, index, up);
                            Ok(())
                        }
                        None => Err(CommandError::UnknownTracker {
                            vrid,
                            known: r.config().trackers.iter().map(|t| t.name.clone()).collect(),
                            name,
                        }),
                    },
                };
                if let Some(reply) = reply {
                    // Nobody waiting for the answer any more is not an error.
                    let _ = reply.send(outcome);
                }
            }
            Command::Link { up } => {
                for r in &mut self.routers {
                    r.set_link(now, up);
                }
            }
            Command::Add(router) => {
                let mut router = *router;
                self.remove(router.config().vrid, events).await;
                router.startup(Instant::now().into_std());
                self.routers.push(router);
            }
            Command::Remove { vrid } => self.remove(vrid, events).await,
            Command::Resign { vrid, reply } => {
                let outcome = match self.routers.iter_mut().find(|r| r.config().vrid == vrid) {
                    Some(r) => Ok(r.resign(now)),
                    None => Err(CommandError::UnknownRouter { vrid }),
                };
                let _ = reply.send(outcome);
            }
            Command::Follow { vrid, to, member } => {
                if let Some(r) = self.routers.iter_mut().find(|r| r.config().vrid == vrid) {
                    r.follow(now, to, &member);
                }
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    /// Sends every pending advertisement, then forwards every pending event: on a takeover
    /// the advertisement leaves first, then the owner adds the addresses and announces them.
    async fn flush(&mut self, events: &Events) {
        for i in 0..self.routers.len() {
            self.flush_one(i, events).await;
        }
    }

    async fn flush_one(&mut self, i: usize, events: &Events) {
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
            events
                .send(DriverEvent {
                    vrid,
                    at: std::time::Instant::now(),
                    event,
                })
                .await;
        }
    }

    /// Shuts router `vrid` down, sends and forwards what it still has, and drops it.
    async fn remove(&mut self, vrid: Vrid, events: &Events) {
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

/// Where a driver's commands come from.
#[derive(Debug)]
pub(super) enum Commands {
    Unbounded(mpsc::UnboundedReceiver<Command>),
    /// A spawned driver's: its handles' commands, and their stop signal (which needs no room
    /// in the channel, so that a handle dropped anywhere can stop it).
    Bounded(mpsc::Receiver<Command>, tokio::sync::watch::Receiver<bool>),
}

impl Commands {
    async fn recv(&mut self) -> Option<Command> {
        match self {
            Commands::Unbounded(rx) => rx.recv().await,
            Commands::Bounded(rx, stop) => tokio::select! {
                biased;
                // Every stop sender gone (all handles dropped) stops it as well.
                _ = stop.wait_for(|stop| *stop) => Some(Command::Stop),
                command = rx.recv() => command,
            },
        }
    }
}

/// Where a driver's events go.
#[derive(Debug)]
pub(super) enum Events {
    Unbounded(mpsc::UnboundedSender<DriverEvent>),
    /// Back-pressure: a full channel holds the driver until the owner reads (see
    /// [`Driver::spawn`]).
    Bounded(mpsc::Sender<DriverEvent>),
}

impl Events {
    async fn send(&self, event: DriverEvent) {
        // Nobody listening is not the driver's problem: the routers run on.
        let _ = match self {
            Events::Unbounded(tx) => tx.send(event).map_err(drop),
            Events::Bounded(tx) => tx.send(event).await.map_err(drop),
        };
    }
}
