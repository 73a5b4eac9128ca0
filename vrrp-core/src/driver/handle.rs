//! [`Driver::spawn`]: a driver on a task of its own, steered from any task through a
//! cloneable [`DriverHandle`], its events read from a bounded [`DriverEvents`].

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::run::{Commands, Events};
use super::{Command, CommandError, Driver, DriverEvent, DriverExit, DriverSnapshot};
use crate::Router;
use crate::State;
use crate::packet::Vrid;

/// The default capacity of a spawned driver's event channel.
pub const DEFAULT_EVENT_CAPACITY: usize = 64;

/// Commands waiting for the driver: it takes one between two inputs, at once.
const COMMAND_CAPACITY: usize = 64;

type Exit = watch::Receiver<Option<DriverExit>>;

impl Driver {
    /// Runs the driver on a task of its own (on the current tokio runtime) and returns a
    /// handle to steer it and the stream of its routers' events.
    ///
    /// Back-pressure: at most `event_capacity` events (at least 1) wait in [`DriverEvents`];
    /// when it is full, the driver waits for the owner to read before it goes on, so its
    /// routers stop advertising. That is on purpose: an owner that no longer takes the
    /// events can no longer move the addresses either, and a silent router lets a healthy
    /// peer take over, as a crashed host would. Events are few (state changes, priority
    /// changes, rate-limited drops); [`DEFAULT_EVENT_CAPACITY`] suits any owner that reads
    /// them in a loop.
    ///
    /// The driver stops gracefully (a Master sends priority 0) on
    /// [`DriverHandle::stop`], or when every handle is dropped.
    ///
    /// ```no_run
    /// use std::net::IpAddr;
    /// use vrrp_core::driver::{DEFAULT_EVENT_CAPACITY, Driver, VrrpSocket};
    /// use vrrp_core::packet::{AddressFamily, Vrid};
    /// use vrrp_core::router::Tracker;
    /// use vrrp_core::{Config, Router};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let primary: IpAddr = "10.99.0.11".parse()?;
    /// let vrid = Vrid::new(51).ok_or("VRID 0 is not valid")?;
    /// let mut config = Config::new(vrid, primary, vec!["10.99.0.200".parse()?]);
    /// config.trackers.push(Tracker::new("healthz", 0));
    /// let socket = VrrpSocket::open("eth0", AddressFamily::Ipv4, primary)?;
    /// let (driver, mut events) =
    ///     Driver::new(socket, vec![Router::new(config)?]).spawn(DEFAULT_EVENT_CAPACITY);
    /// let healthz = driver.tracker(vrid, "healthz");
    /// healthz.set(false).await?; // weight 0: Fault until it is up again
    /// while let Some(e) = events.recv().await {
    ///     println!("VRID {}: {:?}", e.vrid, e.event); // become Master: add the VIP, announce
    /// }
    /// println!("driver {}", events.exit().await); // release what the routers held
    /// # Ok(()) }
    /// ```
    pub fn spawn(self, event_capacity: usize) -> (DriverHandle, DriverEvents) {
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (stop, stop_rx) = watch::channel(false);
        let (event_tx, events) = mpsc::channel(event_capacity.max(1));
        let (exit_tx, exit) = watch::channel(None);
        let run = tokio::spawn(self.run_on(
            Commands::Bounded(command_rx, stop_rx),
            Events::Bounded(event_tx),
        ));
        tokio::spawn(async move {
            let how = match run.await {
                Ok(Ok(_)) => DriverExit::Stopped,
                Ok(Err(e)) => DriverExit::Failed(e.to_string()),
                Err(e) if e.is_panic() => DriverExit::Panicked(panic_text(e.into_panic())),
                Err(_) => DriverExit::Cancelled,
            };
            exit_tx.send_replace(Some(how));
        });
        (
            DriverHandle {
                commands,
                stop: Arc::new(stop),
                exit: exit.clone(),
            },
            DriverEvents { events, exit },
        )
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast::<&'static str>().map_or_else(
            |_| "a panic without a message".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}

async fn wait_exit(exit: &mut Exit) -> DriverExit {
    match exit.wait_for(Option::is_some).await {
        Ok(how) => how.clone().unwrap_or(DriverExit::Cancelled),
        // The watcher task itself is gone: its runtime is shutting down.
        Err(_) => DriverExit::Cancelled,
    }
}

/// Steers a spawned driver from any task; cheap to clone. The driver stops gracefully when
/// every handle is dropped.
///
/// Commands wait in a bounded channel that the driver empties between two inputs, at once;
/// each method returns once its command is taken (or answered), and fails with
/// [`CommandError::DriverEnded`] when the driver is gone.
#[derive(Debug, Clone)]
#[must_use = "dropping every handle stops the driver"]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
    stop: Arc<watch::Sender<bool>>,
    exit: Exit,
}

