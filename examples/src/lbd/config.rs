//! The lbd configuration file (TOML, keys as in the project's DESIGN.md), checked as a whole:
//! every mistake is reported with `file:line:column`, the key, what is wrong and the fix, all
//! of them at once; unknown keys are refused; things that work but are probably not meant
//! come back as [`Config::warnings`]. Both are in file order.
//!
//! ```toml
//! maxconn = 8000              # optional: all listeners together (HAProxy's global maxconn)
//!
//! [[listen]]
//! name = "web"
//! bind = "127.0.0.1:18080"
//! mode = "http"
//! balance = "roundrobin"
//! cookie = "SERVERID"
//! check = { http = "/health", interval = "2s", rise = 2, fall = 3 }
//! servers = [
//!   { name = "web1", addr = "127.0.0.1:18081" },
//!   { name = "web2", addr = "127.0.0.1:18082", weight = 2 },
//! ]
//! stats = { bind = "127.0.0.1:18404", auth = "admin:secret" }
//!
//! [[listen]]
//! name = "https"
//! bind = "127.0.0.1:18443"
//! mode = "http"
//! tls = [
//!   { cert = "/etc/ha/site.pem", key = "/etc/ha/site.key" },   # the default
//!   { cert = "/etc/ha/api.pem", key = "/etc/ha/api.key" },     # for api.example.com
//! ]
//! servers = [
//!   { name = "api1", addr = "10.0.0.21:443", tls = true, ca = "/etc/ha/internal-ca.pem" },
//!   { name = "api2", addr = "10.0.0.22:443", tls = true, verify = "none" },
//! ]
//! ```
//!
//! Defaults are HAProxy's where HAProxy has one; each field's documentation gives it. The
//! rules beyond single values:
//! - listener names, binds (including the stats pages') and a listener's server names are
//!   unique; names are letters, digits, `-`, `_`, `.`, `:` (as HAProxy's);
//! - `cookie`, `balance = "uri"` and `"hdr(NAME)"` need `mode = "http"`;
//! - `redirect_https` is for a plain-HTTP listener (http mode, no `tls`); such a listener
//!   only redirects, so it needs no servers;
//! - `tls` on a tcp listener is TLS termination in front of a plain TCP stream (HAProxy's
//!   `bind ... ssl` in `mode tcp`): allowed on purpose;
//! - a listener serving several names lists its certificates, as HAProxy's `crt-list`:
//!   `tls = [{ cert, key }, { cert, key }, ...]`. Each client gets the certificate whose
//!   subjectAltName DNS names match the name it asks for (SNI; wildcards cover one label),
//!   a client asking for no name or an unknown one gets the first. `tls = { cert, key }` is
//!   the same as a list of one;
//! - a server with `tls = true` is checked against the system's CAs (`verify = "required"`,
//!   the default) or its own `ca = "file"` (HAProxy's `ca-file`), or not at all
//!   (`verify = "none"`); `verify` and `ca` without `tls` are ignored, with a warning;
//! - the `tls` cert and key files and the servers' `ca` files are read when lbd starts;
//!   `--check` only warns when they are missing, so a file can be checked on another host.
//!
//! [`parse`] does not bind anything or open the TLS files.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::balance::Balance;
use super::health::{self, HealthCheck};
use super::servers::{self, ServerToml};
use super::stats::{self, StatsToml};
pub use crate::diagnostics::ConfigError;
use crate::diagnostics::{Report, choice, positive_duration};

/// HAProxy's `retries` default.
pub const DEFAULT_RETRIES: u32 = 3;
/// A listener's connection limit when the file gives none (HAProxy's documented default
/// `maxconn`, 2000).
pub const DEFAULT_MAXCONN: u32 = 2000;
/// `timeout connect` when the file gives none. HAProxy has no default (it waits forever and
/// warns); 5 s is the value of the sample configuration HAProxy's packages ship.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `timeout client` and `timeout server` when the file gives none: 50 s, from the same
/// sample configuration.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The most client connections of all listeners together (`maxconn = N` before the first
    /// `[[listen]]`, HAProxy's global `maxconn`); none by default (each listener's own
    /// `maxconn` still holds). Connections beyond it wait in the listeners' accept queues.
    pub maxconn: Option<u32>,
    /// The listeners (`[[listen]]`), in file order.
    pub listeners: Vec<Listener>,
    /// Mails and webhooks when a server is marked down or up (`[alerts]`, HAProxy's
    /// `email-alert`), read at start.
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// The runtime admin socket (`admin_socket = "/run/lbd/admin.sock"`, HAProxy's `stats
    /// socket`; see [`super::admin`]), read at start; none by default.
    pub admin_socket: Option<std::path::PathBuf>,
    /// Things that work but are probably not what was meant.
    pub warnings: Vec<ConfigError>,
}

