//! The servers both proxies share the code of: picking one through the `lb-core`
//! [`BackendSet`] (hash key, stickiness cookie), a slot per server bounded by its `maxconn`
//! with a queue (`timeouts.queue`), and connecting with `retries` and `redispatch`.
//!
//! A [`Slot`] is what a client (TCP) or a request (HTTP) holds on a server while it is served:
//! the server's `current` count and its in-flight count in the backend set (what `leastconn`
//! reads). It owns an `Arc` of the [`Table`], so it can live in a response body. Giving one
//! back wakes the clients queued for a slot, and only when some are: the hot path takes no
//! lock.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lb_core::{Algorithm, BackendSet, Context, InFlight, NoBackend};
use tokio::sync::Notify;

use super::error::ProxyError;
use super::settings::ServerSettings;
use super::stats::{Gauge, ServerCounters};

/// One server: its settings, counters, and what the proxy keeps per server (`E`: nothing for
/// TCP, the idle connection pool for HTTP).
#[derive(Debug)]
pub(crate) struct Server<E> {
    pub(crate) settings: ServerSettings,
    pub(crate) counters: ServerCounters,
    pub(crate) extra: E,
}

/// Every server of a proxy, in configuration order, and what their slots share.
#[derive(Debug)]
pub(crate) struct Table<E> {
    pub(crate) servers: Vec<Server<E>>,
    index: HashMap<String, usize>,
    /// Signalled when a slot is given back while `waiting` is above 0.
    freed: Notify,
    /// Clients between "found every server full" and "got a slot or gave up".
    waiting: AtomicUsize,
    /// Clients queued (the proxy's `qcur` / `qmax`).
    pub(crate) queued: Gauge,
    pub(crate) retries: AtomicU64,
    pub(crate) redispatches: AtomicU64,
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
        // SeqCst on both sides (here after `release`, in `reserve` before looking): either
        // the waiter sees the slot free or this sees the waiter.
        if self.table.waiting.load(Ordering::SeqCst) > 0 {
            self.table.freed.notify_waiters();
        }
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

/// One pass of [`Servers::try_reserve`].
enum Reserve<E> {
    Slot(Slot<E>),
    /// Every candidate is full; the first one picked.
    Full(usize),
}

/// How connects are retried and how long a client waits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub(crate) retries: u32,
    pub(crate) redispatch: bool,
    pub(crate) retry_delay: Duration,
    pub(crate) connect: Duration,
    pub(crate) queue: Duration,
}

