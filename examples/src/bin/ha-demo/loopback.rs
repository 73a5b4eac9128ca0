//! The balancer half of the story without root: lbd's balancer ([`examples::lbd::Lbd`], the
//! one hald runs) on a loopback port over three backends on loopback, the same HTTP load,
//! and two of the five scenarios: a backend killed, then brought back. (The VRRP half runs on
//! the simulator.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use examples::lbd::{Lbd, config};
use health_check::Health;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::full::{BACKENDS, listener};
use crate::load::{self, Outcome};
use crate::scenarios::{Figures, Narrator, Scenario};
use crate::story::Line;

/// How the balancer half went.
pub(crate) struct Half {
    /// Where the balancer listened.
    pub(crate) listen: SocketAddr,
    pub(crate) lines: Vec<Line>,
    pub(crate) scenarios: Vec<(Scenario, Figures)>,
}

/// A free loopback listener.
async fn bind_any() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0").await
}

fn backend(listener: TcpListener, name: &str) -> JoinHandle<()> {
    tokio::spawn(crate::backend::serve(listener, name.to_owned()))
}

/// Waits up to 3 s for server `name` of `lbd`'s listener to be `health`, and says when.
async fn told(n: &mut Narrator, lbd: &Lbd, name: &str, health: Health) {
    let since = load::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let servers = lbd.server_health("web").unwrap_or_default();
        if let Some((_, status)) = servers.iter().find(|(n, _)| n == name)
            && status.borrow().health == health
        {
            let state = if health == Health::Up { "up" } else { "down" };
            let after = (load::now() - since) * 1000.0;
            n.say(format!("lbd: {name} marked {state}, {after:.1} ms after"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the balancer half: errors are reported as text.
pub(crate) async fn run() -> Result<Half, String> {
    let mut n = Narrator::new();
    let io = |e: std::io::Error| format!("loopback: {e}");
    let mut servers = Vec::new();
    let mut tasks = Vec::new();
    for (name, _) in BACKENDS {
        let l = bind_any().await.map_err(io)?;
        servers.push((name, l.local_addr().map_err(io)?));
        tasks.push(backend(l, name));
    }
    // The balancer's port: free a moment ago.
    let listen = bind_any().await.map_err(io)?.local_addr().map_err(io)?;
    let text = listener(listen, &servers);
    let config = config::parse("ha-demo.toml", &text)
        .map_err(|e| format!("the balancer's configuration: {}", e[0]))?;
    let lbd = Lbd::start(&config)
        .await
        .map_err(|e| format!("starting the balancer: {e}"))?;
    let named: Vec<String> = servers.iter().map(|(n, a)| format!("{n} ({a})")).collect();
    n.say(format!(
        "lbd's balancer on {listen} over {}",
        named.join(", ")
    ));
    // The servers pass their first checks (rise 2 at 200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let sink = outcomes.clone();
    let clients = load::start(listen, move |o| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    });
    n.say(format!(
        "the load: {} keep-alive HTTP clients, {} GET/s each",
        load::CLIENTS,
        load::RATE
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (victim, victim_addr) = servers[1];
    n.scenario(
        "backend_killed",
        format!("backend {victim} killed"),
        "",
        None,
    );
    tasks[1].abort();
    told(&mut n, &lbd, victim, Health::Down).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    n.scenario(
        "backend_back",
        format!("backend {victim} back"),
        "",
        Some(victim),
    );
    let l = TcpListener::bind(victim_addr).await.map_err(io)?;
    tasks[1] = backend(l, victim);
    told(&mut n, &lbd, victim, Health::Up).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    n.end();
    for c in clients {
        c.abort();
    }
    lbd.drain(Duration::from_millis(200)).await;
    for t in tasks {
        t.abort();
    }
    let outcomes = outcomes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (lines, scenarios) = n.finish(&outcomes);
    Ok(Half {
        listen,
        lines,
        scenarios,
    })
}