impl crate::cli::Checked for Config {
    fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    fn summary(&self) -> String {
        let (l, s) = (self.listeners.len(), self.server_count());
        format!(
            "{l} listener{}, {s} server{}",
            if l == 1 { "" } else { "s" },
            if s == 1 { "" } else { "s" },
        )
    }
}

impl Config {
    /// The servers of all listeners.
    pub fn server_count(&self) -> usize {
        self.listeners.iter().map(|l| l.servers.len()).sum()
    }
}

/// One `[[listen]]`: a bind address, how it proxies, and its servers (HAProxy's `listen`
/// section, i.e. a frontend with its own backend).
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Its name, for logs and the stats page.
    pub name: String,
    /// Where it accepts connections. May be a virtual address this host does not hold yet
    /// (bound with `IP_FREEBIND` at run time).
    pub bind: SocketAddr,
    /// `"http"` or `"tcp"`; default tcp, as HAProxy's.
    pub mode: Mode,
    /// TLS termination: its certificates (`tls = { cert, key }`, or several as
    /// `tls = [{ cert, key }, ...]`), the first being the default for clients whose server
    /// name (SNI) no other one holds. Empty (the default): no TLS.
    pub tls: Vec<TlsFiles>,
    /// Answer every request with a 301 to the same URL over https (default false).
    pub redirect_https: bool,
    /// The algorithm (default `roundrobin`).
    pub balance: Balance,
    /// Cookie stickiness: the cookie's name (HAProxy's `cookie NAME insert indirect nocache`,
    /// the value being the server's name); none by default.
    pub cookie: Option<String>,
    /// The servers' health check; none by default (servers are then always up, as in HAProxy
    /// without `check`).
    pub check: Option<HealthCheck>,
    /// Connection attempts to a server after the first fails (default 3, HAProxy's).
    pub retries: u32,
    /// Whether the last retry may go to another server (HAProxy's `option redispatch`;
    /// default off).
    pub redispatch: bool,
    /// The timeouts.
    pub timeouts: Timeouts,
    /// Concurrent client connections; more wait in the kernel's accept queue
    /// (default [`DEFAULT_MAXCONN`]).
    pub maxconn: u32,
    /// The servers (empty only on a `redirect_https` listener).
    pub servers: Vec<Server>,
    /// The stats page, if any.
    pub stats: Option<stats::Stats>,
}

/// How a listener proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Request by request (HTTP/1.1): cookies, URI and header hashing, redirects.
    Http,
    /// Connection by connection, bytes passed through.
    Tcp,
}

/// A certificate chain and its private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The timeouts of a listener (`timeouts = { ... }`), as HAProxy's `timeout` keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect to a server (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect: Duration,
    /// A client's inactivity (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub client: Duration,
    /// A server's inactivity (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub server: Duration,
    /// To receive a complete request head (default: `client`, as HAProxy's).
    pub http_request: Duration,
    /// In the queue of a server at its `maxconn` (default: `connect`, as HAProxy's).
    pub queue: Duration,
}

/// One server of a listener. Its name, checked as HAProxy's, is also a valid cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name (the stickiness cookie's value).
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its weight, 0 to 256 (default 1, as HAProxy's); 0 takes no new traffic.
    pub weight: u32,
    /// Its concurrent-request limit (none by default); more wait in a queue.
    pub maxconn: Option<u32>,
    /// TLS towards it (`tls = true`), and how its certificate is checked.
    pub tls: Option<Verify>,
    /// The CAs its certificate must lead to (`ca = "/etc/ha/ca.pem"`, a PEM file, HAProxy's
    /// `ca-file`) with `verify = "required"`; none by default: the system's trust store.
    pub ca: Option<PathBuf>,
}

