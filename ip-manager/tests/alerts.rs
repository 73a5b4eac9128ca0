//! Alerts against real servers on loopback: aiosmtpd (Python's SMTP server, installed by
//! `.ci/run`) receives the mails into a Maildir that the test reads; a small HTTP server in the
//! test receives the webhook's POSTs. Then the same with the servers dead or failing: sending
//! never waits, losses are counted and reported.
#![cfg(all(feature = "alerts", feature = "vrrp"))]

#[path = "support/listeners.rs"]
mod listeners;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip_manager::alert::{Alert, AlertFailure, Alerts, Mail, MailSecurity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use vrrp_core::{Reason, State};

/// aiosmtpd on a free loopback port, writing what it receives to a Maildir; stopped on drop.
struct Smtp {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Smtp {
    /// With more aiosmtpd arguments (`--tlscert`, `--tlskey`).
    fn start_with(test: &str, extra: &[&std::ffi::OsStr]) -> Option<Smtp> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("alerts-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let smtp = Smtp { port, dir, child };
        listeners::wait_listening(port, Duration::from_secs(20)).then_some(smtp)
    }

    /// The mails received (their whole text), waiting up to 10 s for `count` of them.
    fn mails(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails = read_dir(&self.dir.join("new"));
            if mails.len() >= count || Instant::now() > deadline {
                return mails;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        listeners::kill_listeners(Command::new("ss"), &self.port.to_string());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn smtp_or_skip(test: &str) -> Option<Smtp> {
    smtp_or_skip_with(test, &[])
}

fn smtp_or_skip_with(test: &str, extra: &[&std::ffi::OsStr]) -> Option<Smtp> {
    let smtp = Smtp::start_with(test, extra);
    if smtp.is_none() {
        let why = "aiosmtpd did not start (pip install aiosmtpd)";
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI must run the alert tests, but {why}");
        }
        eprintln!("\n*** SKIPPED {test}: {why} (CI=1 turns this into a failure) ***\n");
    }
    smtp
}

fn takeover() -> Alert {
    Alert::transition("VI_1", State::Backup, State::Master, &Reason::MasterDown)
}

/// An HTTP server on loopback answering every request with `status`; the bodies it got.
async fn http_server(status: u16) -> (String, mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        let _ = tx.send(text).await;
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_arrives_by_mail_and_by_webhook_with_every_field() {
    let Some(smtp) = smtp_or_skip("mail-and-webhook") else {
        return;
    };
    let (url, mut posts) = http_server(200).await;
    let server = format!("127.0.0.1:{}", smtp.port);
    let alerts = Alerts::builder("vrrpd")
        .host("lb1")
        .mail(
            Mail::new(
                &server,
                "vrrpd@lb1.example",
                ["ops@example.com", "oncall@example.com"],
            )
            .expect("mail"),
        )
        .webhook(url.parse().expect("url"))
        .start();
    alerts.send(takeover());
    // Flushing waits for both deliveries.
    alerts.flush(Duration::from_secs(10)).await;
    assert_eq!(alerts.stats().sent, 2, "{:?}", alerts.stats());

    let post = tokio::time::timeout(Duration::from_secs(10), posts.recv())
        .await
        .expect("a POST within 10 s")
        .expect("a POST");
    assert!(post.starts_with("POST /hook HTTP/1.1"), "{post}");
    assert!(
        post.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{post}"
    );
    let body = &post[post.find("\r\n\r\n").expect("body") + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(json["source"], "vrrpd");
    assert_eq!(json["host"], "lb1");
    assert_eq!(json["subject"], "VI_1: BACKUP -> MASTER");
    assert_eq!(json["fields"]["reason"], "master down timer expired");
    assert_eq!(json["fields"]["from"], "BACKUP");
    assert!(
        json["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );

    let mails = tokio::task::spawn_blocking(move || {
        let mails = smtp.mails(1);
        drop(smtp);
        mails
    })
    .await
    .expect("mails");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    for part in [
        "Subject: [vrrpd@lb1] VI_1: BACKUP -> MASTER",
        "From: vrrpd@lb1.example",
        "ops@example.com",
        "oncall@example.com",
        "instance: VI_1",
        "to: MASTER",
        "reason: master down timer expired",
        "host: lb1",
    ] {
        assert!(mail.contains(part), "missing {part:?} in:\n{mail}");
    }
    assert_eq!(alerts.stats().sent, 2, "{:?}", alerts.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_smtp_server_or_a_failing_webhook_never_delays_the_sender_and_is_reported() {
    // The mail server accepts connections and never says a word (the worst case: each
    // delivery waits out its timeout); the webhook answers 500.
    let tarpit = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = tarpit.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = tarpit.accept().await {
            held.push(s);
        }
    });
    let (url, mut posts) = http_server(500).await;
    let (failures, mut failed) = mpsc::channel::<AlertFailure>(1024);
    let alerts = Alerts::builder("vrrpd")
        .mail(
            Mail::new(&dead, "vrrpd@lb1.example", ["ops@example.com"])
                .expect("mail")
                .timeout(Duration::from_millis(300)),
        )
        .webhook(url.parse().expect("url"))
        .attempts(3, Duration::from_millis(50))
        .failures(failures)
        .start();
    // A flood of transitions: each send returns at once; beyond the queues, alerts drop.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let one = Instant::now();
        alerts.send(takeover());
        slowest = slowest.max(one.elapsed());
    }
    let all = started.elapsed();
    eprintln!("200 sends: {all:?} in all, the slowest {slowest:?}");
    // Generous (a shared machine): a send that waited for SMTP would take 300 ms or more.
    assert!(
        slowest < Duration::from_millis(100),
        "a send waited {slowest:?}"
    );

    // The first alert was tried 3 times at each destination, then given up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut mail_gave_up, mut hook_gave_up, mut full) = (false, false, 0);
    while !(mail_gave_up && hook_gave_up) {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = tokio::time::timeout(left, failed.recv())
            .await
            .expect("both destinations give up within 20 s")
            .expect("a report");
        if f.error.contains("gave up after 3 attempts") {
            mail_gave_up |= f.destination.starts_with("mail via");
            hook_gave_up |= f.destination.starts_with("webhook") && f.error.contains("500");
        } else if f.error.contains("queue full") {
            full += 1;
        }
    }
    assert!(full > 0, "no alert reported as dropped");
    let stats = alerts.stats();
    assert!(stats.failed >= 2 && stats.retried >= 4, "{stats:?}");
    // 200 alerts for each of 2 destinations: at most 64 + 1 queued per destination.
    assert!(stats.dropped >= 2 * (200 - 65), "{stats:?}");
    assert_eq!(stats.sent, 0, "{stats:?}");
    assert!(posts.recv().await.is_some(), "the webhook was tried");
    // Dropping the alerts stops the retries at once.
    let dropped_at = Instant::now();
    drop(alerts);
    assert!(dropped_at.elapsed() < Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_used_and_the_servers_certificate_checked() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    // A CA of the test's own and a certificate for 127.0.0.1 signed by it.
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let dir = std::env::temp_dir().join(format!("alerts-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, leaf.pem()).expect("cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("key");
    // aiosmtpd offers STARTTLS and (by default) refuses mail before it.
    let Some(smtp) = smtp_or_skip_with(
        "starttls",
        &[
            "--tlscert".as_ref(),
            cert.as_os_str(),
            "--tlskey".as_ref(),
            key_file.as_os_str(),
        ],
    ) else {
        return;
    };
    let server = format!("127.0.0.1:{}", smtp.port);
    let mail = |security| {
        Mail::new(&server, "vrrpd@lb1.example", ["ops@example.com"])
            .expect("mail")
            .security(security)
            .timeout(Duration::from_secs(5))
    };
    let send = |mail: Mail| async move {
        let alerts = Alerts::builder("vrrpd")
            .mail(mail)
            .attempts(1, Duration::from_millis(10))
            .start();
        alerts.send(takeover());
        alerts.flush(Duration::from_secs(10)).await;
        alerts.stats()
    };
    // Trusting the test's CA: delivered over STARTTLS.
    let trusted = mail(MailSecurity::StartTls)
        .root_certificate(ca_pem.as_bytes())
        .expect("PEM");
    assert_eq!(send(trusted).await.sent, 1);
    // The web's roots only: the certificate is refused, nothing sent.
    assert_eq!(send(mail(MailSecurity::StartTls)).await.failed, 1);
    // Plain SMTP to a server that requires STARTTLS: refused.
    assert_eq!(send(mail(MailSecurity::None)).await.failed, 1);
    let mails = tokio::task::spawn_blocking(move || smtp.mails(1))
        .await
        .expect("mails");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("VI_1: BACKUP -> MASTER"), "{}", mails[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
