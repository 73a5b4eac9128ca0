//! [`Lbd`]: the running balancer: a proxy per listener, a health monitor per checked server,
//! reload and drain.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ip_manager::alert::Alerts;
use lb_core::Algorithm;

use super::balance::Balance;
use super::config::{Config, Listener, Mode};
use super::monitors::{CheckError, Monitors};
use super::running::{Proxy, Starter, with_algorithm};
use super::stats::Stats;
use lb_core::proxy::ConnectionLimit;
use lb_core::proxy::tls::TlsError;
use lb_core::proxy::{
    DrainReport, HttpProxy, HttpSettings, ProxyError, ProxyStats, ServerSettings, TcpProxy,
    TcpSettings,
};
use lb_core::stats_page::{Snapshot, SnapshotSource, StatsError, StatsServer};

/// Why lbd could not start (or reload) a listener.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The proxy could not start (most often: its address is taken).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// A health check could not start.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// A TLS certificate, key or CA file could not be used.
    #[error("listener {listener:?}: {source}")]
    Tls {
        /// The listener.
        listener: String,
        /// What was wrong with the files.
        #[source]
        source: TlsError,
    },
    /// A stats page could not start.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// The admin socket could not be made.
    #[error("{0}")]
    Admin(String),
}

/// The running balancer.
pub struct Lbd {
    shared: Arc<Shared>,
    /// The global `maxconn` (read at start) and the limit every listener shares.
    maxconn: Option<u32>,
    limit: Option<ConnectionLimit>,
    /// The stats pages, by their settings.
    pages: Vec<(Stats, StatsServer)>,
    /// `[alerts]` (read at start): every server marked down or up.
    alerts: Option<Arc<Alerts>>,
    /// The admin socket's server (`admin_socket`, read at start).
    admin: Option<AbortOnDrop>,
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the stats pages and the admin socket read while the daemon changes it.
pub(super) struct Shared {
    started: (Instant, SystemTime),
    listeners: Mutex<Vec<Running>>,
    /// What a daemon that embeds lbd shows besides the listeners.
    extra: Option<Arc<dyn SnapshotSource>>,
    /// What the operator set through the admin socket, kept across reloads.
    overrides: Mutex<super::admin::Overrides>,
}

/// A stats page's view of the daemon: the listeners, then the embedder's sections and metrics.
struct Page(Arc<Shared>);

impl SnapshotSource for Page {
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.0.snapshot();
        if let Some(extra) = &self.0.extra {
            snapshot.sections = extra.snapshot().sections;
        }
        snapshot
    }

    fn extra_metrics(&self, out: &mut String) {
        if let Some(extra) = &self.0.extra {
            extra.extra_metrics(out);
        }
    }
}

impl Shared {
    pub(super) fn overrides(&self) -> MutexGuard<'_, super::admin::Overrides> {
        self.overrides
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn listeners(&self) -> MutexGuard<'_, Vec<Running>> {
        // A panic while holding the lock cannot leave the list half-changed (every change is
        // one push or one take): go on with it.
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot(&self) -> Snapshot {
        let (started, started_system) = self.started;
        let mut snapshot = Snapshot::new(started_system, started.elapsed());
        snapshot.listeners = self.listeners().iter().map(Running::status).collect();
        snapshot
    }
}

impl std::fmt::Debug for Lbd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lbd")
            .field("listeners", &self.addresses())
            .finish()
    }
}

/// One listener: its configuration, its proxy, its servers' checks.
pub(super) struct Running {
    pub(super) config: Listener,
    pub(super) proxy: Box<dyn Proxy>,
    pub(super) monitors: Monitors,
    /// When it started (the servers' "since" before any check said anything).
    pub(super) started: Instant,
}

