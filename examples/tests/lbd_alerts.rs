//! lbd's `[alerts]` (HAProxy's `email-alert`): a server marked down, then up again, arrives
//! as a mail at a real SMTP server (aiosmtpd on loopback).

mod lab;
mod lbdlab;

use std::time::Duration;

use lab::mail::{Smtp, aiosmtpd_or_skip, mail_with};
use lbdlab::{Backend, Lbd, free_addr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_marked_down_and_up_again_is_mailed() {
    if !aiosmtpd_or_skip("lbd alerts by mail") {
        return;
    }
    let dir = lab::fresh_dir("lbd-alerts");
    let smtp = Smtp::start(dir.join("maildir"));
    let (a1, a2) = (free_addr(), free_addr());
    let _s1 = Backend::start("s1", a1).await;
    let s2 = Backend::start("s2", a2).await;
    let config = format!(
        "[alerts]\nmail = {{ server = \"127.0.0.1:{}\", from = \"lbd@lb1.example\", to = [\"ops@example.com\"] }}\n\n[[listen]]\nname = \"web\"\nbind = \"{}\"\nmode = \"http\"\ncheck = {{ tcp = true, interval = \"100ms\", rise = 1, fall = 1 }}\nservers = [{{ name = \"s1\", addr = \"{a1}\" }}, {{ name = \"s2\", addr = \"{a2}\" }}]\n",
        smtp.port,
        free_addr()
    );
    let lbd = Lbd::start(&config);
    s2.stop();
    lbd.wait_for_log("server s2", Duration::from_secs(10));
    let maildir = smtp.maildir.clone();
    let down = tokio::task::spawn_blocking(move || mail_with(&maildir, "web/s2 is DOWN"))
        .await
        .expect("the mail");
    for part in [
        "Subject: [lbd@",
        "From: lbd@lb1.example",
        "listener: web",
        "server: s2",
        &format!("address: {a2}"),
        "state: DOWN",
        "servers_up: 1 of 2",
        "daemon: lbd",
    ] {
        assert!(down.contains(part), "missing {part:?} in:\n{down}");
    }
    // Back: s2 listens again.
    let _s2 = Backend::start("s2", a2).await;
    let maildir = smtp.maildir.clone();
    let up = tokio::task::spawn_blocking(move || mail_with(&maildir, "web/s2 is UP"))
        .await
        .expect("the mail");
    assert!(up.contains("servers_up: 2 of 2"), "{up}");
    drop(lbd);
    let _ = std::fs::remove_dir_all(&dir);
}