/// How a server's certificate is checked (`verify`), as HAProxy's `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Against the system's trust store (`"required"`, the default, as HAProxy's
    /// `ssl-server-verify required`).
    Required,
    /// Not at all (`"none"`): encrypted, but anyone in the path may impersonate the server.
    None,
}

// ---- the file as written ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    maxconn: Option<Spanned<i64>>,
    alerts: Option<crate::alerts::AlertsToml>,
    admin_socket: Option<Spanned<String>>,
    #[serde(default)]
    listen: Vec<ListenToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenToml {
    name: Spanned<String>,
    bind: Spanned<String>,
    mode: Option<Spanned<String>>,
    tls: Option<Spanned<TlsSpec>>,
    redirect_https: Option<Spanned<bool>>,
    balance: Option<Spanned<String>>,
    cookie: Option<Spanned<String>>,
    check: Option<Spanned<health::CheckToml>>,
    retries: Option<Spanned<i64>>,
    redispatch: Option<Spanned<bool>>,
    timeouts: Option<TimeoutsToml>,
    maxconn: Option<Spanned<i64>>,
    servers: Option<Spanned<Vec<Spanned<ServerToml>>>>,
    stats: Option<Spanned<StatsToml>>,
}

/// `tls = { cert, key }` or `tls = [{ cert, key }, ...]`.
enum TlsSpec {
    One(TlsToml),
    Many(Vec<Spanned<TlsToml>>),
}