impl DriverHandle {
    async fn send(&self, command: Command) -> Result<(), CommandError> {
        match self.commands.send(command).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.ended().await),
        }
    }

    async fn ended(&self) -> CommandError {
        CommandError::DriverEnded(wait_exit(&mut self.exit.clone()).await)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        match answer.await {
            Ok(t) => Ok(t),
            Err(_) => Err(self.ended().await),
        }
    }

    /// Sets tracked object `name` of router `vrid` up or down (keepalived's rule: its weight
    /// applies while it is up if positive, down if negative; weight 0 means Fault while down).
    /// Fails if no such router or tracker exists, naming the trackers the router has.
    pub async fn set_tracker(&self, vrid: Vrid, name: &str, up: bool) -> Result<(), CommandError> {
        self.ask(|reply| Command::Track {
            vrid,
            name: name.to_owned(),
            up,
            reply: Some(reply),
        })
        .await?
    }

    /// [`set_tracker`](Self::set_tracker) from a thread outside any tokio runtime: a
    /// watchdog on an OS thread of its own, which must still act when the runtime it watches
    /// (maybe the one the driver runs on) no longer answers. It blocks until the driver took
    /// the command and answered, or `within` passed (a driver on a runtime that no longer
    /// runs answers nothing: [`CommandError::NotAnswered`]; its routers are silent then
    /// anyway, so the peer takes over).
    pub fn set_tracker_blocking(
        &self,
        vrid: Vrid,
        name: &str,
        up: bool,
        within: std::time::Duration,
    ) -> Result<(), CommandError> {
        use tokio::sync::mpsc::error::TrySendError;
        use tokio::sync::oneshot::error::TryRecvError;
        let deadline = std::time::Instant::now() + within;
        let ended = || CommandError::DriverEnded(self.exit().unwrap_or(DriverExit::Cancelled));
        let (reply, mut answer) = oneshot::channel();
        let mut command = Command::Track {
            vrid,
            name: name.to_owned(),
            up,
            reply: Some(reply),
        };
        // Polled, not parked on the channel: the wait must end at the deadline.
        let pause = std::time::Duration::from_micros(200);
        loop {
            match self.commands.try_send(command) {
                Ok(()) => break,
                Err(TrySendError::Closed(_)) => return Err(ended()),
                Err(TrySendError::Full(c)) => command = c,
            }
            if std::time::Instant::now() >= deadline {
                return Err(CommandError::NotAnswered { within });
            }
            std::thread::sleep(pause);
        }
        loop {
            match answer.try_recv() {
                Ok(outcome) => return outcome,
                Err(TryRecvError::Closed) => return Err(ended()),
                Err(TryRecvError::Empty) if std::time::Instant::now() >= deadline => {
                    return Err(CommandError::NotAnswered { within });
                }
                Err(TryRecvError::Empty) => std::thread::sleep(pause),
            }
        }
    }

    /// A handle on tracked object `name` of router `vrid`, for the task that watches it
    /// (see [`TrackerHandle::set`]).
    pub fn tracker(&self, vrid: Vrid, name: &str) -> TrackerHandle {
        TrackerHandle {
            driver: self.clone(),
            vrid,
            name: Arc::from(name),
        }
    }

    /// The interface's link went up or down: every router on it enters or leaves Fault.
    pub async fn set_link(&self, up: bool) -> Result<(), CommandError> {
        self.send(Command::Link { up }).await
    }

    /// Adds a router and starts it (see [`Command::Add`]).
    pub async fn add(&self, router: Router) -> Result<(), CommandError> {
        self.send(Command::Add(Box::new(router))).await
    }

    /// Removes router `vrid` gracefully (see [`Command::Remove`]).
    pub async fn remove(&self, vrid: Vrid) -> Result<(), CommandError> {
        self.send(Command::Remove { vrid }).await
    }

    /// Router `vrid` steps down on purpose if it is Master (see [`Command::Resign`] and
    /// [`Router::resign`](crate::Router::resign)): true when it was Master and sent priority 0.
    pub async fn resign(&self, vrid: Vrid) -> Result<bool, CommandError> {
        self.ask(|reply| Command::Resign { vrid, reply }).await?
    }

    /// Router `vrid` follows a member of its sync group into `to` (see [`Command::Follow`]).
    pub async fn follow(&self, vrid: Vrid, to: State, member: &str) -> Result<(), CommandError> {
        self.send(Command::Follow {
            vrid,
            to,
            member: member.to_owned(),
        })
        .await
    }

    /// Every router's state, priority and counters, and the driver's.
    pub async fn snapshot(&self) -> Result<DriverSnapshot, CommandError> {
        self.ask(Command::Snapshot).await
    }

    /// Stops the driver gracefully (a Master sends priority 0, RFC 5798 §6.4.3) and waits
    /// until it has ended; returns how it ended (`Stopped`, or the failure that came first).
    pub async fn stop(&self) -> DriverExit {
        self.shutdown();
        self.closed().await
    }

    /// Tells the driver to stop gracefully, without waiting (for `Drop` implementations):
    /// it takes this before any command still queued.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the driver has ended, and says how.
    pub async fn closed(&self) -> DriverExit {
        wait_exit(&mut self.exit.clone()).await
    }

    /// How the driver ended, or `None` while it runs.
    pub fn exit(&self) -> Option<DriverExit> {
        self.exit.borrow().clone()
    }
}

