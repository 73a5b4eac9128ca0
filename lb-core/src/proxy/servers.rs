//! The servers both proxies share the code of: picking one through the `lb-core`
//! [`BackendSet`] (hash key, stickiness cookie), a slot per server bounded by its `maxconn`
//! with a queue (`timeouts.queue`), and connecting with `retries` and `redispatch`. The
//! `maxconn` slots, the queue and the retries are lb-core's own ([`crate::maxconn`]'s
//! [`Gauge`], [`pick_free`] and [`Queue`]; [`crate::retry`]'s [`Attempts`]): this module
//! only says which servers a request may use and how to connect to one.
//!
//! A [`Slot`] is what a client (TCP) or a request (HTTP) holds on a server while it is served:
//! the server's `current` count and its in-flight count in the backend set (what `leastconn`
//! reads). It owns an `Arc` of the [`Table`], so it can live in a response body. Giving one
//! back wakes the clients queued for a slot, and only when some are: the hot path takes no
//! lock.
//!
//! The table can be replaced while the proxy runs ([`Servers::update`], a reload): servers
//! that stay keep their counters and (HTTP) their pooled connections, and a slot taken on a
//! server that went away keeps the old table alive until it is given back.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpStream;

use super::error::ProxyError;
use super::settings::{ServerSettings, same_tls};
use super::stats::ServerCounters;
use crate::maxconn::{Attempt, Queue, QueueError, pick_free};
use crate::retry::{Attempts, Next};
use crate::{Algorithm, BackendSet, InFlight, NoBackend, RetryLayer};

/// A connection to a server: plain, or TLS when the server has `tls`.
pub(crate) enum Upstream {
    Plain(TcpStream),
    #[cfg(feature = "proxy-tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl<E> Server<E> {
    /// Opens a connection to it: TCP (without Nagle's delay), then the TLS handshake when it
    /// has `tls` (the whole within the caller's connect timeout, so a failed handshake is a
    /// failed connect).
    pub(crate) async fn connect(&self) -> io::Result<Upstream> {
        let stream = TcpStream::connect(self.settings.addr).await?;
        stream.set_nodelay(true)?;
        #[cfg(feature = "proxy-tls")]
        if let Some(config) = &self.settings.tls {
            let name = rustls::pki_types::ServerName::IpAddress(self.settings.addr.ip().into());
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await?;
            return Ok(Upstream::Tls(Box::new(tls)));
        }
        Ok(Upstream::Plain(stream))
    }
}

/// One server: its settings, counters, and what the proxy keeps per server (`E`: nothing for
/// TCP, the idle connection pool for HTTP). The counters and `extra` are shared with the
/// tables that replace this one while the server stays (same name, address and TLS).
#[derive(Debug)]
pub(crate) struct Server<E> {
    pub(crate) settings: ServerSettings,
    pub(crate) counters: Arc<ServerCounters>,
    pub(crate) extra: Arc<E>,
}

/// Every server of a proxy, in configuration order, and what their slots share.
#[derive(Debug)]
pub(crate) struct Table<E> {
    pub(crate) servers: Vec<Server<E>>,
    index: HashMap<String, usize>,
    /// What outlives a replacement of the table.
    pub(crate) common: Arc<Common>,
}

/// The queue and the proxy-wide counters, the same in every table a proxy had.
#[derive(Debug)]
pub(crate) struct Common {
    /// Clients waiting for a slot (its gauge: the proxy's `qcur` / `qmax`).
    pub(crate) queue: Queue,
    pub(crate) retries: AtomicU64,
    pub(crate) redispatches: AtomicU64,
}

impl Common {
    fn new(queue: Duration) -> Self {
        Common {
            // No `maxqueue`: clients wait up to `timeouts.queue`, however many.
            queue: Queue::new(usize::MAX, queue),
            retries: AtomicU64::new(0),
            redispatches: AtomicU64::new(0),
        }
    }
}

impl<E> Table<E> {
    /// The server at `index`.
    pub(crate) fn server(&self, index: usize) -> &Server<E> {
        &self.servers[index]
    }
}

/// A slot taken on a server, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot<E> {
    table: Arc<Table<E>>,
    index: usize,
    _in_flight: InFlight,
    /// Whether it is the server a stickiness cookie named.
    pub(crate) sticky: bool,
}

