//! A running listener as the stats page shows it: its proxy's counters, its servers' check
//! states, put in the page's [`ListenerStatus`].

use health_check::{Health, Status};

use super::daemon::Running;
use super::health::{HealthCheck, Probe};
use super::stats_page::{
    CheckStatus, Counters, ListenerStatus, Queue, ServerState, ServerStatus,
};
use crate::proxy::{ProxyStats, ServerStats};

impl Running {
    /// What the stats page shows of this listener now.
    pub(super) fn status(&self) -> ListenerStatus {
        let stats = self.proxy.stats();
        let servers = self
            .config
            .servers
            .iter()
            .map(|server| {
                let counters = stats.server(&server.name);
                let check = self
                    .config
                    .check
                    .as_ref()
                    .zip(self.monitors.status(&server.name));
                let (state, since) = match &check {
                    Some((_, status)) => (
                        match status.health {
                            Health::Up => ServerState::Up,
                            Health::Down => ServerState::Down,
                        },
                        status.since.elapsed(),
                    ),
                    None => (ServerState::NoCheck, self.started.elapsed()),
                };
                ServerStatus {
                    name: server.name.clone(),
                    addr: server.addr,
                    state,
                    since,
                    weight: server.weight,
                    counters: counters.map_or_else(Counters::default, |c| {
                        server_counters(c, server.maxconn)
                    }),
                    connect_errors: counters.map_or(0, |c| c.connect_errors),
                    response_errors: 0,
                    queue: Queue::default(),
                    check: check.map(|(config, status)| check_status(config, &status)),
                }
            })
            .collect();
        ListenerStatus {
            name: self.config.name.clone(),
            mode: self.config.mode,
            bind: self.proxy.local_addr(),
            balance: self.config.balance.to_string(),
            counters: listener_counters(&stats, self.config.maxconn),
            servers,
        }
    }
}

fn server_counters(c: &ServerStats, limit: Option<u32>) -> Counters {
    Counters {
        current: c.current as u64,
        max: c.current as u64,
        limit,
        total: c.total,
        requests: c.total,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        responses: Default::default(),
    }
}

fn listener_counters(stats: &ProxyStats, limit: u32) -> Counters {
    Counters {
        current: stats.current as u64,
        max: stats.current as u64,
        limit: Some(limit),
        total: stats.total,
        requests: stats.total,
        bytes_in: stats.servers.iter().map(|s| s.bytes_in).sum(),
        bytes_out: stats.servers.iter().map(|s| s.bytes_out).sum(),
        responses: Default::default(),
    }
}

/// HAProxy's check status words: `L4OK`/`L7OK` when the last check passed, `L4CON`,
/// `L7STS`, `L4TOUT` or `L7TOUT` when it failed (from the error's text), `INI` before any.
fn check_status(config: &HealthCheck, status: &Status) -> CheckStatus {
    let layer = match config.probe {
        Probe::Tcp => "L4",
        Probe::Http { .. } => "L7",
    };
    let word = if status.checks == 0 {
        "INI".to_owned()
    } else if status.failures == 0 {
        format!("{layer}OK")
    } else {
        let error = status.last_error.as_deref().unwrap_or("");
        if error.contains("timed out") || error.contains("timeout") {
            format!("{layer}TOUT")
        } else if error.contains("connect") || error.contains("refused") {
            "L4CON".to_owned()
        } else {
            format!("{layer}STS")
        }
    };
    CheckStatus {
        status: word,
        last_error: status.last_error.clone(),
        successes: status.successes,
        failures: status.failures,
        rise: config.monitor.rise,
        fall: config.monitor.fall,
        checks: status.checks,
    }
}
