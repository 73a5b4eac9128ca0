//! lbd's stats page (lb-core's `lb_core::stats_page`) served on loopback from a snapshot the test
//! changes: first over plain HTTP (auth with its realm, JSON, metrics, 404, 405), then in a real
//! headless browser, Debian's chromium: the page loads, shows every server, shows web2 DOWN
//! after the test takes it down, and reloads itself.

mod browser;
// Only `skip` is used here (by `browser`).
#[allow(dead_code)]
mod lab;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use examples::lbd::Stats;
use lb_core::stats_page::{
    CheckStatus, ListenerStatus, Mode, ServerState, ServerStatus, Snapshot, StatsServer,
};

use browser::{BROWSER_TIMEOUT, Browser, chromium_or_skip, drain, dump_dom, row_class, row_text};

/// One server of listener `web`, up or down.
fn server(name: &str, port: u16, state: ServerState) -> ServerStatus {
    let down = state == ServerState::Down;
    let mut server = ServerStatus::new(name, ([127, 0, 0, 1], port).into(), state);
    server.since = Duration::from_secs(if down { 3 } else { 133 });
    server.counters.current = 1;
    server.counters.total = 10;
    server.counters.requests = 20;
    server.connect_errors = u64::from(down);
    let mut check = CheckStatus::new(if down { "L4CON" } else { "L7OK/200 in 1ms" }, 2, 3);
    check.last_error = down.then(|| "connect: Connection refused (os error 111)".into());
    check.successes = if down { 0 } else { 2 };
    check.failures = if down { 3 } else { 0 };
    check.checks = 7;
    server.check = Some(check);
    server
}

/// lbd's state: listener `web` with web1 and web2 in these states.
fn snapshot(web2: ServerState) -> Snapshot {
    let mut web = ListenerStatus::new("web", Mode::Http, ([127, 0, 0, 1], 18080).into());
    web.balance = "roundrobin".into();
    web.servers = vec![
        server("web1", 18081, ServerState::Up),
        server("web2", 18082, web2),
    ];
    let mut snapshot = Snapshot::new(SystemTime::now(), Duration::from_secs(61));
    snapshot.listeners.push(web);
    snapshot
}

