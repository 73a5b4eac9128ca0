//! A complete tiny HTTP service that holds a virtual IP while its own `/healthz` answers: the
//! failover of `ip-manager`'s `failover` module, embedded as a service of one's own would.
//!
//! `embedded_failover INTERFACE VIP/PREFIX PRIORITY` serves `GET /` on port 8080 (`ok from
//! priority N`), `/healthz` (200, or 503 after `GET /fail` until `GET /recover`), and checks
//! its own `/healthz` every 100 ms: two failures put its VRRP router (VRID 51, adverts every
//! 100 ms) in Fault, which releases the VIP to the peer. SIGTERM hands over (priority 0), and
//! so does a SIGKILL: its crash guard (file `$GUARD_FILE`, default
//! `/run/embedded_failover.guard`) sends priority 0 and removes the VIP when the process dies.
//! Run two copies on two hosts of one LAN with different priorities.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use health_check::{HttpCheck, Monitor, MonitorConfig};
use ip_manager::failover::Failover;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, interface, vip, priority] = args.as_slice() else {
        return Err("usage: embedded_failover INTERFACE VIP/PREFIX PRIORITY".into());
    };
    let healthy = Arc::new(AtomicBool::new(true));
    let listener = TcpListener::bind("0.0.0.0:8080").await?;
    let body = format!("ok from priority {priority}\n");
    tokio::spawn(serve(listener, healthy, body));

    let mut failover = Failover::builder(interface, 51)
        .virtual_address(vip)
        .priority(priority.parse()?)
        .advert_interval(Duration::from_millis(100))
        .track("healthz", 0) // weight 0: Fault, VIP released, while /healthz fails
        .crash_guard(std::env::var("GUARD_FILE").unwrap_or("/run/embedded_failover.guard".into()))
        .start()
        .await?;
    let check = HttpCheck::new("127.0.0.1:8080".parse()?).path("/healthz");
    let every_100ms = MonitorConfig::default()
        .interval(Duration::from_millis(100))
        .rise(2)
        .fall(2);
    let monitor = Monitor::spawn(Arc::new(check), every_100ms)?;
    health_check::vrrp::track(&monitor, failover.tracker("healthz")?);
    let (mut term, driver) = (signal(SignalKind::terminate())?, failover.driver().clone());
    tokio::spawn(async move {
        term.recv().await;
        driver.shutdown(); // priority 0: the peer takes over now; the VIP is released
    });
    while let Some(event) = failover.next_event().await {
        println!("{event}"); // the last one says why it ended
    }
    Ok(())
}

/// One request per connection: `/fail` and `/recover` flip `/healthz`.
async fn serve(listener: TcpListener, healthy: Arc<AtomicBool>, body: String) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let (healthy, body) = (healthy.clone(), body.clone());
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = conn.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            match path {
                "/fail" => healthy.store(false, Ordering::Relaxed),
                "/recover" => healthy.store(true, Ordering::Relaxed),
                _ => {}
            }
            let status = match path == "/healthz" && !healthy.load(Ordering::Relaxed) {
                true => "503 Service Unavailable",
                false => "200 OK",
            };
            let len = body.len();
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: {len}\r\n\r\n{body}");
            let _ = conn.write_all(reply.as_bytes()).await;
        });
    }
}