/// One tracked object of one router, set from the task that watches it; cheap to clone.
#[derive(Debug, Clone)]
#[must_use = "a tracker does nothing until it is set"]
pub struct TrackerHandle {
    driver: DriverHandle,
    vrid: Vrid,
    name: Arc<str>,
}

impl TrackerHandle {
    /// Reports the object up or down; fails if the driver ended or the router tracks no
    /// object of this name.
    pub async fn set(&self, up: bool) -> Result<(), CommandError> {
        self.driver.set_tracker(self.vrid, &self.name, up).await
    }

    /// [`set`](Self::set) from an OS thread, waiting at most `within` (see
    /// [`DriverHandle::set_tracker_blocking`]).
    pub fn set_blocking(&self, up: bool, within: std::time::Duration) -> Result<(), CommandError> {
        self.driver
            .set_tracker_blocking(self.vrid, &self.name, up, within)
    }

    /// The tracked object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The router's VRID.
    pub fn vrid(&self) -> Vrid {
        self.vrid
    }
}

/// The events of a spawned driver's routers, in order, then how the driver ended.
#[derive(Debug)]
#[must_use = "a driver whose events are not read stops advertising once the channel is full"]
pub struct DriverEvents {
    events: mpsc::Receiver<DriverEvent>,
    exit: Exit,
}

impl DriverEvents {
    /// The next event, or `None` once the driver has ended and every event was read (then
    /// see [`exit`](Self::exit)).
    pub async fn recv(&mut self) -> Option<DriverEvent> {
        self.events.recv().await
    }

    /// Waits until the driver has ended, and says how. Events not yet read stay readable.
    pub async fn exit(&self) -> DriverExit {
        wait_exit(&mut self.exit.clone()).await
    }
}