/// A stats page on a loopback port, served by a runtime on a thread of its own, from a
/// snapshot the test sets; its snapshot reads are counted.
struct Page {
    addr: SocketAddr,
    state: Arc<Mutex<Snapshot>>,
    reads: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Page {
    fn start(auth: Option<(&str, &str)>) -> Page {
        let stats = Stats {
            bind: "127.0.0.1:0".parse().expect("an address"),
            uri: "/stats".into(),
            auth: auth.map(|(u, p)| (u.into(), p.into())),
        };
        let state = Arc::new(Mutex::new(snapshot(ServerState::Up)));
        let reads = Arc::new(AtomicUsize::new(0));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (source_state, source_reads) = (state.clone(), reads.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let server = StatsServer::start(&stats.settings(), move || {
                    source_reads.fetch_add(1, Ordering::SeqCst);
                    source_state.lock().expect("the state lock").clone()
                })
                .await
                .expect("a free loopback port");
                addr_tx.send(server.local_addr()).expect("the test waits");
                let _ = stopped.await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the page starts");
        Page {
            addr,
            state,
            reads,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn set_web2(&self, state: ServerState) {
        *self.state.lock().expect("the state lock") = snapshot(state);
    }

    /// One request; the status line, the head and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> (String, String, String) {
        let mut stream = TcpStream::connect(self.addr).expect("the page accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n")
            .expect("the request is sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("a response");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.lines().next().expect("a status line").to_owned();
        (status, head.to_owned(), body.to_owned())
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The value of header `name` in a response head (names are case-insensitive).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

// admin:secret
const GOOD: &str = "Basic YWRtaW46c2VjcmV0";

#[test]
fn over_http_auth_guards_every_path_and_each_format_is_served() {
    let page = Page::start(Some(("admin", "secret")));
    for (path, auth) in [
        ("/stats", None),
        ("/stats", Some("Basic YWRtaW46c2VjcmV1")), // admin:secreu
        ("/stats", Some("Basic not base64!")),
        ("/stats", Some("Digest username=\"admin\"")),
        ("/metrics", None),
        ("/stats;json", None),
        ("/elsewhere", None),
    ] {
        let (status, head, body) = page.request("GET", path, auth);
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{path} {auth:?}");
        assert_eq!(
            header(&head, "WWW-Authenticate"),
            Some("Basic realm=\"lbd statistics\""),
            "{head}"
        );
        assert!(
            !body.contains("web2"),
            "nothing leaks without credentials: {body}"
        );
    }

    let (status, head, body) = page.request("GET", "/stats", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        body.contains("<tr id=\"web/web2\" class=\"server state-up\""),
        "{body}"
    );

    for path in ["/stats;json", "/stats?format=json"] {
        let (status, head, body) = page.request("GET", path, Some(GOOD));
        assert_eq!(status, "HTTP/1.1 200 OK", "{path}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["listeners"][0]["servers"][1]["name"], "web2");
        assert_eq!(json["listeners"][0]["servers"][1]["state"], "UP");
    }

    page.set_web2(ServerState::Down);
    let (status, head, body) = page.request("GET", "/metrics", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    for line in [
        "lbd_server_up{listener=\"web\",server=\"web1\"} 1",
        "lbd_server_up{listener=\"web\",server=\"web2\"} 0",
        "lbd_listener_servers_up{listener=\"web\"} 1",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line} in\n{body}");
    }

    let (status, head, body) = page.request("HEAD", "/metrics", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.is_empty() && !head.contains("Content-Length: 0\r\n"),
        "{head}"
    );
    let (status, _, _) = page.request("GET", "/nowhere", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, head, _) = page.request("POST", "/stats", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(head.contains("Allow: GET, HEAD"), "{head}");

    // A client that never finishes its head does not hold the page.
    let mut slow = TcpStream::connect(page.addr).unwrap();
    slow.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
    let (status, _, _) = page.request("GET", "/stats", Some(GOOD));
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn in_chromium_the_page_shows_every_server_and_web2_down_after_it_fails() {
    if !chromium_or_skip("in_chromium_the_page_shows_every_server_and_web2_down_after_it_fails") {
        return;
    }
    let page = Page::start(Some(("admin", "secret")));
    let url = format!("http://admin:secret@{}/stats", page.addr);

    let dom = dump_dom(&url);
    assert!(
        dom.contains("<title>lbd statistics</title>"),
        "the page did not load:\n{dom}"
    );
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    for (id, name) in [("web/web1", "web1"), ("web/web2", "web2")] {
        let text = row_text(&dom, id).unwrap_or_else(|| panic!("no row {id} in\n{dom}"));
        assert!(text.starts_with(&format!("{name} ")), "{text}");
        assert!(text.contains(" UP 2m13s "), "{id} is UP: {text}");
    }

    page.set_web2(ServerState::Down);
    let dom = dump_dom(&url);
    let web1 = row_text(&dom, "web/web1").expect("web1's row");
    let web2 = row_text(&dom, "web/web2").expect("web2's row");
    assert!(web1.contains(" UP "), "{web1}");
    assert!(web2.contains(" DOWN 3s "), "web2 is DOWN: {web2}");
    assert!(web2.contains("L4CON"), "{web2}");
    assert!(
        web2.contains("connect: Connection refused (os error 111)"),
        "{web2}"
    );
    assert_eq!(
        row_class(&dom, "web/web2").as_deref(),
        Some("server state-down")
    );
    assert_eq!(
        row_class(&dom, "web/web1").as_deref(),
        Some("server state-up")
    );

    // Without credentials the browser gets the 401 and no table.
    let dom = dump_dom(&format!("http://{}/stats", page.addr));
    assert!(!dom.contains("web/web2"), "{dom}");
}

#[test]
fn in_chromium_the_page_reloads_itself_with_meta_refresh() {
    if !chromium_or_skip("in_chromium_the_page_reloads_itself_with_meta_refresh") {
        return;
    }
    let page = Page::start(None);
    // Page time runs ahead of the wall clock (--virtual-time-budget), so one-second refreshes
    // come quickly; the browser is never told to reload, and is killed once it has.
    let mut browser = Browser::launch(
        &format!("http://{}/stats?refresh=1", page.addr),
        &["--virtual-time-budget=600000", "--dump-dom"],
    );
    let _out = drain(browser.child.stdout.take().expect("a piped stream"));
    let _err = drain(browser.child.stderr.take().expect("a piped stream"));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    while page.reads.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(browser);
    let reads = page.reads.load(Ordering::SeqCst);
    assert!(
        reads >= 3,
        "the page was read {reads} times in {BROWSER_TIMEOUT:?}: it did not reload itself"
    );
}
