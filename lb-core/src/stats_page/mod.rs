//! A stats page for the proxies (feature `stats-page`), as HAProxy's `stats uri` but with
//! what it lacks: per listener and server the state (in color, with the time since it last
//! changed and the rise/fall progress), weight, sessions, requests, bytes, responses by class,
//! errors, queue, the check's status and its last error. It refreshes itself, needs no script
//! and no outside resource. A [`StatsServer`] serves it on an address of its own
//! ([`StatsSettings`]):
//!
//! | path | what |
//! | --- | --- |
//! | `uri` (default `/stats`), `?refresh=N` (0: never) | the HTML page ([`html`]) |
//! | `uri;json`, `uri?format=json` | the [`Snapshot`] as JSON |
//! | `/metrics` | the Prometheus text format ([`metrics`] lists the series) |
//!
//! With [`Credentials`], every path wants them (HTTP basic, the realm is the page's title).
//! Only `GET` and `HEAD` are served, one request per connection, each within 5 seconds. The
//! service hands over its state as a [`Snapshot`] through a [`SnapshotSource`], read at
//! every request: the proxies' counters ([`ProxyStats`](crate::proxy::ProxyStats) through
//! [`ListenerStatus::from_stats`] and [`ServerStatus::from_stats`]) with the servers' states
//! from its health checks.
//!
//! ```no_run
//! use std::time::{Duration, Instant, SystemTime};
//! use lb_core::proxy::{ServerSettings, TcpProxy, TcpSettings};
//! use lb_core::stats_page::{
//!     Credentials, ListenerStatus, Mode, ServerState, ServerStatus, Snapshot, StatsServer,
//!     StatsSettings,
//! };
//! use lb_core::RoundRobin;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let servers = vec![ServerSettings::new("db1", "10.0.0.11:5432".parse()?)];
//! let settings = TcpSettings::new("pg", "127.0.0.1:15432".parse()?, servers);
//! let proxy = TcpProxy::start(settings, RoundRobin)?;
//!
//! let mut page = StatsSettings::new("127.0.0.1:8404".parse()?);
//! page.auth = Some(Credentials::new("admin", "secret"));
//! let (started, clock) = (SystemTime::now(), Instant::now());
//! let server = StatsServer::start(&page, move || {
//!     let stats = proxy.stats();
//!     let mut listener = ListenerStatus::from_stats(&stats, Mode::Tcp, proxy.local_addr());
//!     listener.balance = "roundrobin".into();
//!     for server in &stats.servers {
//!         // No health check here: every server is "no check".
//!         let status = ServerStatus::from_stats(server, ServerState::NoCheck);
//!         listener.servers.push(status);
//!     }
//!     let mut snapshot = Snapshot::new(started, clock.elapsed());
//!     snapshot.listeners.push(listener);
//!     snapshot
//! })
//! .await?;
//! println!("http://admin:secret@{}/stats", server.local_addr());
//! # tokio::time::sleep(Duration::from_secs(3600)).await;
//! # Ok(()) }
//! ```
//!
//! ## Sections of one's own
//!
//! A service that runs more than proxies (say VRRP instances beside the balancer) shows the
//! rest on the same page, in the same JSON and on the same `/metrics`, without lb-core
//! knowing what it is. Its [`SnapshotSource`] adds [`Section`]s to the snapshot (a titled
//! table: column names, rows of text cells, a [`Tone`] per row in the legend's colors; the
//! JSON lists them under `sections`) and writes Prometheus text of its own in
//! [`SnapshotSource::extra_metrics`], served after the page's families:
//!
//! ```
//! use lb_core::stats_page::prometheus::Family;
//! use lb_core::stats_page::{Row, Section, Snapshot, SnapshotSource, Tone, html};
//!
//! /// The balancer and VRRP instances in one daemon (here, the instances' state is fixed).
//! struct Hald {
//!     instances: Vec<(&'static str, &'static str, u8)>,
//! }
//!
//! impl SnapshotSource for Hald {
//!     fn snapshot(&self) -> Snapshot {
//!         let mut snapshot = Snapshot::default(); // the listeners, filled as for the proxies
//!         let mut vrrp = Section::new("VRRP instances", ["Instance", "State", "Priority"]);
//!         for &(name, state, priority) in &self.instances {
//!             let tone = match state {
//!                 "MASTER" => Tone::Up,
//!                 "FAULT" => Tone::Down,
//!                 _ => Tone::Idle,
//!             };
//!             let row = Row::new([name, state, &priority.to_string()]);
//!             vrrp.push(row.with_tone(tone));
//!         }
//!         snapshot.sections.push(vrrp);
//!         snapshot
//!     }
//!
//!     fn extra_metrics(&self, out: &mut String) {
//!         let help = "The instance's priority.";
//!         let mut f = Family::new(out, "hald_vrrp_priority", "gauge", help);
//!         for &(name, _, priority) in &self.instances {
//!             f.sample(&[("instance", name)], f64::from(priority));
//!         }
//!     }
//! }
//!
//! let hald = Hald { instances: vec![("VI_1", "MASTER", 150), ("VI_2", "BACKUP", 100)] };
//! let page = html::render(&hald.snapshot(), "hald statistics", "/stats", None);
//! assert!(page.contains("<tr id=\"VRRP instances/VI_1\" class=\"row state-up\">"));
//! let mut metrics = String::new();
//! hald.extra_metrics(&mut metrics);
//! assert!(metrics.contains("hald_vrrp_priority{instance=\"VI_2\"} 100"));
//! // `StatsServer::start(&settings, hald)` serves both, with the listeners.
//! ```

mod auth;
mod error;
#[cfg(test)]
mod fixture;
pub mod html;
pub mod metrics;
pub mod prometheus;
mod section;
mod server;
mod settings;
mod snapshot;

pub use auth::Credentials;
pub use error::StatsError;
pub use section::{Row, Section, Tone};
pub use server::{SnapshotSource, StatsServer};
pub use settings::{
    DEFAULT_METRICS_PREFIX, DEFAULT_TITLE, DEFAULT_URI, METRICS_URI, StatsSettings,
};
pub use snapshot::{
    CheckStatus, Counters, ListenerStatus, Mode, Queue, ServerState, ServerStatus, Snapshot,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_snapshots_shape() {
        let json = serde_json::to_value(fixture::snapshot()).unwrap();
        assert_eq!(json["started_unix"], 1_700_000_000.0);
        assert_eq!(json["uptime_seconds"], 3725.0);
        let web = &json["listeners"][0];
        assert_eq!(web["name"], "web <&>");
        assert_eq!(web["mode"], "http");
        assert_eq!(web["bind"], "127.0.0.1:18080");
        assert_eq!(web["limit"], 3000);
        assert_eq!(json["listeners"][1]["limit"], serde_json::Value::Null);
        assert_eq!(json["listeners"][1]["mode"], "tcp");
        assert_eq!(web["responses"]["5xx"], 34);
        let web2 = &web["servers"][1];
        assert_eq!(web2["name"], "web2");
        assert_eq!(web2["state"], "DOWN");
        assert_eq!(web2["since_seconds"], 133.0);
        assert_eq!(web2["queue"]["current"], 4);
        assert_eq!(web2["check"]["status"], "L4CON");
        assert_eq!(
            web2["check"]["last_error"],
            "connect: Connection refused <os error 111>"
        );
        assert_eq!(web2["check"]["rise"], 2);
        assert_eq!(json["listeners"][1]["servers"][0]["state"], "NO_CHECK");
        assert_eq!(
            json["listeners"][1]["servers"][0]["check"],
            serde_json::Value::Null
        );
    }
}