impl<'de> Deserialize<'de> for TlsSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = TlsSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("{ cert = \"FILE\", key = \"FILE\" }, or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TlsSpec, A::Error> {
                TlsToml::deserialize(MapAccessDeserializer::new(map)).map(TlsSpec::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<TlsSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(TlsSpec::Many)
            }
        }
        d.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsToml {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsToml {
    connect: Option<Spanned<String>>,
    client: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    http_request: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
}

// ---- checking -----------------------------------------------------------------------------

/// Parses and checks `text` (from `file`, for the messages).
pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
    let (mut r, raw): (_, FileToml) = crate::diagnostics::parse_toml(file, text)?;
    if raw.listen.is_empty() {
        r.at(
            0..0,
            "listen".into(),
            "no [[listen]] section: add one with name, bind and servers".into(),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    // Every address something listens on: the listeners' and their stats pages'.
    let mut binds: HashMap<SocketAddr, String> = HashMap::new();
    let mut listeners = Vec::new();
    for (i, t) in raw.listen.iter().enumerate() {
        let name = t.name.get_ref();
        if names.insert(name, i).is_some() {
            r.at(
                t.name.span(),
                format!("listen[{i}].name"),
                format!("{name:?} is used by another listener: names must be unique"),
            );
        }
        if let Some(l) = check_listener(&mut r, i, t, &mut binds) {
            listeners.push(l);
        }
    }
    let maxconn = raw.maxconn.as_ref().and_then(|v| {
        count_of(
            &mut r,
            v,
            "maxconn".into(),
            1,
            " (the connections of all listeners together, HAProxy's global maxconn)",
        )
    });
    let alerts = raw
        .alerts
        .as_ref()
        .and_then(|a| crate::alerts::check(&mut r, a));
    let admin_socket = raw.admin_socket.as_ref().and_then(|p| {
        let path = p.get_ref();
        // sun_path holds 108 bytes with the terminating NUL.
        if path.starts_with('/') && path.len() <= 107 {
            Some(std::path::PathBuf::from(path))
        } else {
            r.at(
                p.span(),
                "admin_socket".into(),
                format!(
                    "{path:?}: an absolute path of at most 107 bytes, e.g. \"/run/lbd/admin.sock\""
                ),
            );
            None
        }
    });
    // In file order, whatever order the checks ran in.
    r.errors.sort_by_key(|e| (e.line, e.column));
    r.warnings.sort_by_key(|e| (e.line, e.column));
    if r.errors.is_empty() {
        Ok(Config {
            maxconn,
            listeners,
            alerts,
            admin_socket,
            warnings: r.warnings,
        })
    } else {
        Err(r.errors)
    }
}

/// HAProxy's rule for proxy and server names: letters, digits, `-`, `_`, `.`, `:`.
pub(crate) fn check_name(r: &mut Report<'_>, name: &Spanned<String>, key: String) {
    let n = name.get_ref();
    if n.is_empty() {
        r.at(name.span(), key, "is empty: give it a name".into());
    } else if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
    {
        r.at(
            name.span(),
            key,
            format!("{n:?} contains {c:?}: use letters, digits, '-', '_', '.' and ':'"),
        );
    }
}

/// `bind`-like keys: an `IP:port`, unique among everything that listens.
pub(crate) fn check_bind(
    r: &mut Report<'_>,
    bind: &Spanned<String>,
    key: String,
    binds: &mut HashMap<SocketAddr, String>,
) -> Option<SocketAddr> {
    match bind.get_ref().parse::<SocketAddr>() {
        Ok(a) => {
            if let Some(other) = binds.insert(a, key.clone()) {
                r.at(
                    bind.span(),
                    key,
                    format!("{a} is already bound by {other}: each address and port once"),
                );
            }
            Some(a)
        }
        Err(_) => {
            r.at(
                bind.span(),
                key,
                format!(
                    "{:?} is not IP:port: write e.g. \"127.0.0.1:8080\" or \"[::]:443\"",
                    bind.get_ref()
                ),
            );
            None
        }
    }
}

/// A count that must fit a u32 and be at least `min`.
pub(crate) fn count_of(
    r: &mut Report<'_>,
    v: &Spanned<i64>,
    key: String,
    min: u32,
    hint: &str,
) -> Option<u32> {
    match u32::try_from(*v.get_ref()) {
        Ok(n) if n >= min => Some(n),
        _ => {
            r.at(
                v.span(),
                key,
                format!("{}: at least {min}{hint}", v.get_ref()),
            );
            None
        }
    }
}

fn check_listener(
    r: &mut Report<'_>,
    i: usize,
    t: &ListenToml,
    binds: &mut HashMap<SocketAddr, String>,
) -> Option<Listener> {
    let key = |k: &str| format!("listen[{i}].{k}");
    let before = r.errors.len();
    check_name(r, &t.name, key("name"));
    let bind = check_bind(r, &t.bind, key("bind"), binds);
    let mode = choice(
        r,
        &t.mode,
        key("mode"),
        &[("tcp", Mode::Tcp), ("http", Mode::Http)],
        (Mode::Tcp, Mode::Http),
        "\"http\" or \"tcp\"",
    );
    let http_only = |r: &mut Report<'_>, span: Range<usize>, k: &str, what: String| {
        if mode == Mode::Tcp {
            r.at(
                span,
                key(k),
                format!("{what} needs mode = \"http\" (this listener is in tcp mode)"),
            );
        }
    };
    let tls = t
        .tls
        .as_ref()
        .map_or_else(Vec::new, |tls| check_tls(r, tls, &key));
    let redirect_https = t.redirect_https.as_ref().is_some_and(|v| *v.get_ref());
    if let Some(v) = t.redirect_https.as_ref().filter(|v| *v.get_ref()) {
        http_only(r, v.span(), "redirect_https", "redirect_https".into());
        if !tls.is_empty() {
            r.at(
                v.span(),
                key("redirect_https"),
                "this listener already speaks TLS: redirect_https belongs on the plain-HTTP listener (remove it here)".into(),
            );
        }
    }
    let balance = match &t.balance {
        None => Balance::RoundRobin,
        Some(b) => match Balance::parse(b.get_ref()) {
            Ok(balance) => {
                if balance.needs_http() {
                    http_only(
                        r,
                        b.span(),
                        "balance",
                        format!("balance = {:?}", b.get_ref()),
                    );
                }
                balance
            }
            Err(e) => {
                r.at(b.span(), key("balance"), e);
                Balance::RoundRobin
            }
        },
    };
    let cookie = t.cookie.as_ref().map(|c| {
        http_only(r, c.span(), "cookie", "cookie stickiness".into());
        let name = c.get_ref();
        if name.is_empty() || !name.bytes().all(is_cookie_name_byte) {
            r.at(
                c.span(),
                key("cookie"),
                format!("{name:?} is not a cookie name: use letters, digits and -_.!#$%&'*+^`|~"),
            );
        }
        name.clone()
    });
    let check = t.check.as_ref().and_then(|c| health::check(r, c, &key));
    let retries = t.retries.as_ref().map_or(Some(DEFAULT_RETRIES), |v| {
        count_of(r, v, key("retries"), 0, "")
    });
    let redispatch = t.redispatch.as_ref().is_some_and(|v| *v.get_ref());
    if let (Some(v), Some(0)) = (t.redispatch.as_ref().filter(|v| *v.get_ref()), retries) {
        r.warn(
            v.span(),
            key("redispatch"),
            "has no effect with retries = 0: redispatch moves a retry to another server".into(),
        );
    }
    let timeouts = check_timeouts(r, t.timeouts.as_ref(), &key);
    let maxconn = t.maxconn.as_ref().map_or(Some(DEFAULT_MAXCONN), |v| {
        count_of(r, v, key("maxconn"), 1, "")
    });
    let servers = servers::check(
        r,
        &servers::Around {
            index: i,
            listener: &t.name,
            servers: t.servers.as_ref(),
            redirect_only: redirect_https,
            balance: &balance,
        },
    );
    let stats = t
        .stats
        .as_ref()
        .and_then(|s| stats::check(r, s, key("stats"), binds));
    if r.errors.len() != before {
        return None;
    }
    Some(Listener {
        name: t.name.get_ref().clone(),
        bind: bind?,
        mode,
        tls,
        redirect_https,
        balance,
        cookie,
        check,
        retries: retries?,
        redispatch,
        timeouts,
        maxconn: maxconn?,
        servers,
        stats,
    })
}

/// RFC 6265's `token`: what a cookie name may hold.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A listener's certificates, in order (an empty list has been reported).
fn check_tls(
    r: &mut Report<'_>,
    t: &Spanned<TlsSpec>,
    key: &dyn Fn(&str) -> String,
) -> Vec<TlsFiles> {
    match t.get_ref() {
        TlsSpec::One(one) => vec![check_cert(r, one, &key("tls"))],
        TlsSpec::Many(list) => {
            if list.is_empty() {
                r.at(
                    t.span(),
                    key("tls"),
                    "is empty: list at least one { cert = \"FILE\", key = \"FILE\" }, or leave tls out for plain TCP/HTTP".into(),
                );
            }
            let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
            let mut files = Vec::new();
            for (n, one) in list.iter().enumerate() {
                let pair = one.get_ref();
                if let Some(first) = seen.insert((pair.cert.get_ref(), pair.key.get_ref()), n) {
                    r.warn(
                        one.span(),
                        key(&format!("tls[{n}]")),
                        format!("the same files as tls[{first}]: never chosen (remove it)"),
                    );
                }
                files.push(check_cert(r, pair, &key(&format!("tls[{n}]"))));
            }
            files
        }
    }
}

/// One `{ cert, key }` at `prefix` (`listen[0].tls` or `listen[0].tls[1]`).
fn check_cert(r: &mut Report<'_>, t: &TlsToml, prefix: &str) -> TlsFiles {
    for (k, v) in [("cert", &t.cert), ("key", &t.key)] {
        let path = v.get_ref();
        if path.is_empty() {
            r.at(
                v.span(),
                format!("{prefix}.{k}"),
                "is empty: give the PEM file's path".into(),
            );
        } else if !std::path::Path::new(path).is_file() {
            // Read at start; the file may be checked on another host than the one it runs on.
            r.warn(
                v.span(),
                format!("{prefix}.{k}"),
                format!("{path:?} is not a file here: lbd will not start until it is"),
            );
        }
    }
    TlsFiles {
        cert: t.cert.get_ref().into(),
        key: t.key.get_ref().into(),
    }
}

fn check_timeouts(
    r: &mut Report<'_>,
    t: Option<&TimeoutsToml>,
    key: &dyn Fn(&str) -> String,
) -> Timeouts {
    let mut get = |v: Option<&Option<Spanned<String>>>, k: &str, default: Duration| {
        let Some(v) = v else { return default };
        let why = "a timeout must be positive (leave it out for the default)";
        positive_duration(r, v, key(&format!("timeouts.{k}")), default, why)
    };
    let connect = get(t.map(|t| &t.connect), "connect", DEFAULT_CONNECT_TIMEOUT);
    let client = get(t.map(|t| &t.client), "client", DEFAULT_IDLE_TIMEOUT);
    let server = get(t.map(|t| &t.server), "server", DEFAULT_IDLE_TIMEOUT);
    let http_request = get(t.map(|t| &t.http_request), "http_request", client);
    let queue = get(t.map(|t| &t.queue), "queue", connect);
    Timeouts {
        connect,
        client,
        server,
        http_request,
        queue,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