/// What a reload did, by listener name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Listeners the new file leaves as they were.
    pub unchanged: Vec<String>,
    /// Listeners whose only changes were in their `servers` (added, removed, readdressed,
    /// weights, limits, TLS) or `check`, applied in place: no connection closes, servers
    /// that stay keep their counters, pooled connections and (same check) health state.
    pub tuned: Vec<String>,
    /// Listeners changed in themselves (`bind`, `mode`, `tls`, `balance`, `cookie`,
    /// `timeouts`, `maxconn`...), started anew: the old proxy drains its connections in the
    /// background.
    pub restarted: Vec<String>,
    /// Listeners new in the file.
    pub added: Vec<String>,
    /// Listeners gone from the file: they drain in the background.
    pub removed: Vec<String>,
}

impl Lbd {
    /// Starts every listener of `config`, its health checks and its stats page. Every stats
    /// page shows every listener (as HAProxy's).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with IO and time enabled.
    pub async fn start(config: &Config) -> Result<Lbd, StartError> {
        Lbd::start_with(config, None).await
    }

    /// [`start`](Self::start), with the stats pages also showing `extra`'s sections (of its
    /// snapshot; its listeners are not read) and metrics: how hald puts its VRRP instances on
    /// the balancer's page.
    pub async fn start_with(
        config: &Config,
        extra: Option<Arc<dyn SnapshotSource>>,
    ) -> Result<Lbd, StartError> {
        let limit = config.maxconn.map(ConnectionLimit::new);
        let alerts = config.alerts.as_ref().map(|a| a.start("lbd"));
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for listener in &config.listeners {
            listeners.push(Running::start(listener, limit.as_ref(), &alerts)?);
        }
        let mut lbd = Lbd {
            shared: Arc::new(Shared {
                started: (Instant::now(), SystemTime::now()),
                listeners: Mutex::new(listeners),
                extra,
                overrides: Mutex::default(),
            }),
            maxconn: config.maxconn,
            limit,
            pages: Vec::new(),
            alerts,
            admin: None,
        };
        if let Some(path) = &config.admin_socket {
            let served = super::admin::serve(path, lbd.shared.clone())
                .map_err(|e| StartError::Admin(format!("admin_socket {}: {e}", path.display())))?;
            lbd.admin = Some(AbortOnDrop(served));
        }
        lbd.start_pages(config).await?;
        Ok(lbd)
    }

    /// Starts the stats pages `config` asks for that do not run yet, stops the others.
    async fn start_pages(&mut self, config: &Config) -> Result<(), StartError> {
        let wanted: Vec<&Stats> = config
            .listeners
            .iter()
            .filter_map(|l| l.stats.as_ref())
            .collect();
        self.pages.retain(|(stats, _)| wanted.contains(&stats));
        for stats in wanted {
            if self.pages.iter().any(|(s, _)| s == stats) {
                continue;
            }
            let page = Page(self.shared.clone());
            let server = StatsServer::start(&stats.settings(), page).await?;
            self.pages.push((stats.clone(), server));
        }
        Ok(())
    }