impl<E> Slot<E> {
    /// The server's position in the table.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The server.
    pub(crate) fn server(&self) -> &Server<E> {
        &self.table.servers[self.index]
    }

    /// The table it belongs to.
    pub(crate) fn table(&self) -> &Arc<Table<E>> {
        &self.table
    }
}

impl<E> Drop for Slot<E> {
    fn drop(&mut self) {
        self.table.servers[self.index].counters.release();
        self.table.common.queue.release();
    }
}

/// What a pick is based on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pick<'a> {
    /// The bytes consistent hashing hashes.
    pub(crate) key: Option<&'a [u8]>,
    /// The server a stickiness cookie names.
    pub(crate) sticky: Option<&'a str>,
}

/// Why a client or request got no server.
#[derive(Debug)]
pub(crate) enum Refused {
    /// None is available (all down, drained, in maintenance), or all were tried.
    NoBackend(NoBackend),
    /// Every candidate stayed at its `maxconn` for `timeouts.queue`.
    QueueTimeout,
    /// Every connect attempt failed.
    ConnectFailed,
}

/// How connects are retried and how long a client waits.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    /// `retries`, `redispatch` and the turn-around delay.
    pub(crate) retry: RetryLayer,
    pub(crate) connect: Duration,
    pub(crate) queue: Duration,
}

/// Counts a client queued on the server it found full first, until dropped.
struct QueuedOn(Arc<ServerCounters>);

impl Drop for QueuedOn {
    fn drop(&mut self) {
        self.0.queued.leave();
    }
}

/// The servers of one proxy with the backend set their picks come from.
pub(crate) struct Servers<A: Algorithm, E> {
    pub(crate) backends: Arc<BackendSet<String, A>>,
    /// Read once per pick; replaced by [`Servers::update`].
    pub(crate) table: ArcSwap<Table<E>>,
    pub(crate) policy: Policy,
    /// Held by [`Servers::update`]: one replacement at a time.
    updating: Mutex<()>,
}

impl<A: Algorithm, E> Servers<A, E> {
    /// Checks the servers (unique names; at least one unless `allow_empty`) and puts them in
    /// a new backend set, with `extra` for each.
    pub(crate) fn new(
        proxy: &str,
        settings: &[ServerSettings],
        algorithm: A,
        policy: Policy,
        allow_empty: bool,
        extra: impl Fn(&ServerSettings) -> E,
    ) -> Result<Self, ProxyError> {
        if settings.is_empty() && !allow_empty {
            return Err(ProxyError::NoServers {
                proxy: proxy.to_owned(),
            });
        }
        let duplicate = |server: &ServerSettings| ProxyError::DuplicateServer {
            proxy: proxy.to_owned(),
            server: server.name.clone(),
        };
        let backends = Arc::new(BackendSet::new(algorithm));
        let mut servers = Vec::with_capacity(settings.len());
        let mut index = HashMap::with_capacity(settings.len());
        for server in settings {
            if index.insert(server.name.clone(), servers.len()).is_some() {
                return Err(duplicate(server));
            }
            // Names are unique (checked above), so neither update can fail.
            backends
                .insert(server.name.clone(), server.weight)
                .and_then(|()| backends.set_maxconn(&server.name, server.maxconn))
                .map_err(|_| duplicate(server))?;
            servers.push(Server {
                settings: server.clone(),
                counters: Arc::new(ServerCounters::new(server.name.clone(), server.addr)),
                extra: Arc::new(extra(server)),
            });
        }
        Ok(Servers {
            backends,
            table: ArcSwap::from_pointee(Table {
                servers,
                index,
                common: Arc::new(Common::new(policy.queue)),
            }),
            policy,
            updating: Mutex::new(()),
        })
    }

