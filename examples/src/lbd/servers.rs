//! A listener's `servers = [...]`, as written and as checked.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::balance::Balance;
use super::config::{Server, Verify, check_name, count_of};
use crate::diagnostics::{Report, choice};

/// HAProxy's largest server weight.
pub const MAX_WEIGHT: u32 = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerToml {
    name: Spanned<String>,
    addr: Spanned<String>,
    weight: Option<Spanned<i64>>,
    maxconn: Option<Spanned<i64>>,
    tls: Option<bool>,
    verify: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
}

/// What the server checks need to know of their listener.
pub(crate) struct Around<'a> {
    /// The listener's index, for the keys.
    pub(crate) index: usize,
    /// The listener's name, where a missing `servers` is reported.
    pub(crate) listener: &'a Spanned<String>,
    /// `servers`, if written.
    pub(crate) servers: Option<&'a Spanned<Vec<Spanned<ServerToml>>>>,
    /// A `redirect_https` listener, which sends nothing to servers.
    pub(crate) redirect_only: bool,
    /// The algorithm.
    pub(crate) balance: &'a Balance,
}

/// Checks the servers of listener `around.index`; only the valid ones are returned (the
/// others have been reported).
pub(crate) fn check(r: &mut Report<'_>, around: &Around<'_>) -> Vec<Server> {
    let i = around.index;
    let Some(list) = around.servers.filter(|s| !s.get_ref().is_empty()) else {
        if around.redirect_only {
            return Vec::new();
        }
        let span = around.servers.map_or(around.listener.span(), Spanned::span);
        r.at(
            span,
            format!("listen[{i}].servers"),
            "no servers: add e.g. servers = [{ name = \"s1\", addr = \"127.0.0.1:8081\" }]".into(),
        );
        return Vec::new();
    };
    if around.redirect_only {
        r.warn(
            list.span(),
            format!("listen[{i}].servers"),
            "never used: a redirect_https listener answers every request with the redirect".into(),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (k, s) in list.get_ref().iter().enumerate() {
        let key = |f: &str| format!("listen[{i}].servers[{k}].{f}");
        let t = s.get_ref();
        let before = r.errors.len();
        check_name(r, &t.name, key("name"));
        if let Some(first) = names.insert(t.name.get_ref(), k) {
            r.at(
                t.name.span(),
                key("name"),
                format!(
                    "{:?} is also servers[{first}]: server names are unique within a listener",
                    t.name.get_ref()
                ),
            );
        }
        let addr = match t.addr.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                r.at(
                    t.addr.span(),
                    key("addr"),
                    format!(
                        "{:?} is not IP:port: write e.g. \"127.0.0.1:8081\"",
                        t.addr.get_ref()
                    ),
                );
                None
            }
        };
        let weight = match &t.weight {
            None => Some(1),
            Some(w) => match u32::try_from(*w.get_ref()) {
                Ok(n) if n <= MAX_WEIGHT => Some(n),
                _ => {
                    r.at(
                        w.span(),
                        key("weight"),
                        format!(
                            "{} is out of range: a weight is 0 to {MAX_WEIGHT} (HAProxy's)",
                            w.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let maxconn = match &t.maxconn {
            None => Some(None),
            Some(m) => count_of(r, m, key("maxconn"), 1, " (leave it out for no limit)").map(Some),
        };
        let verify = choice(
            r,
            &t.verify,
            key("verify"),
            &[("required", Verify::Required), ("none", Verify::None)],
            (Verify::Required, Verify::Required),
            "\"required\" (check the certificate) or \"none\"",
        );
        let tls = t.tls.unwrap_or(false);
        if let (Some(v), false) = (&t.verify, tls) {
            r.warn(
                v.span(),
                key("verify"),
                "ignored: this server is plain TCP (add tls = true to use TLS)".into(),
            );
        }
        let ca = t.ca.as_ref().map(|ca| {
            let path = ca.get_ref();
            if path.is_empty() {
                r.at(
                    ca.span(),
                    key("ca"),
                    "is empty: give the CA PEM file's path (leave ca out for the system's CAs)"
                        .into(),
                );
            } else if !tls {
                r.warn(
                    ca.span(),
                    key("ca"),
                    "ignored: this server is plain TCP (add tls = true to use TLS)".into(),
                );
            } else if verify == Verify::None {
                r.warn(
                    ca.span(),
                    key("ca"),
                    "ignored: verify = \"none\" checks no certificate (remove ca, or verify)"
                        .into(),
                );
            } else if !std::path::Path::new(path).is_file() {
                // Read at start, as the listeners' certificates.
                r.warn(
                    ca.span(),
                    key("ca"),
                    format!("{path:?} is not a file here: lbd will not start until it is"),
                );
            }
            std::path::PathBuf::from(path)
        });
        if r.errors.len() != before {
            continue;
        }
        if let (Some(addr), Some(weight), Some(maxconn)) = (addr, weight, maxconn) {
            out.push(Server {
                name: t.name.get_ref().clone(),
                addr,
                weight,
                maxconn,
                tls: tls.then_some(verify),
                ca: ca.filter(|_| tls && verify == Verify::Required),
            });
        }
    }
    if *around.balance == Balance::First
        && !list.get_ref().iter().any(|s| s.get_ref().maxconn.is_some())
    {
        r.warn(
            list.span(),
            format!("listen[{i}].servers"),
            "balance = \"first\" fills each server up to its maxconn, and none has one: all traffic goes to the first server".into(),
        );
    }
    out
}
