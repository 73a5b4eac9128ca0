//! A snapshot with one of everything, for the renderers' tests.

use std::time::{Duration, UNIX_EPOCH};

use super::section::{Row, Section, Tone};
use super::snapshot::{
    CheckStatus, Counters, ListenerStatus, Mode, Queue, ServerState, ServerStatus, Snapshot,
};
use crate::proxy::ResponseCodes;

/// Responses: `success` 2xx, `server_error` 5xx.
fn responses(success: u64, server_error: u64) -> ResponseCodes {
    ResponseCodes {
        success,
        server_error,
        ..ResponseCodes::default()
    }
}

/// Listener `web <&>` (http) with web1 UP, web2 DOWN (going up 1/2), web3 UP going down, and
/// `db` (tcp) with one unchecked server in maintenance-free state and one in MAINT.
pub(super) fn snapshot() -> Snapshot {
    let check = |status: &str, error: Option<&str>, successes, failures| {
        Some(CheckStatus {
            status: status.into(),
            last_error: error.map(Into::into),
            successes,
            failures,
            rise: 2,
            fall: 3,
            checks: 40,
        })
    };
    let server = |name: &str, port: u16, state, check| ServerStatus {
        name: name.into(),
        addr: ([127, 0, 0, 1], port).into(),
        state,
        since: Duration::from_secs(133),
        weight: 1,
        counters: Counters {
            limit: Some(100),
            ..Counters::of([2, 9], [1234, 5678], [1536, 3 << 20], responses(5000, 7))
        },
        connect_errors: 3,
        response_errors: 1,
        queue: Queue { current: 4, max: 8 },
        check,
    };
    Snapshot {
        started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        uptime: Duration::from_secs(3725),
        listeners: vec![
            ListenerStatus {
                name: "web <&>".into(),
                mode: Mode::Http,
                bind: ([127, 0, 0, 1], 18080).into(),
                balance: "roundrobin".into(),
                counters: Counters {
                    limit: Some(3000),
                    ..Counters::of(
                        [6, 30],
                        [9999, 17034],
                        [4608, 9 << 20],
                        responses(17000, 34),
                    )
                },
                servers: vec![
                    server(
                        "web1",
                        18081,
                        ServerState::Up,
                        check("L7OK/200 in 1ms", None, 5, 0),
                    ),
                    server(
                        "web2",
                        18082,
                        ServerState::Down,
                        check(
                            "L4CON",
                            Some("connect: Connection refused <os error 111>"),
                            1,
                            0,
                        ),
                    ),
                    server(
                        "web\"3\"",
                        18083,
                        ServerState::Up,
                        check("L7STS/500 in 2ms", Some("HTTP status 500"), 0, 1),
                    ),
                ],
            },
            ListenerStatus {
                name: "db".into(),
                mode: Mode::Tcp,
                bind: ([127, 0, 0, 1], 15432).into(),
                balance: "leastconn".into(),
                counters: Counters {
                    current: 1,
                    max: 2,
                    total: 3,
                    bytes_in: 10,
                    bytes_out: 20,
                    ..Counters::default()
                },
                servers: vec![
                    server("pg1", 5432, ServerState::NoCheck, None),
                    server("pg2", 5433, ServerState::Maint, None),
                ],
            },
        ],
        sections: Vec::new(),
    }
}

/// The same with a section of the embedder's, `VRRP <instances>`: VI_1 Master (green), `VI_<2>`
/// Backup (grey) with two cells of four, VI_3 plain with one cell too many.
pub(super) fn with_vrrp() -> Snapshot {
    let mut snapshot = snapshot();
    let mut vrrp = Section::new(
        "VRRP <instances>",
        ["Instance", "State", "Priority", "VIPs"],
    );
    vrrp.push(Row::new(["VI_1", "MASTER", "150", "10.0.0.100/24"]).with_tone(Tone::Up));
    vrrp.push(Row::new(["VI_<2>", "BACKUP"]).with_tone(Tone::Idle));
    vrrp.push(Row::new(["VI_3", "INIT", "100", "", "extra"]));
    snapshot.sections.push(vrrp);
    snapshot
}
