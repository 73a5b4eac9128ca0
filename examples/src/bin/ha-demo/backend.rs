//! The story's backends: small HTTP/1.1 servers (hyper) that answer every request with their
//! name. In namespaces each is this binary run again with `--backend ADDRESS NAME`, so that
//! killing it is a SIGKILL; on loopback they are tasks of the demo, killed by aborting them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves `listener` as backend `name` until the task is dropped or aborted; its connections
/// are its own tasks, so they close with it (as a killed process's would).
pub(crate) async fn serve(listener: TcpListener, name: String) {
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            // Reap the finished ones as they end.
            Some(_) = connections.join_next() => continue,
        };
        let _ = stream.set_nodelay(true);
        let body = Bytes::from(name.clone());
        let service = service_fn(move |_: Request<Incoming>| {
            let body = body.clone();
            async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
        });
        connections.spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `--backend ADDRESS NAME`: serves until killed.
pub(crate) async fn run(addr: SocketAddr, name: String) -> ExitCode {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            println!("{name} listening on {addr}");
            serve(listener, name).await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ha-demo --backend: cannot listen on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
