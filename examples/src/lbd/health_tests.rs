//! [`HealthCheck::checker`] against real servers on loopback: plain HTTP, HTTPS with each
//! `verify`, TCP.

use std::sync::atomic::Ordering;

use health_check::{CheckError, Health, Monitor};

use super::*;
use crate::lbd::config::Verify;
use crate::lbd::tls::testing::{Ca, Files, HttpsServer, Leaf};

fn http(path: &str) -> HealthCheck {
    HealthCheck {
        probe: Probe::Http { path: path.into() },
        monitor: MonitorConfig::default(),
    }
}

fn server(
    addr: std::net::SocketAddr,
    tls: Option<Verify>,
    ca: Option<std::path::PathBuf>,
) -> Server {
    Server {
        name: "s1".into(),
        addr,
        weight: 1,
        maxconn: None,
        tls,
        ca,
    }
}

/// An HTTPS server with `leaf`'s certificate.
async fn https(dir: &Files, leaf: &Leaf) -> HttpsServer {
    let (cert, key) = dir.leaf("server", leaf);
    let config = tls::server_config([(cert.as_path(), key.as_path())], Alpn::Http1)
        .expect("a server config");
    HttpsServer::start(config).await
}

#[tokio::test]
async fn an_https_check_with_verify_none_sees_the_server_up_and_down() {
    let dir = Files::new();
    let s = https(&dir, &Leaf::self_signed(&["backend.test"])).await;
    let check = http("/health")
        .checker(&server(s.addr, Some(Verify::None), None))
        .expect("a checker");
    assert_eq!(
        check.describe(),
        format!("http GET https://{}/health", s.addr)
    );
    check.check().await.expect("200 over TLS is up");
    s.status.store(503, Ordering::SeqCst);
    let err = check.check().await.expect_err("503 is down");
    assert!(
        matches!(err, CheckError::HttpStatus { status: 503, .. }),
        "{err}"
    );
    // A plain-HTTP check of a TLS server fails: the `tls` of the server is what makes it TLS.
    s.status.store(200, Ordering::SeqCst);
    let plain = http("/health")
        .checker(&server(s.addr, None, None))
        .expect("a checker");
    plain.check().await.expect_err("HTTP to a TLS port");
}

#[tokio::test]
async fn an_https_check_verifies_as_the_server_says() {
    let dir = Files::new();
    let ca = Ca::new();
    let s = https(&dir, &ca.leaf(&["backend.test"])).await;
    // The system's CAs did not sign it: down, with the reason.
    let check = http("/")
        .checker(&server(s.addr, Some(Verify::Required), None))
        .expect("a checker");
    let err = check.check().await.expect_err("an unknown CA");
    assert!(matches!(err, CheckError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // With its CA it is up (addressed by IP: the chain is checked, as HAProxy's).
    let ca_file = dir.write("ca.pem", &ca.pem);
    let check = http("/")
        .checker(&server(s.addr, Some(Verify::Required), Some(ca_file)))
        .expect("a checker");
    check.check().await.expect("a trusted chain");
    // A missing CA file is an error at start, naming it.
    let err = http("/")
        .checker(&server(
            s.addr,
            Some(Verify::Required),
            Some("/nonexistent/ca.pem".into()),
        ))
        .err()
        .expect("no CA file");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/ca.pem: cannot read it"),
        "{err}"
    );
}

#[tokio::test]
async fn a_monitor_with_the_checker_marks_a_tls_server_down_and_up() {
    let dir = Files::new();
    let s = https(&dir, &Leaf::self_signed(&["backend.test"])).await;
    let mut hc = http("/health");
    hc.monitor.interval = std::time::Duration::from_millis(20);
    hc.monitor.timeout = std::time::Duration::from_millis(500);
    hc.monitor.fall = 2;
    hc.monitor.rise = 1;
    let srv = server(s.addr, Some(Verify::None), None);
    let monitor = Monitor::spawn(hc.checker(&srv).expect("a checker"), hc.monitor.clone())
        .expect("a monitor");
    let status = monitor.subscribe();
    s.status.store(500, Ordering::SeqCst);
    let wait = |want: Health| {
        let mut status = status.clone();
        async move {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                status.wait_for(|s| s.health == want),
            )
            .await
            .expect("in time")
            .expect("monitor alive")
            .clone()
        }
    };
    let down = wait(Health::Down).await;
    assert!(
        down.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 500")),
        "{down:?}"
    );
    s.status.store(200, Ordering::SeqCst);
    wait(Health::Up).await;

    let tcp = HealthCheck {
        probe: Probe::Tcp,
        monitor: MonitorConfig::default(),
    };
    let check = tcp.checker(&srv).expect("a checker");
    assert_eq!(check.describe(), format!("tcp {}", s.addr));
    check.check().await.expect("the port is open");
}
