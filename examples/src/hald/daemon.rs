//! The running hald: the balancer (lbd's [`Lbd`]) on the caller's runtime, the VRRP instances
//! (vrrpd's [`Vrrpd`]) on a thread and runtime of their own, and between them the listeners'
//! server health fed to the instances' trackers, the watchdog, and the drain before a planned
//! handover.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use health_check::{Watchdog, WatchdogConfig};
use ip_manager::failover::handover::{self, HandoverListener, ResignRequest};
use lb_core::stats_page::SnapshotSource;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use vrrp_core::driver::TrackerHandle;
use vrrp_core::packet::{AddressFamily, Priority};
use vrrp_core::{Event, State};

use super::config::{self, Config, WATCHDOG_TRACKER};
use super::page::VrrpPage;
use crate::lbd::Lbd;
use crate::vrrpd::daemon::{OnEvent, Vrrpd};
use crate::vrrpd::reload::Plan;
use crate::vrrpd::status::Status;

/// Any error that stops the daemon (logged by the binary).
pub type Error = Box<dyn std::error::Error>;

/// How often the VRRP status on the stats page is refreshed besides at every event.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How long the balancer's listeners get to finish their connections once VRRP has stopped.
const FINAL_DRAIN: Duration = Duration::from_secs(2);

/// How the daemon was started, besides the configuration (vrrpd's: the file, read again on
/// SIGHUP, and the status socket).
pub use crate::vrrpd::daemon::Options;

/// What the balancer's loop asks of the VRRP thread.
enum ToVrrp {
    Reload(Box<crate::vrrpd::config::Config>, oneshot::Sender<bool>),
    Trackers(
        Vec<(String, String)>,
        oneshot::Sender<Vec<Option<TrackerHandle>>>,
    ),
    /// Instance `.0` resigns if Master (a drained preemption).
    Resign(String, oneshot::Sender<Result<bool, String>>),
    Stop,
}

/// What the VRRP thread tells the balancer's loop, in order.
enum FromVrrp {
    /// An instance entered a state (its addresses moved).
    State(String, State),
    /// An instance would preempt the Master at `master` and waits its `preempt_delay`.
    PreemptPending { instance: String, master: IpAddr },
}

