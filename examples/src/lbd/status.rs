//! A running listener as the stats page shows it: its proxy's counters, its servers' check
//! states, put in the page's [`ListenerStatus`].

use health_check::{Health, Status};
use lb_core::stats_page::{self, CheckStatus, ListenerStatus, ServerState, ServerStatus};

use super::config::Mode;
use super::daemon::Running;
use super::health::{HealthCheck, Probe};

impl Running {
    /// What the stats page shows of this listener now.
    pub(super) fn status(&self) -> ListenerStatus {
        let stats = self.proxy.stats();
        let mode = match self.config.mode {
            Mode::Http => stats_page::Mode::Http,
            Mode::Tcp => stats_page::Mode::Tcp,
        };
        let mut listener = ListenerStatus::from_stats(&stats, mode, self.proxy.local_addr());
        listener.name.clone_from(&self.config.name);
        listener.balance = self.config.balance.to_string();
        listener.counters.limit = Some(self.config.maxconn);
        listener.servers = self
            .config
            .servers
            .iter()
            .map(|server| {
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
                let mut status = match stats.server(&server.name) {
                    Some(counters) => ServerStatus::from_stats(counters, state),
                    None => ServerStatus::new(server.name.clone(), server.addr, state),
                };
                status.since = since;
                status.weight = server.weight;
                status.counters.limit = server.maxconn;
                status.check = check.map(|(config, status)| check_status(config, &status));
                status
            })
            .collect();
        listener
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
    let mut check = CheckStatus::new(word, config.monitor.rise, config.monitor.fall);
    check.last_error.clone_from(&status.last_error);
    check.successes = status.successes;
    check.failures = status.failures;
    check.checks = status.checks;
    check
}