/// The servers of one proxy with the backend set their picks come from.
pub(crate) struct Servers<A: Algorithm, E> {
    pub(crate) backends: Arc<BackendSet<String, A>>,
    pub(crate) table: Arc<Table<E>>,
    pub(crate) policy: Policy,
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
                counters: ServerCounters::new(server.name.clone(), server.addr),
                extra: extra(server),
            });
        }
        Ok(Servers {
            backends,
            table: Arc::new(Table {
                servers,
                index,
                freed: Notify::new(),
                waiting: AtomicUsize::new(0),
                queued: Gauge::default(),
                retries: AtomicU64::new(0),
                redispatches: AtomicU64::new(0),
            }),
            policy,
        })
    }

    /// Takes a slot on a server picked for `pick`, avoiding server `avoid`; when every
    /// candidate is at its `maxconn` it queues for a slot up to `timeouts.queue`.
    pub(crate) async fn reserve(
        &self,
        pick: &Pick<'_>,
        avoid: Option<usize>,
    ) -> Result<Slot<E>, Refused> {
        let first = match self.try_reserve(pick, avoid).map_err(Refused::NoBackend)? {
            Reserve::Slot(slot) => return Ok(slot),
            Reserve::Full(first) => first,
        };
        let table = &*self.table;
        let counters = &table.servers[first].counters;
        table.waiting.fetch_add(1, Ordering::SeqCst);
        table.queued.enter();
        counters.queued.enter();
        let deadline = tokio::time::Instant::now() + self.policy.queue;
        let result = loop {
            let freed = table.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a slot freed in between still wakes us.
            freed.as_mut().enable();
            match self.try_reserve(pick, avoid) {
                Ok(Reserve::Slot(slot)) => break Ok(slot),
                Ok(Reserve::Full(_)) => {}
                Err(e) => break Err(Refused::NoBackend(e)),
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                break Err(Refused::QueueTimeout);
            }
        };
        counters.queued.leave();
        table.queued.leave();
        table.waiting.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// One pass: the sticky server if it is up (queueing for it when it is full), else the
    /// algorithm's pick, skipping full servers.
    fn try_reserve(&self, pick: &Pick<'_>, avoid: Option<usize>) -> Result<Reserve<E>, NoBackend> {
        let table = &self.table;
        let snapshot = self.backends.snapshot();
        let slot_of = |index: usize| snapshot.slot(&table.servers[index].settings.name);
        if let Some(name) = pick.sticky
            && let Some(backend) = snapshot.get_by_name(name)
            && backend.sticky_available()
            && let Some(&index) = table.index.get(backend.key())
            && avoid != Some(index)
        {
            return Ok(
                if table.servers[index].counters.try_reserve(backend.maxconn()) {
                    Reserve::Slot(Slot {
                        table: table.clone(),
                        index,
                        _in_flight: snapshot.start(backend),
                        sticky: true,
                    })
                } else {
                    Reserve::Full(index)
                },
            );
        }
        let mut exclude = Vec::new();
        if let Some(slot) = avoid.and_then(slot_of) {
            exclude.push(slot);
        }
        let mut full = None;
        loop {
            let context = Context {
                key: pick.key,
                exclude: &exclude,
            };
            let backend = match (snapshot.pick(self.backends.algorithm(), &context), full) {
                (Ok(backend), _) => backend,
                (Err(NoBackend::AllExcluded { .. }), Some(first)) => {
                    return Ok(Reserve::Full(first));
                }
                (Err(e), _) => return Err(e),
            };
            let Some(slot) = snapshot.slot(backend.key()) else {
                return Err(NoBackend::AllExcluded {
                    available: snapshot.available(),
                });
            };
            // A member added to the set by hand has no address here: never pick it.
            if let Some(&index) = table.index.get(backend.key()) {
                if table.servers[index].counters.try_reserve(backend.maxconn()) {
                    return Ok(Reserve::Slot(Slot {
                        table: table.clone(),
                        index,
                        _in_flight: snapshot.start(backend),
                        sticky: false,
                    }));
                }
                full.get_or_insert(index);
            }
            exclude.push(slot);
        }
    }

    /// Connects to `slot`'s server with `open` (bounded by `timeouts.connect`); a failure is
    /// retried while `left` allows, on the same server (after `retry_delay` unless
    /// `redispatch`), the last one on another server with `redispatch` (HAProxy's `retries`
    /// and `option redispatch`).
    pub(crate) async fn connect<C>(
        &self,
        pick: &Pick<'_>,
        mut slot: Slot<E>,
        left: &mut u32,
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
            slot = self.retry(pick, slot, left, true).await?;
        }
    }

    /// The slot for the next attempt after one on `slot` failed: the same server (after
    /// `retry_delay` when `wait` and without `redispatch`) or, on the last retry with
    /// `redispatch`, another one.
    /// `Refused::ConnectFailed` when no retry is left.
    pub(crate) async fn retry(
        &self,
        pick: &Pick<'_>,
        slot: Slot<E>,
        left: &mut u32,
        wait: bool,
    ) -> Result<Slot<E>, Refused> {
        if *left == 0 {
            return Err(Refused::ConnectFailed);
        }
        *left -= 1;
        self.table.retries.fetch_add(1, Ordering::Relaxed);
        if *left == 0 && self.policy.redispatch {
            let failed = slot.index;
            drop(slot);
            // The cookie named the failed server: balance this time.
            let balanced = Pick {
                sticky: None,
                ..*pick
            };
            let slot = match self.reserve(&balanced, Some(failed)).await {
                Ok(other) => other,
                // Only the failed server is left: the last retry goes to it again.
                Err(Refused::NoBackend(NoBackend::AllExcluded { .. })) => {
                    self.reserve(&balanced, None).await?
                }
                Err(refused) => return Err(refused),
            };
            if slot.index != failed {
                self.table.redispatches.fetch_add(1, Ordering::Relaxed);
            }
            Ok(slot)
        } else {
            // HAProxy waits its turn-around timer only when the retry has to go to the same
            // server; with redispatch it retries at once (measured on the lab's hc suite:
            // no stall when a server dies, where waiting stalled clients for 2 x 1 s).
            if wait && !self.policy.redispatch {
                tokio::time::sleep(self.policy.retry_delay).await;
            }
            Ok(slot)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_core::{Health, RoundRobin};
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
            retries: 2,
            redispatch: true,
            retry_delay: Duration::from_millis(1),
            connect: Duration::from_secs(1),
            queue: Duration::from_millis(200),
        };
        Servers::new("t", &settings, RoundRobin, policy, false, |_| ()).unwrap()
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
        let servers = Arc::new(servers(Some(1)));
        let held = [
            servers.reserve(&Pick::default(), None).await.unwrap(),
            servers.reserve(&Pick::default(), None).await.unwrap(),
        ];
        let timed_out = servers.reserve(&Pick::default(), None).await;
        assert!(matches!(timed_out, Err(Refused::QueueTimeout)));
        let waiter = {
            let servers = servers.clone();
            tokio::spawn(async move {
                servers
                    .reserve(&Pick::default(), None)
                    .await
                    .map(|s| s.index())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(servers.table.queued.now(), 1);
        let [first, _second] = held;
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap(), 0);
        assert_eq!(servers.table.queued.max(), 1);
        assert_eq!(servers.table.queued.now(), 0);
    }

    #[tokio::test]
    async fn connect_retries_then_redispatches_on_the_last_retry() {
        let servers = servers(None);
        let slot = servers.reserve(&Pick::default(), None).await.unwrap();
        assert_eq!(slot.index(), 0);
        let mut left = 2;
        let (port, slot) = servers
            .connect(
                &Pick::default(),
                slot,
                &mut left,
                async |server| match server.settings.addr.port() {
                    1 => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
                    port => Ok(port),
                },
            )
            .await
            .unwrap();
        assert_eq!((port, slot.index(), left), (2, 1, 0));
        assert_eq!(servers.table.retries.load(Ordering::Relaxed), 2);
        assert_eq!(servers.table.redispatches.load(Ordering::Relaxed), 1);
        assert_eq!(
            servers.table.server(0).counters.snapshot().connect_errors,
            2
        );
        assert_eq!(servers.table.server(0).counters.snapshot().current, 0);
    }
}