    /// Replaces the servers with `settings` while the proxy runs (checked as
    /// [`Servers::new`] checks them; on an error nothing changed). A server whose name,
    /// address and TLS configuration (the same `Arc`) stay keeps its counters and `extra`
    /// (the HTTP pool); the others get new ones from `extra`. Then the backend set follows:
    /// new servers join (up), gone ones leave, every weight and `maxconn` is set; a server
    /// that stays keeps its health.
    ///
    /// A slot taken before stays on its server (of the old table) until it is given back; new
    /// picks see the new table.
    pub(crate) fn update(
        &self,
        proxy: &str,
        settings: &[ServerSettings],
        allow_empty: bool,
        extra: impl Fn(&ServerSettings) -> E,
    ) -> Result<(), ProxyError> {
        if settings.is_empty() && !allow_empty {
            return Err(ProxyError::NoServers {
                proxy: proxy.to_owned(),
            });
        }
        let _one_at_a_time = self
            .updating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.table.load_full();
        let mut servers = Vec::with_capacity(settings.len());
        let mut index = HashMap::with_capacity(settings.len());
        for server in settings {
            if index.insert(server.name.clone(), servers.len()).is_some() {
                return Err(ProxyError::DuplicateServer {
                    proxy: proxy.to_owned(),
                    server: server.name.clone(),
                });
            }
            let kept = old
                .index
                .get(&server.name)
                .map(|&i| &old.servers[i])
                .filter(|s| same_server(&s.settings, server));
            servers.push(match kept {
                Some(kept) => Server {
                    settings: server.clone(),
                    counters: kept.counters.clone(),
                    extra: kept.extra.clone(),
                },
                None => Server {
                    settings: server.clone(),
                    counters: Arc::new(ServerCounters::new(server.name.clone(), server.addr)),
                    extra: Arc::new(extra(server)),
                },
            });
        }
        // New members join the set before the table holds them and old ones leave after it
        // stopped holding them: a pick in between skips a member the table it reads does not
        // know, and always has the servers of one of the two tables to choose from.
        // Errors below are "already there" or "unknown", which the tables rule out (the set's
        // members are this table's servers): ignoring them leaves the set as it should be.
        for server in settings {
            if !old.index.contains_key(&server.name) {
                let _ = self.backends.insert(server.name.clone(), server.weight);
                let _ = self.backends.set_maxconn(&server.name, server.maxconn);
            }
        }
        self.table.store(Arc::new(Table {
            servers,
            index,
            common: old.common.clone(),
        }));
        for gone in old.servers.iter().map(|s| &s.settings.name) {
            if !settings.iter().any(|s| &s.name == gone) {
                let _ = self.backends.remove(gone);
            }
        }
        for server in settings {
            let _ = self.backends.set_weight(&server.name, server.weight);
            let _ = self.backends.set_maxconn(&server.name, server.maxconn);
        }
        Ok(())
    }

    /// The servers as they are now, in order.
    pub(crate) fn settings(&self) -> Vec<ServerSettings> {
        let table = self.table.load();
        table.servers.iter().map(|s| s.settings.clone()).collect()
    }

    /// Takes a slot on a server picked for `pick`, avoiding server `avoid`; when every
    /// candidate is at its `maxconn` it queues for a slot up to `timeouts.queue`.
    pub(crate) async fn reserve(
        &self,
        pick: &Pick<'_>,
        avoid: Option<usize>,
    ) -> Result<Slot<E>, Refused> {
        let mut first_full = None;
        let (queued_on, common) = {
            let table = self.table.load();
            match self.try_reserve(&table, pick, avoid, &mut first_full) {
                Ok(Attempt::Taken(slot)) => return Ok(slot),
                Ok(Attempt::Full) => {}
                Err(e) => return Err(Refused::NoBackend(e)),
            }
            let first = first_full.unwrap_or_default();
            let counters = table.servers[first].counters.clone();
            counters.queued.enter();
            (QueuedOn(counters), table.common.clone())
        };
        // The table now, each time: a reload may replace it while we wait.
        let take = || {
            self.try_reserve(&self.table.load(), pick, avoid, &mut None)
                .map_err(QueueError::Refused)
        };
        let result = common.queue.wait_for(take).await;
        drop(queued_on);
        result.map_err(|e| match e {
            QueueError::Refused(e) => Refused::NoBackend(e),
            _ => Refused::QueueTimeout,
        })
    }

