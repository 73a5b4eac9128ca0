//! What the lbd integration tests share: the real `lbd` binary run on a configuration
//! (shipped under `examples/configs/`, its addresses moved to free loopback ports), its log
//! lines, and small real HTTP/1.1 backends on loopback (plain or behind TLS).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A loopback address with a port free a moment ago.
pub(crate) fn free_addr() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("a bound address")
}

/// A shipped configuration (`examples/configs/NAME.toml`) with each `from` address replaced
/// by its `to`.
pub(crate) fn shipped(name: &str, moves: &[(&str, SocketAddr)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(format!("{name}.toml"));
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (from, to) in moves {
        assert!(text.contains(from), "{name}.toml has no {from}");
        text = text.replace(from, &to.to_string());
    }
    text
}

/// The lab's addresses (listener 18080, servers 18081..=18083, stats 18404) moved to free
/// ports: the map and the addresses, in that order.
pub(crate) struct Ports {
    /// The listener's.
    pub(crate) listen: SocketAddr,
    /// s1, s2, s3.
    pub(crate) servers: [SocketAddr; 3],
    /// The stats page's.
    pub(crate) stats: SocketAddr,
}

impl Ports {
    /// Fresh ports.
    pub(crate) fn new() -> Self {
        Ports {
            listen: free_addr(),
            servers: [free_addr(), free_addr(), free_addr()],
            stats: free_addr(),
        }
    }

    /// The replacements for [`shipped`] (only those the file has).
    pub(crate) fn moves_in(&self, name: &str) -> Vec<(&'static str, SocketAddr)> {
        let all = [
            ("127.0.0.1:18080", self.listen),
            ("127.0.0.1:18081", self.servers[0]),
            ("127.0.0.1:18082", self.servers[1]),
            ("127.0.0.1:18083", self.servers[2]),
            ("127.0.0.1:18404", self.stats),
        ];
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(format!("{name}.toml"));
        let text = std::fs::read_to_string(path).expect("the shipped config");
        all.into_iter().filter(|(a, _)| text.contains(a)).collect()
    }

    /// `examples/configs/NAME.toml` on these ports.
    pub(crate) fn config(&self, name: &str) -> String {
        shipped(name, &self.moves_in(name))
    }

    /// Server `i` (0: s1, 1: s2, 2: s3) as the shipped files' `servers` lists write it.
    fn server(&self, i: usize) -> String {
        format!(
            "{{ name = \"s{}\", addr = \"{}\" }}",
            i + 1,
            self.servers[i]
        )
    }

    /// `config` (a shipped file) without server `i`'s line (0: s1, 1: s2, 2: s3).
    pub(crate) fn without(&self, config: &str, i: usize) -> String {
        let changed = config.replace(&format!("  {},\n", self.server(i)), "");
        assert_ne!(changed, config, "server {i} is in the file");
        changed
    }

    /// `config` (a shipped file) with server `i` (0: s1, 1: s2, 2: s3) at `weight`.
    pub(crate) fn weighted(&self, config: &str, i: usize, weight: u32) -> String {
        let server = self.server(i);
        let weighted = format!("{}, weight = {weight} }}", &server[..server.len() - 2]);
        let changed = config.replace(&server, &weighted);
        assert_ne!(changed, config, "server {i} is in the file");
        changed
    }
}

/// A running `lbd`, killed on drop.
pub(crate) struct Lbd {
    child: Child,
    /// The configuration file it runs (rewrite it, then [`Lbd::reload`]).
    pub(crate) config: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Lbd {
    /// Writes `config` to a file and starts `lbd --config FILE` on it; returns once every
    /// listener logged that it accepts.
    pub(crate) fn start(config: &str) -> Lbd {
        Lbd::start_with(config, &[])
    }

    /// As [`Lbd::start`], with more arguments.
    pub(crate) fn start_with(config: &str, args: &[&str]) -> Lbd {
        let dir = TempDir::new("lbd");
        let path = dir.0.join("lbd.toml");
        std::fs::write(&path, config).expect("the config file is written");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lbd starts");
        let stderr = child.stderr.take().expect("lbd's stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                sink.lock().expect("the log lock").push(line);
            }
        });
        let lbd = Lbd {
            child,
            config: path,
            lines,
            _dir: dir,
        };
        lbd.wait_for_log("lbd started with", Duration::from_secs(10));
        lbd
    }

    /// Every line it logged so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.lines.lock().expect("the log lock").clone()
    }

    /// The first logged line containing `text`, waiting up to `within`.
    pub(crate) fn wait_for_log(&self, text: &str, within: Duration) -> String {
        self.wait_for_log_after(0, text, within)
    }

    /// The first line containing `text` among the lines after the first `skip`.
    pub(crate) fn wait_for_log_after(&self, skip: usize, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().into_iter().skip(skip).find(|l| l.contains(text)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "lbd logged no {text:?} within {within:?}; its log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// [`Lbd::wait_for_log`] for async tests: sleeps on the runtime, not the thread.
    pub(crate) async fn logged(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(text)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "lbd logged no {text:?} within {within:?}; its log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `signal` (e.g. `SIGHUP`) to it.
    /// Waits up to `within` for lbd to log server `server` (at `addr`) of listener `listener`
    /// marked `state` (`up`, `down`); the line.
    pub(crate) async fn marked(
        &self,
        (listener, server, addr): (&str, &str, SocketAddr),
        state: &str,
        within: Duration,
    ) -> String {
        let line = format!("backend {listener} server {server} {addr} marked {state}");
        self.logged(&line, within).await
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// Rewrites its file with `config` and sends SIGHUP; returns the log line of the reload.
    pub(crate) fn reload(&self, config: &str) -> String {
        let before = self.log().len();
        std::fs::write(&self.config, config).expect("the config file is rewritten");
        self.signal("HUP");
        self.wait_for_log_after(before, "reload", Duration::from_secs(5))
    }

    /// [`reload`](Self::reload)s `config` and asserts that the reload line says `how` (e.g.
    /// `tuned=["http_rr"]`); the line.
    pub(crate) fn reloaded(&self, config: &str, how: &str) -> String {
        let line = self.reload(config);
        assert!(line.contains(how), "{line}");
        line
    }

    /// Waits up to `within` for it to exit.
    pub(crate) fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "lbd still runs after {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system's temp dir.
    pub(crate) fn new(prefix: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real HTTP/1.1 server on loopback (keep-alive, `Content-Length` bodies): `GET /health`
/// answers `ok` (503 while [`Backend::set_healthy`] says no), `GET /slow` answers after
/// 500 ms, anything else answers the backend's name with header `X-Backend: NAME`. It
/// counts the requests and the connections it served, and records the request heads. It can
/// be made to hang (read requests, never answer).
pub(crate) struct Backend {
    /// Its name (the body of its answers).
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Backend {
    /// Starts `name` on `addr` (which must be free).
    pub(crate) async fn start(name: &str, addr: SocketAddr) -> Backend {
        Backend::start_with(name, addr, None).await
    }

    /// As [`Backend::start`], behind TLS with `config` (HAProxy's `server ... ssl`).
    pub(crate) async fn start_tls(
        name: &str,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> Backend {
        Backend::start_with(name, addr, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(
        name: &str,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Backend {
        let listener = TcpListener::bind(addr).await.expect("the backend binds");
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let hanging = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let state = Served {
            name: name.to_owned(),
            requests: requests.clone(),
            healthy: healthy.clone(),
            hanging: hanging.clone(),
            heads: heads.clone(),
        };
        let conns = connections.clone();
        let task = tokio::spawn(async move {
            let state = Arc::new(state);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                match &tls {
                    None => drop(tokio::spawn(serve(stream, state.clone()))),
                    Some(acceptor) => {
                        let (acceptor, state) = (acceptor.clone(), state.clone());
                        tokio::spawn(async move {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, state).await;
                            }
                        });
                    }
                }
            }
        });
        Backend {
            name: name.to_owned(),
            addr,
            requests,
            connections,
            healthy,
            hanging,
            heads,
            task,
        }
    }

    /// Requests answered (health checks excluded).
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted (health checks included).
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Whether `/health` says 200 (else 503).
    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Whether it reads requests (health checks included) and never answers them.
    pub(crate) fn set_hanging(&self, hanging: bool) {
        self.hanging.store(hanging, Ordering::Relaxed);
    }

    /// The heads of the requests it answered (health checks excluded).
    pub(crate) fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("the heads lock").clone()
    }

    /// Stops listening (connections it has go on until their tasks end with the runtime).
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Served {
    name: String,
    requests: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Arc<Served>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // One request head (these tests send no request bodies to this server).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let close = head.to_ascii_lowercase().contains("connection: close");
        if state.hanging.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        let (status, body) = if path == "/health" {
            if state.healthy.load(Ordering::Relaxed) {
                ("200 OK", "ok\n".to_owned())
            } else {
                ("503 Service Unavailable", "sick\n".to_owned())
            }
        } else {
            state.requests.fetch_add(1, Ordering::Relaxed);
            state.heads.lock().expect("the heads lock").push(head);
            if path == "/slow" {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            ("200 OK", state.name.clone())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Backend: {}\r\n{}\r\n{body}",
            body.len(),
            state.name,
            if close { "Connection: close\r\n" } else { "" },
        );
        if stream.write_all(response.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// One `GET path` on a new connection to `addr`, `Connection: close`; the body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut client = Client::default();
    client
        .get(&mut stream, path, &[("Connection", "close")])
        .await
}

/// An HTTP/1.1 client on one connection (keep-alive), reading `Content-Length` bodies.
#[derive(Default)]
pub(crate) struct Client {
    buf: Vec<u8>,
}

impl Client {
    /// Sends `GET path` with `headers` on `stream` and reads the answer: its body, or an
    /// error when the status is not 200.
    pub(crate) async fn get<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<String> {
        let (status, _, body) = self.request(stream, path, headers).await?;
        if status != 200 {
            return Err(std::io::Error::other(format!("status {status}: {body}")));
        }
        Ok(body)
    }

    /// Reads what `stream` has next into the buffer; its end is an error saying `closed`.
    async fn read_more<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        closed: &str,
    ) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                closed,
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends `GET path` and reads the answer: status, headers (names lowercase), body.
    pub(crate) async fn request<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, HashMap<String, String>, String)> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more(stream, "closed before an answer").await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {head:?}")))?;
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < length {
            self.read_more(stream, "closed in the body").await?;
        }
        let body = String::from_utf8_lossy(&self.buf[..length]).into_owned();
        self.buf.drain(..length);
        Ok((status, headers, body))
    }
}

/// A backend on each of `ports.servers`, named `s1`, `s2`, ...
pub(crate) async fn backends(ports: &Ports) -> Vec<Backend> {
    let mut all = Vec::new();
    for (i, addr) in ports.servers.iter().enumerate() {
        all.push(Backend::start(&format!("s{}", i + 1), *addr).await);
    }
    all
}

/// Fresh ports, a backend on each server port (s1, s2, s3), and the shipped configuration
/// `name` on those ports.
pub(crate) async fn lab(name: &str) -> (Ports, Vec<Backend>, String) {
    let ports = Ports::new();
    let servers = backends(&ports).await;
    let config = ports.config(name);
    (ports, servers, config)
}

/// What [`stop_s2_under_load`] saw.
pub(crate) struct StoppedUnderLoad {
    /// The load's answers by body.
    pub(crate) answers: HashMap<String, usize>,
    /// The load's failures with their error.
    pub(crate) failures: Vec<String>,
    /// lbd's log line saying s2 is down.
    pub(crate) down: String,
}

/// Once every server passed its first checks (600 ms), 20 clients load `ports.listen` for
/// 3 s; a second in, the second server (s2) of `listener` stops, and lbd must log it down
/// within `within`. Asserts what every mode must do: s2 marked down within 800 ms (checks at
/// 200 ms, fall 2), and more than 300 answers.
pub(crate) async fn stop_s2_under_load(
    lbd: &Lbd,
    ports: &Ports,
    servers: &[Backend],
    listener: &str,
    within: Duration,
) -> StoppedUnderLoad {
    tokio::time::sleep(Duration::from_millis(600)).await;
    let run = tokio::spawn(load(ports.listen, 20, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = std::time::Instant::now();
    servers[1].stop();
    let s2 = (listener, "s2", ports.servers[1]);
    let down = lbd.marked(s2, "down", within).await;
    let detected = stopped.elapsed();
    let (answers, failures) = run.await.expect("the load");
    assert!(answers.values().sum::<usize>() > 300, "{answers:?}");
    assert!(
        detected < Duration::from_millis(800),
        "{detected:?}: {down}"
    );
    StoppedUnderLoad {
        answers,
        failures,
        down,
    }
}

/// Runs clients that each make one request per new connection, for `duration`; returns
/// (answers by body, failures with their error).
pub(crate) async fn load(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
) -> (HashMap<String, usize>, Vec<String>) {
    let deadline = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut answers: HashMap<String, usize> = HashMap::new();
            let mut failures = Vec::new();
            while tokio::time::Instant::now() < deadline {
                match get(addr, "/").await {
                    Ok(body) => *answers.entry(body).or_default() += 1,
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (answers, failures)
        }));
    }
    let mut answers: HashMap<String, usize> = HashMap::new();
    let mut failures = Vec::new();
    for t in tasks {
        let (a, f) = t.await.expect("a load client");
        for (k, v) in a {
            *answers.entry(k).or_default() += v;
        }
        failures.extend(f);
    }
    (answers, failures)
}