    /// The listeners' names and the addresses they accept on, in file order.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        self.shared
            .listeners()
            .iter()
            .map(|l| (l.config.name.clone(), l.proxy.local_addr()))
            .collect()
    }

    /// The stats pages' addresses.
    pub fn stats_pages(&self) -> Vec<SocketAddr> {
        self.pages.iter().map(|(_, s)| s.local_addr()).collect()
    }

    /// Every listener's counters now, in file order.
    pub fn stats(&self) -> Vec<ProxyStats> {
        self.shared
            .listeners()
            .iter()
            .map(|l| l.proxy.stats())
            .collect()
    }

    /// What the stats page shows now.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// Applies a new configuration without dropping established connections:
    /// - a listener whose only changes are in its `servers` (any: added, removed, readdressed,
    ///   weights, `maxconn`, TLS) and its `check` is changed in place ([`Reloaded::tuned`]):
    ///   its proxy takes the new servers (requests and connections on a removed server finish
    ///   there; kept-alive client connections go on), and only new or changed servers, or all
    ///   when `check` changed, get a new health monitor; the others keep theirs and its state;
    /// - a listener changed in itself (`bind`, `mode`, `tls`, `balance`, `cookie`, `timeouts`,
    ///   `maxconn`, ...) starts anew on its address while the old one finishes its
    ///   connections, up to `drain` ([`Reloaded::restarted`]);
    /// - removed listeners drain; new ones start.
    ///
    /// On an error the listeners handled before it are in their new state, the others in
    /// their old one.
    pub async fn reload(
        &mut self,
        config: &Config,
        drain: Duration,
    ) -> Result<Reloaded, StartError> {
        let mut report = Reloaded::default();
        if config.maxconn != self.maxconn {
            tracing::warn!(
                "the global maxconn is read at start: restart lbd to change it ({:?} stays)",
                self.maxconn
            );
        }
        let mut old: Vec<Option<Running>> = std::mem::take(&mut *self.shared.listeners())
            .into_iter()
            .map(Some)
            .collect();
        let mut now: Vec<Running> = Vec::with_capacity(config.listeners.len());
        let mut result = Ok(());
        for new in &config.listeners {
            let found = old
                .iter()
                .position(|r| r.as_ref().is_some_and(|r| r.config.name == new.name));
            let Some(mut running) = found.and_then(|i| old[i].take()) else {
                match Running::start(new, self.limit.as_ref(), &self.alerts) {
                    Ok(running) => {
                        report.added.push(new.name.clone());
                        now.push(running);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                continue;
            };
            if running.config == *new {
                report.unchanged.push(new.name.clone());
                now.push(running);
            } else if only_servers_changed(&running.config, new) {
                let updated = running.update_servers(new);
                now.push(running);
                match updated {
                    Ok(()) => report.tuned.push(new.name.clone()),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            } else {
                let name = new.name.clone();
                let same_address = running.config.bind == new.bind;
                let draining = tokio::spawn(running.drain(drain));
                // The old listener closes its socket as the drain starts; the new one binds
                // the same address right after.
                let retried =
                    Running::start_retrying(new, self.limit.as_ref(), &self.alerts, same_address);
                match retried.await {
                    Ok(started) => {
                        report.restarted.push(name);
                        now.push(started);
                    }
                    Err(e) => {
                        tracing::error!(listener = %name, "reload: {e}; the listener is stopped");
                        result = Err(e);
                        break;
                    }
                }
                drop(draining);
            }
        }
        // Whatever the new file dropped (or, after an error, left unhandled) drains.
        for gone in old.into_iter().flatten() {
            if result.is_ok() {
                report.removed.push(gone.config.name.clone());
                tokio::spawn(gone.drain(drain));
            } else {
                now.push(gone);
            }
        }
        *self.shared.listeners() = now;
        self.shared.reapply_overrides();
        if result.is_ok() {
            result = self.start_pages(config).await;
        }
        result.map(|()| report)
    }

    /// Starts handing the clients of the listeners `names` over to another host (their
    /// address is about to move): new clients are ignored until they try again (a second
    /// later, at the new owner), every response says `Connection: close`, idle keep-alive
    /// connections close. See `lb_core::proxy::HttpProxy::close_connections`.
    pub fn close_connections(&self, names: &[String]) {
        self.each_of(names, |proxy| proxy.close_connections());
    }

    /// Serves the listeners `names` with keep-alive again (their address is back here).
    pub fn keep_connections(&self, names: &[String]) {
        self.each_of(names, |proxy| proxy.keep_connections());
    }

    /// `f` on the proxy of each listener named in `names`.
    fn each_of(&self, names: &[String], f: impl Fn(&dyn Proxy)) {
        for l in self
            .shared
            .listeners()
            .iter()
            .filter(|l| names.contains(&l.config.name))
        {
            f(&*l.proxy);
        }
    }

    /// The client connections open now on the listeners `names`, together.
    pub fn open_connections(&self, names: &[String]) -> usize {
        self.shared
            .listeners()
            .iter()
            .filter(|l| names.contains(&l.config.name))
            .map(|l| l.proxy.open_connections())
            .sum()
    }

    /// Waits until the listeners `names` have no client connection open, or `deadline`;
    /// still accepting. Returns the connections left open (0: all gone).
    pub async fn wait_idle(&self, names: &[String], deadline: Duration) -> usize {
        let started = Instant::now();
        loop {
            let open = self.open_connections(names);
            if open == 0 || started.elapsed() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The health checks of listener `name`'s servers: each server's name and status
    /// channel, in file order; `None` when the listener does not exist or has no `check`
    /// (its servers are then always up). A reload may replace a server's monitor: ask again
    /// after it.
    pub fn server_health(
        &self,
        name: &str,
    ) -> Option<Vec<(String, tokio::sync::watch::Receiver<health_check::Status>)>> {
        let listeners = self.shared.listeners();
        let l = listeners.iter().find(|l| l.config.name == name)?;
        l.config.check.as_ref()?;
        Some(l.monitors.subscribe())
    }

    /// Stops accepting on every listener and lets the connections in flight finish, for up
    /// to `deadline`; returns what each listener saw.
    pub async fn drain(self, deadline: Duration) -> Vec<(String, DrainReport)> {
        let listeners = std::mem::take(&mut *self.shared.listeners());
        let mut drains = Vec::with_capacity(listeners.len());
        for running in listeners {
            let name = running.config.name.clone();
            drains.push((name, tokio::spawn(running.drain(deadline))));
        }
        let mut reports = Vec::with_capacity(drains.len());
        for (name, drain) in drains {
            if let Ok(report) = drain.await {
                reports.push((name, report));
            }
        }
        reports
    }
}

/// Whether `new` differs from `old` only in its `servers` and `check`: what
/// [`Running::update_servers`] applies in place.
fn only_servers_changed(old: &Listener, new: &Listener) -> bool {
    let mut rest = new.clone();
    rest.servers = old.servers.clone();
    rest.check = old.check.clone();
    rest == *old
}

impl Running {
    /// The operator's setting for `server` (through the admin socket) applied to its proxy.
    pub(super) fn apply_override(&self, server: &str, o: super::admin::Override) {
        let backends = self.proxy.backends();
        if let Some(state) = o.state {
            backends.set_admin(server, state);
        }
        if let Some(weight) = o.weight {
            backends.set_weight(server, weight);
        }
    }

    fn start(
        config: &Listener,
        limit: Option<&ConnectionLimit>,
        alerts: &Option<Arc<Alerts>>,
    ) -> Result<Running, StartError> {
        let proxy = match config.mode {
            Mode::Tcp => with_algorithm(&config.balance, StartTcp(tcp_settings(config, limit)?))?,
            Mode::Http => {
                with_algorithm(&config.balance, StartHttp(http_settings(config, limit)?))?
            }
        };
        let monitors = Monitors::start(config, proxy.backends(), alerts.clone())?;
        Ok(Running {
            config: config.clone(),
            proxy,
            monitors,
            started: Instant::now(),
        })
    }

    /// Applies `new`'s servers and check (the listener being otherwise the same) in place.
    /// On an error (a TLS or CA file that cannot be read) nothing changed.
    fn update_servers(&mut self, new: &Listener) -> Result<(), StartError> {
        let mut servers = server_settings(new)?;
        // A server whose TLS settings stay keeps its TLS configuration (the same `Arc`), so
        // the proxy keeps its pooled connections.
        let before = self.proxy.servers();
        for (server, config) in servers.iter_mut().zip(&new.servers) {
            let same_tls =
                self.config.servers.iter().any(|old| {
                    old.name == config.name && old.tls == config.tls && old.ca == config.ca
                });
            if same_tls && let Some(old) = before.iter().find(|old| old.name == server.name) {
                server.tls = old.tls.clone();
            }
        }
        let plan = self.monitors.plan(Some(&self.config), new)?;
        self.proxy.update_servers(&servers)?;
        self.monitors.apply(plan, &self.proxy.backends())?;
        self.config = new.clone();
        Ok(())
    }

    /// Starts `config`; when `busy_for_a_moment`, an address still held by the listener
    /// being replaced is tried again for up to a second.
    async fn start_retrying(
        config: &Listener,
        limit: Option<&ConnectionLimit>,
        alerts: &Option<Arc<Alerts>>,
        busy_for_a_moment: bool,
    ) -> Result<Running, StartError> {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match Running::start(config, limit, alerts) {
                Err(StartError::Proxy(ProxyError::Bind { source, .. }))
                    if busy_for_a_moment
                        && source.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < give_up =>
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                other => return other,
            }
        }
    }

    async fn drain(self, deadline: Duration) -> DrainReport {
        let name = self.config.name.clone();
        drop(self.monitors);
        let report = self.proxy.drain(deadline).await;
        tracing::info!(
            listener = %name,
            in_flight = report.in_flight,
            closed_at_deadline = report.closed,
            took_ms = report.took.as_millis() as u64,
            "drained"
        );
        report
    }
}

/// The servers of `config` as the proxies take them (their TLS files read).
fn server_settings(config: &Listener) -> Result<Vec<ServerSettings>, StartError> {
    config
        .servers
        .iter()
        .map(|s| {
            let tls = s
                .tls_config(config.mode)
                .map_err(|source| StartError::Tls {
                    listener: config.name.clone(),
                    source,
                })?;
            let mut server = ServerSettings::new(s.name.clone(), s.addr).with_weight(s.weight);
            server.maxconn = s.maxconn;
            server.tls = tls;
            Ok(server)
        })
        .collect()
}

/// The timeouts both proxies share.
fn timeouts(config: &Listener) -> lb_core::proxy::Timeouts {
    let mut timeouts = lb_core::proxy::Timeouts::default();
    timeouts.connect = config.timeouts.connect;
    timeouts.client = config.timeouts.client;
    timeouts.server = config.timeouts.server;
    timeouts.queue = config.timeouts.queue;
    timeouts
}

/// HAProxy's turn-around timer before retrying the same server.
fn retry_delay(config: &Listener) -> Duration {
    config.timeouts.connect.min(Duration::from_secs(1))
}

/// HAProxy's listen backlog defaults to the frontend's maxconn.
fn backlog(config: &Listener) -> u32 {
    config.maxconn.clamp(128, 65_535)
}

/// The TCP proxy's settings for `config` (its TLS files read).
fn tcp_settings(
    config: &Listener,
    limit: Option<&ConnectionLimit>,
) -> Result<TcpSettings, StartError> {
    let mut settings = TcpSettings::new(config.name.clone(), config.bind, server_settings(config)?);
    settings.retries = config.retries;
    settings.redispatch = config.redispatch;
    settings.retry_delay = retry_delay(config);
    settings.timeouts = timeouts(config);
    settings.maxconn = config.maxconn;
    settings.limit = limit.cloned();
    settings.backlog = backlog(config);
    settings.tls = listener_tls(config)?;
    Ok(settings)
}

/// The configuration `config` terminates TLS with, if any.
fn listener_tls(config: &Listener) -> Result<Option<Arc<rustls::ServerConfig>>, StartError> {
    config.tls_config().map_err(|source| StartError::Tls {
        listener: config.name.clone(),
        source,
    })
}

/// The HTTP proxy's settings for `config` (its TLS files read).
fn http_settings(
    config: &Listener,
    limit: Option<&ConnectionLimit>,
) -> Result<HttpSettings, StartError> {
    let mut settings = HttpSettings::from(tcp_settings(config, limit)?);
    settings.http_request = config.timeouts.http_request;
    settings.hash_key = match &config.balance {
        Balance::ConsistentHash(key) => Some(key.clone()),
        _ => None,
    };
    settings.cookie = config.cookie.clone();
    settings.redirect_https = config.redirect_https;
    Ok(settings)
}

struct StartHttp(HttpSettings);

impl Starter for StartHttp {
    fn start<A: Algorithm>(self, algorithm: A) -> Result<Box<dyn Proxy>, ProxyError> {
        Ok(Box::new(HttpProxy::start(self.0, algorithm)?))
    }
}

struct StartTcp(TcpSettings);

impl Starter for StartTcp {
    fn start<A: Algorithm>(self, algorithm: A) -> Result<Box<dyn Proxy>, ProxyError> {
        Ok(Box::new(TcpProxy::start(self.0, algorithm)?))
    }
}
