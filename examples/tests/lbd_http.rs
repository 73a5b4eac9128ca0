//! The `lbd` binary in `mode = "http"`, run on the shipped configurations (moved to free
//! loopback ports) in front of real HTTP/1.1 backends: every `balance` value's distribution over
//! real requests, server-side connection reuse, X-Forwarded-For, cookie stickiness and its
//! fallback, a server answering garbage (502), a server stopped under load (no client error with redispatch), a hanging server
//! (504, then marked down), malformed requests (400, the proxy keeps serving), slow request
//! heads (closed at `timeouts.http_request`).

mod lbdlab;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lbdlab::{Backend, Client, Lbd, Ports, get, lab, stop_s2_under_load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

async fn connect(ports: &Ports) -> (TcpStream, Client) {
    let stream = TcpStream::connect(ports.listen)
        .await
        .expect("connects to lbd");
    (stream, Client::default())
}

fn tally(answers: &[String]) -> HashMap<String, usize> {
    let mut t = HashMap::new();
    for a in answers {
        *t.entry(a.clone()).or_default() += 1;
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_rr_turns_request_by_request_on_one_client_connection_and_reuses_server_connections() {
    let (ports, servers, config) = lab("http_rr").await;
    let _lbd = Lbd::start(&config);
    let (mut stream, mut client) = connect(&ports).await;
    let mut answers = Vec::new();
    for _ in 0..300 {
        answers.push(client.get(&mut stream, "/", &[]).await.expect("an answer"));
    }
    let t = tally(&answers);
    for s in &servers {
        assert_eq!(t.get(&s.name), Some(&100), "{t:?}");
        // One client connection, one request at a time: one pooled connection per server.
        assert_eq!(s.connections(), 1, "{} opened {}", s.name, s.connections());
    }
    // X-Forwarded-For names the client.
    let head = servers[0].heads().pop().expect("s1 got requests");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-forwarded-for: 127.0.0.1"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_leastconn_sends_each_concurrent_slow_request_to_an_idle_server() {
    let (ports, servers, config) = lab("http_leastconn").await;
    let _lbd = Lbd::start(&config);
    let mut slow = Vec::new();
    for _ in 0..3 {
        let addr = ports.listen;
        slow.push(tokio::spawn(
            async move { lbdlab::get(addr, "/slow").await },
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answers: Vec<String> = futures_join(slow).await;
    let t = tally(&answers);
    assert_eq!(t.len(), 3, "one slow request per server: {t:?}");
    for s in &servers {
        assert_eq!(s.requests(), 1, "{}", s.name);
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<std::io::Result<String>>>) -> Vec<String> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a task").expect("an answer"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_uri_keeps_each_path_on_one_server_and_follows_the_weights() {
    let (ports, _servers, config) = lab("http_uri").await;
    let _lbd = Lbd::start(&config);
    let (mut stream, mut client) = connect(&ports).await;
    let mut share: HashMap<String, usize> = HashMap::new();
    for n in 0..200 {
        let path = format!("/item/{n}?q={}", n % 7);
        let first = client
            .get(&mut stream, &path, &[])
            .await
            .expect("an answer");
        // The query is not part of the key (balance uri hashes the path).
        let again = client
            .get(&mut stream, &format!("/item/{n}?other"), &[])
            .await
            .expect("an answer");
        assert_eq!(first, again, "{path}");
        *share.entry(first).or_default() += 1;
    }
    // Weights 1, 1, 2: s3 holds about half of the paths.
    let s3 = share.get("s3").copied().unwrap_or(0);
    assert!((70..=130).contains(&s3), "{share:?}");
    assert!(share.get("s1").copied().unwrap_or(0) > 25, "{share:?}");
    assert!(share.get("s2").copied().unwrap_or(0) > 25, "{share:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_cookie_inserts_honours_strips_and_falls_back_when_the_pinned_server_is_down() {
    let (ports, servers, shipped) = lab("http_cookie").await;
    // The shipped file, with a fast check so that the fallback is quick to see.
    let config = shipped.replace(
        "cookie = \"SERVERID\"",
        "cookie = \"SERVERID\"\ncheck = { http = \"/health\", interval = \"100ms\", rise = 1, fall = 1 }",
    );
    let lbd = Lbd::start(&config);
    let (mut stream, mut client) = connect(&ports).await;
    // No cookie: balanced, and the answer pins the client.
    let (status, headers, body) = client
        .request(&mut stream, "/", &[])
        .await
        .expect("an answer");
    assert_eq!(status, 200);
    let set = headers.get("set-cookie").expect("a Set-Cookie on insert");
    assert!(set.starts_with(&format!("SERVERID={body}")), "{set}");
    assert!(
        headers
            .get("cache-control")
            .is_some_and(|c| c.contains("private") || c.contains("no-cache")),
        "nocache: {headers:?}"
    );
    // With the cookie: always s2, no new Set-Cookie, and s2 never sees the cookie.
    for _ in 0..10 {
        let (_, headers, body) = client
            .request(&mut stream, "/", &[("Cookie", "SERVERID=s2; theme=dark")])
            .await
            .expect("an answer");
        assert_eq!(body, "s2");
        assert!(!headers.contains_key("set-cookie"), "{headers:?}");
    }
    let head = servers[1].heads().pop().expect("s2 got requests");
    assert!(
        !head.contains("SERVERID"),
        "indirect: the cookie is stripped: {head}"
    );
    assert!(head.contains("theme=dark"), "other cookies stay: {head}");
    // s2 goes down: the pinned client is balanced elsewhere and re-pinned.
    servers[1].set_healthy(false);
    lbd.logged("server s2", WAIT).await;
    for _ in 0..6 {
        let (status, headers, body) = client
            .request(&mut stream, "/", &[("Cookie", "SERVERID=s2")])
            .await
            .expect("an answer");
        assert_eq!(status, 200);
        assert_ne!(body, "s2");
        let set = headers.get("set-cookie").expect("re-pinned");
        assert!(set.starts_with(&format!("SERVERID={body}")), "{set}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hc_http_hides_a_server_stopped_under_load() {
    let (ports, servers, shipped) = lab("hc_http").await;
    // The shipped file with the lab's fast variant (inter 200 fall 2).
    let config = shipped.replace(
        "interval = \"2s\", rise = 2, fall = 3",
        "interval = \"200ms\", rise = 2, fall = 2",
    );
    let lbd = Lbd::start(&config);
    let failures = (stop_s2_under_load(&lbd, &ports, &servers, "hc_http", WAIT).await).failures;
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_gets_504_at_the_server_timeout_and_is_marked_down() {
    let (ports, servers, shipped) = lab("hc_http").await;
    let config = shipped
        .replace("server = \"30s\"", "server = \"1s\"")
        .replace(
            "interval = \"2s\", rise = 2, fall = 3",
            "interval = \"300ms\", timeout = \"200ms\", rise = 2, fall = 2",
        );
    let lbd = Lbd::start(&config);
    tokio::time::sleep(Duration::from_millis(700)).await;
    servers[0].set_hanging(true);
    let mut statuses = Vec::new();
    let started = Instant::now();
    let (mut stream, mut client) = connect(&ports).await;
    // Round robin: one of the first three requests lands on s1 (unless s1 is already down).
    for _ in 0..3 {
        let (status, _, _) = client
            .request(&mut stream, "/", &[])
            .await
            .expect("an answer");
        statuses.push(status);
        if status != 200 {
            break;
        }
    }
    let took = started.elapsed();
    lbd.marked(("hc_http", "s1", ports.servers[0]), "down", WAIT)
        .await;
    if statuses.contains(&504) {
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
    // Down: every request now goes to s2 and s3.
    let mut answers = Vec::new();
    for _ in 0..6 {
        let mut fresh = TcpStream::connect(ports.listen).await.expect("connects");
        answers.push(
            Client::default()
                .get(&mut fresh, "/", &[])
                .await
                .expect("an answer from a live server"),
        );
    }
    assert!(!answers.contains(&"s1".to_owned()), "{answers:?}");
    // A hanging request (whichever the statuses said) ends as a 504, never a hang.
    servers[1].set_hanging(true);
    servers[2].set_hanging(true);
    let (status, _, body) = Client::default()
        .request(
            &mut TcpStream::connect(ports.listen).await.expect("connects"),
            "/",
            &[],
        )
        .await
        .expect("an answer");
    assert_eq!(status, 504, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_400_and_the_proxy_keeps_serving() {
    let (ports, _servers, config) = lab("http_rr").await;
    let lbd = Lbd::start(&config);
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut stream = TcpStream::connect(ports.listen).await.expect("connects");
        stream.write_all(garbage).await.expect("writes");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{garbage:?} -> {answer}"
        );
    }
    assert_eq!(
        get(ports.listen, "/").await.expect("still serving").len(),
        2
    );
    drop(lbd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_at_the_http_request_timeout() {
    let (ports, _servers, shipped) = lab("http_rr").await;
    let config = shipped.replace("http_request = \"10s\"", "http_request = \"1s\"");
    let _lbd = Lbd::start(&config);
    let mut stream = TcpStream::connect(ports.listen).await.expect("connects");
    let started = Instant::now();
    // A byte every 200 ms: the head never completes.
    let slowloris = async {
        for b in
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if stream.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), slowloris).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    let closed = started.elapsed();
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}: {}",
        String::from_utf8_lossy(&rest)
    );
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_garbage_gives_502_and_the_proxy_keeps_serving() {
    let ports = Ports::new();
    // s1 answers every request with bytes that are not HTTP; s2 and s3 are fine.
    let garbage = tokio::net::TcpListener::bind(ports.servers[0])
        .await
        .expect("binds");
    let liar = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = garbage.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"SMTP ready\r\n\r\n\x00\xff").await;
            });
        }
    });
    let _s2 = Backend::start("s2", ports.servers[1]).await;
    let _s3 = Backend::start("s3", ports.servers[2]).await;
    let lbd = Lbd::start(&ports.config("http_rr"));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let mut stream = TcpStream::connect(ports.listen).await.expect("connects");
        let (status, _, _) = Client::default()
            .request(&mut stream, "/", &[("Connection", "close")])
            .await
            .expect("an answer, never a dropped connection");
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 502).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        4,
        "{statuses:?}"
    );
    liar.abort();
    // Still serving: the next requests that land on s2 and s3 are answered.
    let mut answered = 0;
    for _ in 0..3 {
        answered += usize::from(get(ports.listen, "/").await.is_ok());
    }
    assert!(answered >= 2, "{answered} of 3");
    drop(lbd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// A server removed by SIGHUP: applied in place (`tuned`), the kept-alive client connection
/// goes on serving and no new request reaches the removed server.
async fn sighup_reload_keeps_a_keep_alive_connection_serving() {
    let (ports, _servers, config) = lab("http_rr").await;
    let lbd = Lbd::start(&config);
    let (mut stream, mut client) = connect(&ports).await;
    client.get(&mut stream, "/", &[]).await.expect("an answer");
    lbd.reloaded(&ports.without(&config, 2), "tuned=[\"http_rr\"]");
    for _ in 0..6 {
        client
            .get(&mut stream, "/", &[])
            .await
            .expect("the open connection still serves");
    }
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(
            get(ports.listen, "/")
                .await
                .expect("new clients are served"),
        );
    }
    assert!(!answers.contains(&"s3".to_owned()), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_added_by_sighup_takes_its_turn_on_an_open_keep_alive_connection() {
    let (ports, servers, config) = lab("http_rr").await;
    let lbd = Lbd::start(&ports.without(&config, 2));
    let (mut stream, mut client) = connect(&ports).await;
    for _ in 0..4 {
        let answer = client.get(&mut stream, "/", &[]).await.expect("an answer");
        assert_ne!(answer, "s3");
    }
    lbd.reloaded(&config, "tuned=[\"http_rr\"]");
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(
            client
                .get(&mut stream, "/", &[])
                .await
                .expect("the open connection still serves"),
        );
    }
    for _ in 0..6 {
        answers.push(
            get(ports.listen, "/")
                .await
                .expect("new clients are served"),
        );
    }
    let t = tally(&answers);
    assert_eq!(t.get("s3"), Some(&4), "round robin over three: {t:?}");
    assert_eq!(servers[2].requests(), 4);
    // s1 and s2 stayed: their pooled connections were reused across the reload.
    assert_eq!(
        servers[0].connections(),
        1,
        "s1 opened {}",
        servers[0].connections()
    );
}

/// `http_rr` with `balance` replaced: the answers of `n` requests on one keep-alive
/// connection, each with `headers`.
async fn answers_with_balance(
    balance: &str,
    n: usize,
    headers: &[(&str, &str)],
) -> HashMap<String, usize> {
    let (ports, _servers, shipped) = lab("http_rr").await;
    let config = shipped.replace(
        "balance = \"roundrobin\"",
        &format!("balance = \"{balance}\""),
    );
    let _lbd = Lbd::start(&config);
    let (mut stream, mut client) = connect(&ports).await;
    let mut answers = Vec::new();
    for _ in 0..n {
        answers.push(
            client
                .get(&mut stream, "/", headers)
                .await
                .expect("an answer"),
        );
    }
    tally(&answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_balance_value_of_the_design_runs_through_lbd() {
    // static-rr: strict turns on the configured weights.
    let t = answers_with_balance("static-rr", 30, &[]).await;
    assert_eq!(
        (t.get("s1"), t.get("s2"), t.get("s3")),
        (Some(&10), Some(&10), Some(&10)),
        "static-rr: {t:?}"
    );
    // random and p2c: every server gets a share of 300 requests, none all of them.
    for balance in ["random", "p2c"] {
        let t = answers_with_balance(balance, 300, &[]).await;
        assert_eq!(t.len(), 3, "{balance}: {t:?}");
        assert!(
            t.values().all(|&n| (30..=200).contains(&n)),
            "{balance}: {t:?}"
        );
    }
    // first: one request at a time always finds s1 free.
    let t = answers_with_balance("first", 20, &[]).await;
    assert_eq!(t.get("s1"), Some(&20), "first: {t:?}");
    // hdr(NAME): one header value, one server; the values spread over the servers.
    let mut by_user: HashMap<String, String> = HashMap::new();
    for user in [
        "ann", "bob", "cyd", "dan", "eve", "fay", "gus", "hal", "ivy", "joe",
    ] {
        let t = answers_with_balance("hdr(x-user)", 5, &[("X-User", user)]).await;
        assert_eq!(t.len(), 1, "hdr: {user} went to {t:?}");
        by_user.insert(user.into(), t.into_keys().next().expect("one server"));
    }
    let used: std::collections::HashSet<&String> = by_user.values().collect();
    assert!(used.len() >= 2, "ten users all on one server: {by_user:?}");
}