    /// One pass over `table` (the current one): the sticky server if it is up (queueing for
    /// it when it is full), else the algorithm's pick, passing over full servers. The first
    /// full server goes to `first_full`.
    fn try_reserve(
        &self,
        table: &Arc<Table<E>>,
        pick: &Pick<'_>,
        avoid: Option<usize>,
        first_full: &mut Option<usize>,
    ) -> Result<Attempt<Slot<E>>, NoBackend> {
        let snapshot = self.backends.snapshot();
        if let Some(name) = pick.sticky
            && let Some(backend) = snapshot.get_by_name(name)
            && backend.sticky_available()
            && let Some(&index) = table.index.get(backend.key())
            && avoid != Some(index)
        {
            if table.servers[index].counters.try_reserve(backend.maxconn()) {
                return Ok(Attempt::Taken(Slot {
                    table: table.clone(),
                    index,
                    _in_flight: snapshot.start(backend),
                    sticky: true,
                }));
            }
            first_full.get_or_insert(index);
            return Ok(Attempt::Full);
        }
        let mut exclude = Vec::new();
        if let Some(slot) = avoid.and_then(|i| snapshot.slot(&table.servers[i].settings.name)) {
            exclude.push(slot);
        }
        let take = |backend: &crate::backend::Backend<String>| {
            // A member added to the set by hand has no address here: never pick it.
            let &index = table.index.get(backend.key())?;
            if table.servers[index].counters.try_reserve(backend.maxconn()) {
                Some(Attempt::Taken(Slot {
                    table: table.clone(),
                    index,
                    _in_flight: snapshot.start(backend),
                    sticky: false,
                }))
            } else {
                first_full.get_or_insert(index);
                Some(Attempt::Full)
            }
        };
        pick_free(
            &snapshot,
            self.backends.algorithm(),
            pick.key,
            &mut exclude,
            take,
        )
    }

    /// Connects to `slot`'s server with `open` (bounded by `timeouts.connect`); a failure is
    /// retried as `attempts` say: on the same server (after `retry_delay` unless
    /// `redispatch`), the last one on another server with `redispatch` (HAProxy's `retries`
    /// and `option redispatch`).
    pub(crate) async fn connect<C>(
        &self,
        pick: &Pick<'_>,
        mut slot: Slot<E>,
        attempts: &mut Attempts,
        open: impl AsyncFn(&Server<E>) -> io::Result<C>,
    ) -> Result<(C, Slot<E>), Refused> {
        loop {
            let server = slot.server();
            match tokio::time::timeout(self.policy.connect, open(server)).await {
                Ok(Ok(connection)) => return Ok((connection, slot)),
                Ok(Err(e)) => {
                    tracing::debug!(server = %server.settings.name, error = %e, "connect failed");
                }
                Err(_) => {
                    tracing::debug!(server = %server.settings.name, "connect timed out");
                }
            }
            server.counters.connect_failed();
            slot = self.retry(pick, slot, attempts, true).await?;
        }
    }

    /// The slot for the next attempt after one on `slot` failed, as `attempts` say: the same
    /// server (after the turn-around delay when `wait`) or, on the last retry with
    /// `redispatch`, another one. `Refused::ConnectFailed` when no retry is left.
    pub(crate) async fn retry(
        &self,
        pick: &Pick<'_>,
        slot: Slot<E>,
        attempts: &mut Attempts,
        wait: bool,
    ) -> Result<Slot<E>, Refused> {
        let Some(next) = attempts.next() else {
            return Err(Refused::ConnectFailed);
        };
        slot.table.common.retries.fetch_add(1, Ordering::Relaxed);
        match next {
            Next::Same { after } => {
                if wait && !after.is_zero() {
                    tokio::time::sleep(after).await;
                }
                Ok(slot)
            }
            Next::Redispatch => {
                // Where the failed server is in the current table (a reload may have moved or
                // removed it).
                let failed = {
                    let table = self.table.load();
                    if Arc::ptr_eq(&table, &slot.table) {
                        Some(slot.index)
                    } else {
                        table.index.get(&slot.server().settings.name).copied()
                    }
                };
                let common = slot.table.common.clone();
                drop(slot);
                // The cookie named the failed server: balance this time.
                let balanced = Pick {
                    sticky: None,
                    ..*pick
                };
                let slot = match self.reserve(&balanced, failed).await {
                    Ok(other) => other,
                    // Only the failed server is left: the last retry goes to it again.
                    Err(Refused::NoBackend(NoBackend::AllExcluded { .. })) => {
                        self.reserve(&balanced, None).await?
                    }
                    Err(refused) => return Err(refused),
                };
                if Some(slot.index) != failed {
                    common.redispatches.fetch_add(1, Ordering::Relaxed);
                }
                Ok(slot)
            }
        }
    }
}

