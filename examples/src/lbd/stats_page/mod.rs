//! lbd's stats page, as HAProxy's `stats uri` but with what it lacks: per listener and server
//! the state (in color, with the time since it last changed and the rise/fall progress), weight,
//! sessions, requests, bytes, responses by class, errors, queue, the check's status and its last
//! error. It refreshes itself. Served on its own address (`stats = { bind, uri, auth }`):
//!
//! | path | what |
//! | --- | --- |
//! | `uri` (default `/stats`), `?refresh=N` (0: never) | the HTML page |
//! | `uri;json`, `uri?format=json` | the [`Snapshot`] as JSON |
//! | `/metrics` | the Prometheus text format ([`metrics`] lists the series) |
//!
//! With `auth`, every path wants it (HTTP basic, realm `lbd statistics`). Only `GET` and `HEAD`
//! are served. The daemon hands over its state as a [`Snapshot`] through a [`SnapshotSource`],
//! read at every request:
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use examples::lbd::stats_page::{Snapshot, StatsServer};
//! use examples::lbd::Stats;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let stats = Stats {
//!     bind: "127.0.0.1:18404".parse()?,
//!     uri: "/stats".into(),
//!     auth: Some(("admin".into(), "secret".into())),
//! };
//! let started = SystemTime::now();
//! let server = StatsServer::start(&stats, move || Snapshot {
//!     started,
//!     uptime: started.elapsed().unwrap_or(Duration::ZERO),
//!     listeners: Vec::new(), // the daemon's listeners and servers
//! })
//! .await?;
//! println!("http://admin:secret@{}/stats", server.local_addr());
//! # Ok(()) }
//! ```

mod auth;
#[cfg(test)]
mod fixture;
pub mod html;
pub mod metrics;
mod server;
mod snapshot;

pub use auth::REALM;
pub use server::{SnapshotSource, StatsError, StatsServer};
pub use snapshot::{
    CheckStatus, Counters, ListenerStatus, Queue, Responses, ServerState, ServerStatus, Snapshot,
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
