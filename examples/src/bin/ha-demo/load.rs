//! The story's HTTP load: [`CLIENTS`] keep-alive clients, each sending `GET /` to the virtual
//! address [`RATE`] times a second on a fixed schedule (a slow answer delays the next request,
//! it does not stack them up), each answer or failure reported with the wall-clock time.
//!
//! As browsers and curl do (RFC 9112 §9.3.1), a request on a reused connection that closes
//! before any byte of an answer is sent once more on a new connection: an idle keep-alive
//! connection may close at any moment. Anything else that is not a 200 is a failed request.
//!
//! In namespaces it is this binary run again with `--load ADDRESS`, printing
//! `ok <seconds since the epoch> <backend>` and `fail <seconds> <why>` lines; on loopback it
//! runs in the demo's own runtime.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Clients sending at once.
pub(crate) const CLIENTS: usize = 4;
/// Requests per second, per client.
pub(crate) const RATE: u32 = 100;
/// How long a connection attempt may take before the request counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an answer may take before the request counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of one request, and when (seconds since the epoch).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) at: f64,
    /// The backend that answered, or why it failed.
    pub(crate) answer: Result<String, String>,
}

impl Outcome {
    /// Its line in the client's output.
    pub(crate) fn line(&self) -> String {
        match &self.answer {
            Ok(backend) => format!("ok {:.6} {backend}", self.at),
            Err(why) => format!("fail {:.6} {why}", self.at),
        }
    }

    /// The outcomes in a client's output (other lines are skipped).
    pub(crate) fn parse(output: &str) -> Vec<Outcome> {
        output
            .lines()
            .filter_map(|l| {
                let (kind, rest) = l.split_once(' ')?;
                let (at, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let at = at.parse().ok()?;
                let answer = match kind {
                    "ok" => Ok(text.to_owned()),
                    "fail" => Err(text.to_owned()),
                    _ => return None,
                };
                Some(Outcome { at, answer })
            })
            .collect()
    }
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

type Connection = SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Connection, String> {
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err(format!("connect: no answer in {CONNECT_TIMEOUT:?}")),
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// hyper's error with its cause (`connection error: Connection reset by peer`).
fn describe(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// One request on `connection` (a new one when there is none or it closed): the backend's
/// name, or why it failed.
async fn request(connection: &mut Option<Connection>, addr: SocketAddr) -> Result<String, String> {
    for _ in 0..2 {
        // Closed while idle (the server's keep-alive ended, `Connection: close`): not a
        // failure, a new connection.
        if let Some(c) = connection.as_mut()
            && c.ready().await.is_err()
        {
            *connection = None;
        }
        let reused = connection.is_some();
        let sender = match connection {
            Some(c) => c,
            None => connection.insert(connect(addr).await?),
        };
        let get = hyper::Request::get("/")
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let answer = timeout(ANSWER_TIMEOUT, async {
            let response = sender.send_request(get).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        match answer {
            Ok(Ok((status, body))) if status == hyper::StatusCode::OK => {
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            Ok(Ok((status, body))) => {
                *connection = None;
                return Err(format!(
                    "status {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            // Closed before an answer on a reused connection: once more, on a new one.
            Ok(Err(e)) if reused && (e.is_incomplete_message() || e.is_canceled()) => {
                *connection = None;
            }
            Ok(Err(e)) => {
                *connection = None;
                return Err(describe(&e));
            }
            Err(_) => {
                *connection = None;
                return Err(format!("no answer in {ANSWER_TIMEOUT:?}"));
            }
        }
    }
    Err("closed before an answer twice".into())
}

/// One client: requests on its schedule until the task is dropped, each outcome to `report`.
async fn client(addr: SocketAddr, report: impl Fn(Outcome)) {
    let interval = Duration::from_secs(1) / RATE;
    let mut connection = None;
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let answer = request(&mut connection, addr).await;
        report(Outcome { at: now(), answer });
        next = (next + interval).max(Instant::now());
    }
}

/// [`CLIENTS`] clients on the current runtime, until the returned tasks are aborted.
pub(crate) fn start(
    addr: SocketAddr,
    report: impl Fn(Outcome) + Clone + Send + 'static,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|_| tokio::spawn(client(addr, report.clone())))
        .collect()
}

/// `--load ADDRESS`: the clients, their outcomes on stdout, until killed.
pub(crate) async fn run(addr: SocketAddr) -> ExitCode {
    let clients = start(addr, |o: Outcome| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", o.line());
    });
    for c in clients {
        let _ = c.await;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back_as_written() {
        let all = vec![
            Outcome {
                at: 100.5,
                answer: Ok("s1".into()),
            },
            Outcome {
                at: 100.75,
                answer: Err("connect: Connection refused (os error 111)".into()),
            },
        ];
        let text: String = all.iter().map(|o| o.line() + "\n").collect();
        assert_eq!(Outcome::parse(&format!("noise\n{text}")), all);
    }
}