/// Whether a server of the new settings is the same as one of the old: same name, address
/// and TLS configuration (by identity), so its counters and pooled connections carry over.
fn same_server(old: &ServerSettings, new: &ServerSettings) -> bool {
    old.name == new.name && old.addr == new.addr && same_tls(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Health, RoundRobin};
    use std::net::SocketAddr;

    fn servers(maxconn: Option<u32>) -> Servers<RoundRobin, ()> {
        let settings: Vec<ServerSettings> = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, name)| ServerSettings {
                maxconn,
                ..ServerSettings::new(*name, SocketAddr::from(([127, 0, 0, 1], 1 + i as u16)))
            })
            .collect();
        let policy = Policy {
            retry: RetryLayer::new(2, true).delay(Duration::from_millis(1)),
            connect: Duration::from_secs(1),
            queue: Duration::from_millis(200),
        };
        Servers::new("t", &settings, RoundRobin, policy, false, |_| ()).unwrap()
    }

    fn server(name: &str, port: u16) -> ServerSettings {
        ServerSettings::new(name, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[tokio::test]
    async fn an_update_keeps_the_counters_of_servers_that_stay_and_balances_over_the_new_list() {
        let servers = servers(None);
        drop(servers.reserve(&Pick::default(), None).await.unwrap());
        let (a, b) = {
            let table = servers.table.load();
            (
                table.server(0).counters.clone(),
                table.server(1).counters.clone(),
            )
        };
        assert_eq!(a.snapshot().max, 1);
        // a stays (moved to the end), b moves to another port, c is new with weight 3.
        let new = [
            server("b", 9),
            ServerSettings {
                weight: 3,
                ..server("c", 3)
            },
            server("a", 1),
        ];
        servers.update("t", &new, false, |_| ()).unwrap();
        let table = servers.table.load();
        assert!(Arc::ptr_eq(&table.server(2).counters, &a), "a kept");
        assert_eq!(table.server(2).counters.snapshot().max, 1);
        assert!(!Arc::ptr_eq(&table.server(0).counters, &b), "b readdressed");
        assert_eq!(table.server(0).counters.snapshot().addr.port(), 9);
        let set = servers.backends.snapshot();
        let weights: Vec<(String, u32)> = set
            .backends()
            .iter()
            .map(|b| (b.key().clone(), b.weight()))
            .collect();
        assert_eq!(weights.len(), 3, "{weights:?}");
        assert!(weights.contains(&("c".into(), 3)), "{weights:?}");
        let mut picked = HashMap::new();
        for _ in 0..10 {
            let slot = servers.reserve(&Pick::default(), None).await.unwrap();
            *picked
                .entry(slot.server().settings.name.clone())
                .or_insert(0) += 1;
        }
        assert_eq!(picked.get("c"), Some(&6), "{picked:?}");
        assert_eq!(
            servers.table.load().common.retries.load(Ordering::Relaxed),
            0
        );
    }

    #[tokio::test]
    async fn a_slot_on_a_removed_server_is_given_back_to_it_after_the_update() {
        let servers = servers(Some(1));
        let on_a = servers.reserve(&Pick::default(), None).await.unwrap();
        let on_b = servers.reserve(&Pick::default(), None).await.unwrap();
        assert_eq!(on_b.server().settings.name, "b");
        drop(on_a);
        let b = servers.table.load().server(1).counters.clone();
        let only_a = [ServerSettings {
            maxconn: Some(1),
            ..server("a", 1)
        }];
        servers.update("t", &only_a, false, |_| ()).unwrap();
        assert_eq!(b.snapshot().current, 1, "still held");
        assert!(servers.backends.snapshot().get_by_name("b").is_none());
        for _ in 0..3 {
            let slot = servers.reserve(&Pick::default(), None).await.unwrap();
            assert_eq!(slot.server().settings.name, "a");
        }
        drop(on_b);
        assert_eq!(b.snapshot().current, 0);
        assert!(servers.update("t", &[], false, |_| ()).is_err());
        let twice = [server("a", 1), server("a", 2)];
        assert!(servers.update("t", &twice, false, |_| ()).is_err());
        assert_eq!(
            servers.settings().len(),
            1,
            "a refused update changes nothing"
        );
    }

    /// Two servers of `maxconn` 1, each with its slot taken (the next client queues).
    async fn both_full() -> (Arc<Servers<RoundRobin, ()>>, [Slot<()>; 2]) {
        let servers = Arc::new(servers(Some(1)));
        let held = [
            servers.reserve(&Pick::default(), None).await.unwrap(),
            servers.reserve(&Pick::default(), None).await.unwrap(),
        ];
        (servers, held)
    }

    /// A client that asks for a slot and, after 20 ms, is still waiting in the queue; it ends
    /// with the name of the server it got.
    async fn queued_client(
        servers: &Arc<Servers<RoundRobin, ()>>,
    ) -> tokio::task::JoinHandle<Result<String, Refused>> {
        let servers = servers.clone();
        let waiter = tokio::spawn(async move {
            servers
                .reserve(&Pick::default(), None)
                .await
                .map(|s| s.server().settings.name.clone())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiter
    }

    #[tokio::test]
    async fn a_client_queued_before_an_update_gets_the_slot_given_back_after_it() {
        let (servers, held) = both_full().await;
        let waiter = queued_client(&servers).await;
        let same = [
            ServerSettings {
                maxconn: Some(1),
                weight: 2,
                ..server("a", 1)
            },
            ServerSettings {
                maxconn: Some(1),
                ..server("b", 2)
            },
        ];
        servers.update("t", &same, false, |_| ()).unwrap();
        assert_eq!(servers.table.load().common.queue.queued().now(), 1);
        let [first, _second] = held;
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap(), "a");
    }

    #[tokio::test]
    async fn a_sticky_pick_goes_to_the_named_server_while_it_is_up() {
        let servers = servers(None);
        let pick = Pick {
            key: None,
            sticky: Some("b"),
        };
        for _ in 0..3 {
            let slot = servers.reserve(&pick, None).await.unwrap();
            assert_eq!((slot.index(), slot.sticky), (1, true));
        }
        servers
            .backends
            .set_health(&"b".to_string(), Health::Down)
            .unwrap();
        let slot = servers.reserve(&pick, None).await.unwrap();
        assert_eq!((slot.index(), slot.sticky), (0, false));
    }

    #[tokio::test]
    async fn a_full_server_queues_until_a_slot_is_given_back_or_the_queue_times_out() {
        let (servers, held) = both_full().await;
        let timed_out = servers.reserve(&Pick::default(), None).await;
        assert!(matches!(timed_out, Err(Refused::QueueTimeout)));
        let waiter = queued_client(&servers).await;
        assert_eq!(servers.table.load().common.queue.queued().now(), 1);
        let [first, _second] = held;
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap(), "a");
        assert_eq!(servers.table.load().common.queue.queued().max(), 1);
        assert_eq!(servers.table.load().common.queue.queued().now(), 0);
    }

    #[tokio::test]
    async fn connect_retries_then_redispatches_on_the_last_retry() {
        let servers = servers(None);
        let slot = servers.reserve(&Pick::default(), None).await.unwrap();
        assert_eq!(slot.index(), 0);
        let mut attempts = servers.policy.retry.attempts();
        let (port, slot) = servers
            .connect(
                &Pick::default(),
                slot,
                &mut attempts,
                async |server| match server.settings.addr.port() {
                    1 => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
                    port => Ok(port),
                },
            )
            .await
            .unwrap();
        assert_eq!((port, slot.index(), attempts.left()), (2, 1, 0));
        assert_eq!(
            servers.table.load().common.retries.load(Ordering::Relaxed),
            2
        );
        assert_eq!(
            servers
                .table
                .load()
                .common
                .redispatches
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            servers
                .table
                .load()
                .server(0)
                .counters
                .snapshot()
                .connect_errors,
            2
        );
        assert_eq!(
            servers.table.load().server(0).counters.snapshot().current,
            0
        );
    }
}
