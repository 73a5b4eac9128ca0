//! A snapshot with one of everything, for the renderers' tests.

use std::time::{Duration, UNIX_EPOCH};

use super::section::{Row, Section, Tone};
use super::snapshot::{
    CheckStatus, Counters, ListenerStatus, Mode, Queue, ServerState, ServerStatus, Snapshot,
};
use crate::proxy::ResponseCodes;

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
            current: 2,
            max: 9,
            limit: Some(100),
            total: 1234,
            requests: 5678,
            bytes_in: 1536,
            bytes_out: 3 * 1024 * 1024,
            responses: ResponseCodes {
                success: 5000,
                server_error: 7,
                ..ResponseCodes::default()
            },
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
                    current: 6,
                    max: 30,
                    limit: Some(3000),
                    total: 9999,
                    requests: 17034,
                    bytes_in: 4608,
                    bytes_out: 9 * 1024 * 1024,
                    responses: ResponseCodes {
                        success: 17000,
                        server_error: 34,
                        ..ResponseCodes::default()
                    },
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
