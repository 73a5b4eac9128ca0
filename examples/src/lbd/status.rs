//! A running listener as the stats page shows it: its proxy's counters, its servers' check
//! states, put in the page's [`ListenerStatus`].

use health_check::{Health, Status};

use super::daemon::Running;
use super::health::{HealthCheck, Probe};
use super::stats_page::{
    CheckStatus, Counters, ListenerStatus, Queue, Responses, ServerState, ServerStatus,
};
use lb_core::proxy::{ProxyStats, ResponseCodes, ServerStats};

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
                    counters: counters
                        .map_or_else(Counters::default, |c| server_counters(c, server.maxconn)),
                    connect_errors: counters.map_or(0, |c| c.connect_errors),
                    response_errors: counters.map_or(0, |c| c.response_errors),
                    queue: counters.map_or_else(Queue::default, |c| Queue {
                        current: c.queued as u64,
                        max: c.queued_max as u64,
                    }),
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
        max: c.max as u64,
        limit,
        total: c.total,
        requests: c.total,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        responses: responses(&c.responses),
    }
}

fn listener_counters(stats: &ProxyStats, limit: u32) -> Counters {
    Counters {
        current: stats.current as u64,
        max: stats.max as u64,
        limit: Some(limit),
        total: stats.total,
        requests: stats.requests,
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        responses: responses(&stats.responses),
    }
}

fn responses(r: &ResponseCodes) -> Responses {
    Responses {
        informational: r.informational,
        success: r.success,
        redirection: r.redirection,
        client_error: r.client_error,
        server_error: r.server_error,
        other: r.other,
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