/// The VRRP half, on its own thread.
struct VrrpThread {
    commands: mpsc::Sender<ToVrrp>,
    /// Every instance's state changes and pending preemptions, in order.
    news: mpsc::UnboundedReceiver<FromVrrp>,
    /// Fires when the thread has stopped its instances and ended.
    ended: oneshot::Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for VrrpThread {
    /// Without [`stop`](VrrpThread::stop) (the balancer's side returned an error or panicked),
    /// the instances still stop gracefully, priority 0 out and addresses removed, before the
    /// process goes on to exit: closing the command channel stops them, and the thread is
    /// waited for.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl VrrpThread {
    /// Starts vrrpd's part of `config` on a thread and runtime of its own.
    async fn start(
        config: &Config,
        options: &Options,
        status: watch::Sender<Option<Status>>,
    ) -> Result<VrrpThread, Error> {
        let (commands, mut commands_rx) = mpsc::channel(8);
        let (news_tx, news) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel::<Result<(), String>>();
        let (ended_tx, ended) = oneshot::channel();
        let vrrp = config.vrrp.clone();
        let options = options.clone();
        let thread = std::thread::Builder::new()
            .name("hald-vrrp".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start VRRP's runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let on_event: OnEvent = Arc::new(move |name: &str, event: &Event| {
                        let news = match event {
                            Event::StateChanged { to, .. } => FromVrrp::State(name.to_owned(), *to),
                            Event::PreemptPending { master, .. } => FromVrrp::PreemptPending {
                                instance: name.to_owned(),
                                master: *master,
                            },
                            _ => return,
                        };
                        let _ = news_tx.send(news);
                    });
                    let mut vrrpd = match Vrrpd::start(vrrp, &options, Some(on_event)).await {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let mut stopping = false;
                    // The status the stats page shows: after every event, and each second
                    // (counters, "seconds ago").
                    let mut tick = tokio::time::interval(STATUS_EVERY);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {
                                status.send_replace(Some(vrrpd.status().await));
                            }
                            command = commands_rx.recv(), if !stopping => match command {
                                Some(ToVrrp::Reload(new, reply)) => {
                                    let _ = reply.send(vrrpd.reload(*new).await);
                                }
                                Some(ToVrrp::Resign(name, reply)) => {
                                    let _ = reply.send(
                                        vrrpd.resign(&name).await.map_err(|e| e.to_string()),
                                    );
                                }
                                Some(ToVrrp::Trackers(names, reply)) => {
                                    let _ = reply.send(
                                        names.iter().map(|(i, t)| vrrpd.tracker(i, t)).collect(),
                                    );
                                }
                                // The balancer's side gone (it stopped, or panicked): stop too.
                                Some(ToVrrp::Stop) | None => {
                                    stopping = true;
                                    vrrpd.stop();
                                }
                            },
                            // Handled in the branch, not in the select: never cut short.
                            e = vrrpd.event() => match e {
                                Some(e) => {
                                    vrrpd.handle(e).await;
                                    status.send_replace(Some(vrrpd.status().await));
                                }
                                None => break,
                            },
                        }
                    }
                    vrrpd.finish().await;
                });
                let _ = ended_tx.send(());
            })?;
        ready
            .await
            .map_err(|_| "the VRRP thread ended before starting")??;
        Ok(VrrpThread {
            commands,
            news,
            ended,
            thread: Some(thread),
        })
    }

    /// The tracker handles for `(instance, tracker)` pairs (`None` where the instance does
    /// not run).
    async fn trackers(&self, names: Vec<(String, String)>) -> Vec<Option<TrackerHandle>> {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(ToVrrp::Trackers(names, reply))
            .await
            .is_err()
        {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Instance `name` resigns if Master: whether it was.
    async fn resign(&self, name: &str) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        let asked = ToVrrp::Resign(name.to_owned(), reply);
        if self.commands.send(asked).await.is_err() {
            return Err("the VRRP half has stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the VRRP half has stopped".into()))
    }

    async fn reload(&self, new: crate::vrrpd::config::Config) -> bool {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(ToVrrp::Reload(Box::new(new), reply))
            .await
            .is_err()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Stops every instance gracefully (priority 0, addresses removed) and waits for it.
    async fn stop(mut self) {
        let _ = self.commands.send(ToVrrp::Stop).await;
        let _ = (&mut self.ended).await;
    }
}

/// The tasks feeding the listeners' server health to the instances' trackers.
#[derive(Default)]
struct Feeders(Vec<JoinHandle<Result<(), vrrp_core::driver::CommandError>>>);

impl Drop for Feeders {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Feeders {
    /// For each `[[hald.track]]`: "all servers down" fed by every server's monitor together,
    /// and each server's own tracker (with a weight) by its monitor.
    async fn start(config: &Config, lbd: &Lbd, vrrp: &VrrpThread) -> Feeders {
        let mut feeders = Feeders::default();
        for t in &config.track {
            let Some(servers) = lbd.server_health(&t.listener) else {
                continue;
            };
            let mut names = vec![(t.instance.clone(), t.all_down_tracker())];
            if t.weight != 0 {
                names.extend(
                    servers
                        .iter()
                        .map(|(s, _)| (t.instance.clone(), t.server_tracker(s))),
                );
            }
            let mut trackers = vrrp.trackers(names).await.into_iter();
            if let Some(Some(all)) = trackers.next() {
                let statuses = servers.iter().map(|(_, s)| s.clone()).collect();
                feeders
                    .0
                    .push(health_check::vrrp::track_any_status(statuses, all));
            }
            if t.weight != 0 {
                for ((_, status), tracker) in servers.into_iter().zip(trackers) {
                    if let Some(tracker) = tracker {
                        feeders
                            .0
                            .push(health_check::vrrp::track_status(status, tracker));
                    }
                }
            }
        }
        feeders
    }
}

/// The watchdog on the current runtime (the balancer's), setting every instance's
/// [`WATCHDOG_TRACKER`] from its own thread.
async fn watchdog(config: &Config, vrrp: &VrrpThread) -> Result<Option<Watchdog>, Error> {
    let Some(w) = config.watchdog else {
        return Ok(None);
    };
    let names = config
        .vrrp
        .instances
        .iter()
        .map(|i| (i.name.clone(), WATCHDOG_TRACKER.to_owned()))
        .collect();
    let trackers: Vec<TrackerHandle> = vrrp.trackers(names).await.into_iter().flatten().collect();
    let within = w.timeout;
    let watchdog = Watchdog::spawn(
        tokio::runtime::Handle::current(),
        WatchdogConfig::default().every(w.interval, w.timeout),
        move |health, why| {
            let up = health == health_check::Health::Up;
            if up {
                warn!("the balancer's event loop answers again: {why}");
            } else {
                error!(
                    "the balancer's event loop does not answer ({why}): every instance steps down"
                );
            }
            for t in &trackers {
                let _ = t.set_blocking(up, within);
            }
        },
    )?;
    Ok(Some(watchdog))
}

/// Runs the daemon on a checked configuration until SIGTERM / SIGINT, then hands over
/// gracefully (drain, priority 0, addresses removed, connections finished); SIGHUP reloads
/// `options.config_file`.
pub async fn run(config: Config, options: Options) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    // The listeners first: bound (with IP_FREEBIND) before any instance can become Master.
    // One page for both halves: the listeners, then the VRRP instances and their metrics.
    let (status, page) = watch::channel(None);
    let vrrp_status = page.clone();
    let page: Arc<dyn SnapshotSource> = Arc::new(VrrpPage(page));
    let mut lbd = Lbd::start_with(&config.balancer, Some(page)).await?;
    let mut vrrp = VrrpThread::start(&config, &options, status).await?;
    let mut feeders = Feeders::start(&config, &lbd, &vrrp).await;
    let mut dog = watchdog(&config, &vrrp).await?;
    let mut handover = listen_for_handovers(config.handover.as_ref()).await?;
    let mut states: HashMap<String, State> = HashMap::new();
    let mut running = config;
    let mut ended: Result<(), Error> = Ok(());
    info!(
        instances = running.vrrp.instances.len(),
        listeners = running.balancer.listeners.len(),
        "hald running"
    );
    loop {
        tokio::select! {
            _ = term.recv() => {
                info!("SIGTERM: handing over gracefully");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                info!("SIGINT: handing over gracefully");
                break;
            }
            _ = hup.recv() => {
                if let Some(new) = reload(&options, &running, &mut lbd, &vrrp, &states).await {
                    running = new;
                    feeders = Feeders::start(&running, &lbd, &vrrp).await;
                    drop(dog.take());
                    dog = watchdog(&running, &vrrp).await?;
                    // Instances still Master serve their listeners with keep-alive again.
                    for (name, state) in &states {
                        if *state == State::Master {
                            lbd.keep_connections(&running.listeners_of(name));
                        }
                    }
                }
            }
            request = next_request(&mut handover) => {
                resign_on_request(request, &running, &lbd, &vrrp, &states, &vrrp_status).await;
            }
            news = vrrp.news.recv() => match news {
                Some(FromVrrp::State(name, state)) => {
                    if state == State::Master {
                        lbd.keep_connections(&running.listeners_of(&name));
                    }
                    states.insert(name, state);
                }
                Some(FromVrrp::PreemptPending { instance, master }) => {
                    ask_to_resign(&running, &instance, master, &vrrp_status);
                }
                // The VRRP thread is gone (a panic): no instance advertises any more, so the
                // balancer must not run on as if it were part of a pair.
                None => {
                    error!("the VRRP half ended: stopping");
                    ended = Err("the VRRP half ended unexpectedly".into());
                    break;
                }
            },
        }
    }
    drop(feeders);
    drop(dog);
    // Every listener hands its clients over; then VRRP hands the addresses over.
    let all: Vec<String> = running
        .balancer
        .listeners
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let left = hand_over(&lbd, &all, running.drain).await;
    info!(
        left,
        "connections drained: sending priority 0 and removing the addresses"
    );
    vrrp.stop().await;
    for (name, report) in lbd.drain(FINAL_DRAIN).await {
        if report.closed > 0 {
            warn!(listener = %name, closed = report.closed, "connections closed at exit");
        }
    }
    ended
}

/// The `[hald.handover]` listener, on every address of both families (or IPv4 only where
/// IPv6 is off).
async fn listen_for_handovers(
    config: Option<&config::Handover>,
) -> Result<Option<HandoverListener>, Error> {
    let Some(h) = config else {
        return Ok(None);
    };
    let listener = match HandoverListener::bind((IpAddr::from([0u16; 8]), h.port).into()).await {
        Ok(l) => l,
        Err(_) => HandoverListener::bind((IpAddr::from([0u8; 4]), h.port).into())
            .await
            .map_err(|e| format!("[hald.handover] cannot listen on port {}: {e}", h.port))?,
    };
    let listener = if h.peers.is_empty() {
        listener
    } else {
        listener.peers(h.peers.clone())
    };
    info!(port = h.port, "listening for drained-preemption requests");
    Ok(Some(listener))
}

/// The next request to resign, or never without a listener.
async fn next_request(
    listener: &mut Option<HandoverListener>,
) -> Result<ResignRequest, handover::HandoverError> {
    match listener {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// `instance`'s effective priority, as the VRRP half last published it.
fn priority_of(status: &watch::Receiver<Option<Status>>, instance: &str) -> Option<u8> {
    let status = status.borrow();
    let i = status
        .as_ref()?
        .instances
        .iter()
        .find(|i| i.name == instance)?;
    Some(i.effective_priority.unwrap_or(i.base_priority))
}

/// A preempting peer asks this host to drain and resign an instance: if it is Master here and
/// the peer outranks it, the instance's listeners hand their clients over (as on a planned
/// stop), then it resigns (priority 0) and the peer takes the address after Skew_Time.
async fn resign_on_request(
    request: Result<ResignRequest, handover::HandoverError>,
    running: &Config,
    lbd: &Lbd,
    vrrp: &VrrpThread,
    states: &HashMap<String, State>,
    status: &watch::Receiver<Option<Status>>,
) {
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            warn!("drained preemption: {e}");
            return;
        }
    };
    let (vrid, family, from) = (request.vrid(), request.family(), request.from());
    let instance = running.vrrp.instances.iter().find(|i| {
        i.vrid == vrid.get()
            && (i.is_ipv6() == (family == AddressFamily::Ipv6))
            && states.get(&i.name) == Some(&State::Master)
    });
    let Some(instance) = instance else {
        info!(%from, vrid = vrid.get(), "asked to resign an instance that is not Master here");
        let _ = request.refuse("not master of it").await;
        return;
    };
    let name = instance.name.clone();
    let ours = priority_of(status, &name).unwrap_or(instance.priority);
    if request.priority() <= Priority::new(ours) {
        warn!(instance = %name, %from, theirs = request.priority().get(), ours, "asked to resign by a router that does not outrank this one: refused");
        let _ = request.refuse(&format!("priority {ours} here")).await;
        return;
    }
    if let Err(e) = request.accept().await {
        warn!(instance = %name, "drained preemption: {e}");
    }
    let listeners = running.listeners_of(&name);
    info!(instance = %name, %from, ?listeners, "a preempting peer asks for the address: draining first");
    let left = hand_over(lbd, &listeners, running.drain).await;
    match vrrp.resign(&name).await {
        Ok(true) => {
            info!(instance = %name, left, "drained: resigned (priority 0), the peer takes over")
        }
        Ok(false) => {
            info!(instance = %name, "no longer Master after the drain");
            lbd.keep_connections(&listeners);
        }
        Err(e) => {
            error!(instance = %name, "could not resign: {e}");
            lbd.keep_connections(&listeners);
        }
    }
}

/// This host would preempt the Master at `master` for `instance`: asks it (on a task of its
/// own) to drain and resign; without an answer, the instance preempts when its
/// `preempt_delay` is over.
fn ask_to_resign(
    running: &Config,
    instance: &str,
    master: IpAddr,
    status: &watch::Receiver<Option<Status>>,
) {
    let (Some(h), Some(inst)) = (
        &running.handover,
        running.vrrp.instances.iter().find(|i| i.name == instance),
    ) else {
        return;
    };
    let Some(vrid) = vrrp_core::packet::Vrid::new(inst.vrid) else {
        return;
    };
    let family = if inst.is_ipv6() {
        AddressFamily::Ipv6
    } else {
        AddressFamily::Ipv4
    };
    let priority = Priority::new(priority_of(status, instance).unwrap_or(inst.priority));
    let (port, interface, name) = (h.port, inst.interface.clone(), instance.to_owned());
    let wait = inst.preempt_delay;
    tokio::spawn(async move {
        let at = match handover::master_address(master, port, &interface).await {
            Ok(at) => at,
            Err(e) => {
                warn!(instance = %name, %master, "cannot ask the Master to drain: {e}");
                return;
            }
        };
        let asked = handover::ask_to_resign(at, vrid, family, priority, Duration::from_secs(2));
        match asked.await {
            Ok(answer) => {
                info!(instance = %name, %at, %answer, "asked the Master to drain and resign")
            }
            Err(e) => {
                warn!(instance = %name, %at, ?wait, "the Master did not take the drain request ({e}): preempting when preempt_delay is over")
            }
        }
    });
}

/// Hands the clients of `listeners` over and waits until none is connected (or `deadline`):
/// the connections left.
async fn hand_over(lbd: &Lbd, listeners: &[String], deadline: Duration) -> usize {
    lbd.close_connections(listeners);
    let left = lbd.wait_idle(listeners, deadline).await;
    if left > 0 {
        warn!(
            left,
            ?deadline,
            "drain deadline reached with connections open: they will fail"
        );
    }
    left
}

/// SIGHUP: reads the file again; the instances the reload takes away from Master (rebuilt or
/// removed) drain their listeners first; then VRRP and the balancer take their parts.
async fn reload(
    options: &Options,
    running: &Config,
    lbd: &mut Lbd,
    vrrp: &VrrpThread,
    states: &HashMap<String, State>,
) -> Option<Config> {
    let file = options.config_file.display().to_string();
    info!(file = %file, "SIGHUP: reloading the configuration");
    let new = match crate::diagnostics::load("hald", &file, config::parse) {
        Ok(c) => c,
        Err(lines) => {
            for line in lines {
                error!("{line}");
            }
            error!("reload refused, the running configuration stays");
            return None;
        }
    };
    for w in &new.warnings {
        warn!("{w}");
    }
    let plan = Plan::new(&running.vrrp.instances, &new.vrrp.instances);
    let leaving: Vec<String> = plan
        .rebuild
        .iter()
        .chain(&plan.stop)
        .filter(|name| states.get(*name) == Some(&State::Master))
        .flat_map(|name| running.listeners_of(name))
        .collect();
    if !leaving.is_empty() {
        info!(listeners = ?leaving, "the reload hands instances over: draining first");
        hand_over(lbd, &leaving, new.drain).await;
    }
    if !vrrp.reload(new.vrrp.clone()).await {
        error!("reload refused by the VRRP half, the running configuration stays");
        lbd.keep_connections(&leaving);
        return None;
    }
    match lbd.reload(&new.balancer, new.drain).await {
        Ok(report) => info!(?report, "configuration reloaded"),
        Err(e) => error!("the balancer's reload failed part way: {e}"),
    }
    Some(new)
}
