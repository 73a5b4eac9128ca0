//! The `lbd` binary on the shipped `stats.toml` (moved to free loopback ports) in front of
//! three real backends, its stats page read by a real headless browser (Debian's chromium):
//! with `admin:secret` the page shows s1, s2 and s3 UP; once s2 is stopped and lbd logged it
//! down, the reloaded page shows s2 DOWN with its check error. Without credentials: a 401
//! with the realm. `/metrics` and `/stats;json` say the same.

mod browser;
// Only `skip` is used here (by `browser`).
#[allow(dead_code)]
mod lab;
mod lbdlab;

use std::time::Duration;

use browser::{chromium_or_skip, dump_dom, row_class, row_text};
use lbdlab::{Backend, Client, Lbd, Ports};
use tokio::net::TcpStream;

// admin:secret
const GOOD: &str = "Basic YWRtaW46c2VjcmV0";

/// The page as chromium shows it (run off the runtime's threads).
async fn page_in_chromium(url: String) -> String {
    tokio::task::spawn_blocking(move || dump_dom(&url))
        .await
        .expect("the browser thread")
}

/// `GET path` on the stats port: status, headers, body.
async fn stats_get(
    ports: &Ports,
    path: &str,
    auth: Option<&str>,
) -> (u16, std::collections::HashMap<String, String>, String) {
    let mut stream = TcpStream::connect(ports.stats)
        .await
        .expect("the stats page accepts");
    let mut headers = vec![("Connection", "close")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    Client::default()
        .request(&mut stream, path, &headers)
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_stats_page_shows_every_server_then_s2_down_after_it_stops() {
    if !chromium_or_skip(
        "in_chromium_the_stats_page_shows_every_server_then_s2_down_after_it_stops",
    ) {
        return;
    }
    let ports = Ports::new();
    let mut servers = Vec::new();
    for (i, addr) in ports.servers.iter().enumerate() {
        servers.push(Backend::start(&format!("s{}", i + 1), *addr).await);
    }
    let lbd = Lbd::start(&ports.config("stats"));
    // Some traffic for the counters.
    for _ in 0..6 {
        lbdlab::get(ports.listen, "/").await.expect("an answer");
    }
    let url = format!("http://admin:secret@{}/stats", ports.stats);

    let dom = page_in_chromium(url.clone()).await;
    assert!(
        dom.contains("<title>lbd statistics</title>"),
        "the page did not load:\n{dom}"
    );
    for name in ["s1", "s2", "s3"] {
        let id = format!("web/{name}");
        let text = row_text(&dom, &id).unwrap_or_else(|| panic!("no row {id} in\n{dom}"));
        assert!(text.starts_with(&format!("{name} ")), "{text}");
        assert!(text.contains(" UP "), "{id} is UP: {text}");
        assert_eq!(row_class(&dom, &id).as_deref(), Some("server state-up"));
    }

    servers[1].stop();
    let down = lbd
        .logged(
            &format!("backend web server s2 {} marked down", ports.servers[1]),
            Duration::from_secs(15),
        )
        .await;
    assert!(down.contains("refused"), "{down}");

    let dom = page_in_chromium(url).await;
    let s2 = row_text(&dom, "web/s2").expect("s2's row");
    assert!(s2.contains(" DOWN "), "s2 is DOWN: {s2}");
    assert!(s2.contains("L4CON"), "{s2}");
    assert!(s2.contains("Connection refused"), "the check error: {s2}");
    assert_eq!(
        row_class(&dom, "web/s2").as_deref(),
        Some("server state-down")
    );
    for id in ["web/s1", "web/s3"] {
        let text = row_text(&dom, id).expect("a row");
        assert!(text.contains(" UP "), "{text}");
    }

    // Without credentials: the browser gets no table, a client the 401 and the realm.
    let dom = page_in_chromium(format!("http://{}/stats", ports.stats)).await;
    assert!(!dom.contains("web/s2"), "{dom}");
    for path in ["/stats", "/metrics", "/stats;json"] {
        let (status, headers, body) = stats_get(&ports, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(
            headers.get("www-authenticate").map(String::as_str),
            Some("Basic realm=\"lbd statistics\""),
            "{path}"
        );
        assert!(!body.contains("s2"), "{path}: {body}");
    }

    // Prometheus text: s2 not up, the others up.
    let (status, _, metrics) = stats_get(&ports, "/metrics", Some(GOOD)).await;
    assert_eq!(status, 200);
    let up: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("lbd_server_up{"))
        .collect();
    assert_eq!(up.len(), 3, "{metrics}");
    for line in up {
        let want = if line.contains("server=\"s2\"") {
            " 0"
        } else {
            " 1"
        };
        assert!(line.ends_with(want), "{line}");
        assert!(line.contains("listener=\"web\""), "{line}");
    }

    // JSON: s2 DOWN with its check error.
    let (status, headers, body) = stats_get(&ports, "/stats;json", Some(GOOD)).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"].starts_with("application/json"),
        "{headers:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let listener = &json["listeners"][0];
    assert_eq!(listener["name"], "web");
    let states: Vec<(String, String)> = listener["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("s1".to_owned(), "UP".to_owned()),
            ("s2".to_owned(), "DOWN".to_owned()),
            ("s3".to_owned(), "UP".to_owned()),
        ]
    );
    assert!(
        body.contains("Connection refused"),
        "the check error in JSON: {body}"
    );
}
