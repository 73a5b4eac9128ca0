use super::*;
use crate::lbd::{Probe, Stats};
use health_check::MonitorConfig;
use lb_core::HashKey;

/// The lbd example of the project's DESIGN.md, verbatim.
const DESIGN: &str = r#"
[[listen]]
name = "web"
bind = "127.0.0.1:18080"           # may be a VIP this host does not hold yet (IP_FREEBIND)
mode = "http"                      # http | tcp
tls = { cert = "/etc/ha/site.pem", key = "/etc/ha/site.key" }   # optional TLS termination
redirect_https = false             # true on a plain-HTTP listener: 301 to https
balance = "roundrobin"             # roundrobin | static-rr | leastconn | source | uri | hdr(NAME) | random | first | p2c
cookie = "SERVERID"                # optional: insert stickiness cookie (http mode)
check = { http = "/health", interval = "2s", rise = 2, fall = 3 }   # or { tcp = true, ... }
retries = 3
redispatch = true
timeouts = { connect = "5s", client = "50s", server = "50s", http_request = "10s", queue = "1m" }
maxconn = 3000
servers = [
  { name = "web1", addr = "127.0.0.1:18081", weight = 1, maxconn = 5000 },
  { name = "web2", addr = "127.0.0.1:18082", tls = true, verify = "none" },
]
stats = { bind = "127.0.0.1:18404", auth = "admin:secret" }   # HTML at /stats, Prometheus at /metrics
"#;

fn errors(text: &str) -> Vec<String> {
    crate::diagnostics::refused(parse, "lbd.toml", text)
}

fn warnings(text: &str) -> Vec<String> {
    parse("lbd.toml", text)
        .expect("accepted")
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_design_example_works_as_written() {
    let c = parse("lbd.toml", DESIGN).expect("the documented keys work");
    assert_eq!(c.server_count(), 2);
    let l = &c.listeners[0];
    assert_eq!(l.name, "web");
    assert_eq!(l.bind, "127.0.0.1:18080".parse().unwrap());
    assert_eq!(l.mode, Mode::Http);
    assert_eq!(
        l.tls,
        [TlsFiles {
            cert: "/etc/ha/site.pem".into(),
            key: "/etc/ha/site.key".into()
        }]
    );
    assert!(!l.redirect_https);
    assert_eq!(l.balance, Balance::RoundRobin);
    assert_eq!(l.cookie.as_deref(), Some("SERVERID"));
    let check = l.check.as_ref().unwrap();
    assert_eq!(
        check.probe,
        Probe::Http {
            path: "/health".into()
        }
    );
    assert_eq!(
        (
            check.monitor.interval,
            check.monitor.timeout,
            check.monitor.rise,
            check.monitor.fall
        ),
        (Duration::from_secs(2), Duration::from_secs(2), 2, 3)
    );
    assert_eq!((l.retries, l.redispatch, l.maxconn), (3, true, 3000));
    assert_eq!(
        l.timeouts,
        Timeouts {
            connect: Duration::from_secs(5),
            client: Duration::from_secs(50),
            server: Duration::from_secs(50),
            http_request: Duration::from_secs(10),
            queue: Duration::from_secs(60),
        }
    );
    assert_eq!(
        l.servers,
        [
            Server {
                name: "web1".into(),
                addr: "127.0.0.1:18081".parse().unwrap(),
                weight: 1,
                maxconn: Some(5000),
                tls: None,
                ca: None,
            },
            Server {
                name: "web2".into(),
                addr: "127.0.0.1:18082".parse().unwrap(),
                weight: 1,
                maxconn: None,
                tls: Some(Verify::None),
                ca: None,
            },
        ]
    );
    assert_eq!(
        l.stats,
        Some(Stats {
            bind: "127.0.0.1:18404".parse().unwrap(),
            uri: "/stats".into(),
            auth: Some(("admin".into(), "secret".into())),
        })
    );
    // The certificate files are not on this host: warned about, not refused.
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "lbd.toml:6:16: listen[0].tls.cert: \"/etc/ha/site.pem\" is not a file here: lbd will not start until it is",
            "lbd.toml:6:42: listen[0].tls.key: \"/etc/ha/site.key\" is not a file here: lbd will not start until it is",
        ]
    );
}

#[test]
fn defaults_are_haproxys() {
    let c = parse(
        "lbd.toml",
        "[[listen]]\nname = \"db\"\nbind = \"127.0.0.1:5432\"\nservers = [{ name = \"pg1\", addr = \"127.0.0.1:5433\" }]\ncheck = { tcp = true }\n",
    )
    .expect("valid");
    let l = &c.listeners[0];
    assert_eq!(l.mode, Mode::Tcp, "HAProxy's default mode");
    assert_eq!(l.balance, Balance::RoundRobin);
    assert_eq!((l.retries, l.redispatch), (3, false));
    assert_eq!(l.maxconn, DEFAULT_MAXCONN);
    assert_eq!(l.timeouts.connect, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(l.timeouts.http_request, l.timeouts.client);
    assert_eq!(l.timeouts.queue, l.timeouts.connect);
    assert_eq!((l.servers[0].weight, l.servers[0].maxconn), (1, None));
    let check = l.check.as_ref().unwrap();
    assert_eq!(check.probe, Probe::Tcp);
    assert_eq!(
        check.monitor,
        MonitorConfig::default(),
        "inter 2s rise 2 fall 3"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

const TWO: &str = "servers = [{ name = \"s1\", addr = \"127.0.0.1:8081\" }, { name = \"s2\", addr = \"127.0.0.1:8082\" }]\n";

#[test]
fn every_mistake_is_reported_with_its_line_and_fix() {
    let text = format!(
        r#"[[listen]]
name = "web"
bind = "127.0.0.1:8080"
mode = "tcp"
cookie = "SERVERID"
balance = "uri"
redirect_https = true
{TWO}
[[listen]]
name = "web"
bind = "127.0.0.1:8080"
mode = "http"
balance = "hdr()"
servers = [
  {{ name = "a", addr = "127.0.0.1:1", weight = 300 }},
  {{ name = "a", addr = "localhost:2" }},
]
timeouts = {{ connect = "5" }}
stats = {{ bind = "127.0.0.1:8404", auth = "admin" }}

[[listen]]
name = "empty"
bind = "127.0.0.1:8081"
servers = []
"#
    );
    let e = errors(&text);
    let want = [
        "lbd.toml:5:10: listen[0].cookie: cookie stickiness needs mode = \"http\" (this listener is in tcp mode)",
        "lbd.toml:6:11: listen[0].balance: balance = \"uri\" needs mode = \"http\" (this listener is in tcp mode)",
        "lbd.toml:7:18: listen[0].redirect_https: redirect_https needs mode = \"http\" (this listener is in tcp mode)",
        "lbd.toml:11:8: listen[1].name: \"web\" is used by another listener: names must be unique",
        "lbd.toml:12:8: listen[1].bind: 127.0.0.1:8080 is already bound by listen[0].bind: each address and port once",
        "lbd.toml:14:11: listen[1].balance: \"hdr()\" needs a header name: write e.g. \"hdr(host)\"",
        "lbd.toml:16:48: listen[1].servers[0].weight: 300 is out of range: a weight is 0 to 256 (HAProxy's)",
        "lbd.toml:17:12: listen[1].servers[1].name: \"a\" is also servers[0]: server names are unique within a listener",
        "lbd.toml:17:24: listen[1].servers[1].addr: \"localhost:2\" is not IP:port: write e.g. \"127.0.0.1:8081\"",
        "lbd.toml:19:24: listen[1].timeouts.connect: \"5\" has no unit: write e.g. \"5s\" or \"5ms\"",
        "lbd.toml:20:43: listen[1].stats.auth: is \"user:password\", both non-empty (e.g. \"admin:secret\")",
        "lbd.toml:25:11: listen[2].servers: no servers: add e.g. servers = [{ name = \"s1\", addr = \"127.0.0.1:8081\" }]",
    ];
    crate::diagnostics::assert_all_in(&e, &want);
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn redirect_https_belongs_on_the_plain_http_listener_and_needs_no_servers() {
    let ok = "[[listen]]\nname = \"http\"\nbind = \"127.0.0.1:8080\"\nmode = \"http\"\nredirect_https = true\n";
    let c = parse("lbd.toml", ok).expect("valid");
    assert!(c.listeners[0].redirect_https && c.listeners[0].servers.is_empty());
    assert_eq!(
        warnings(&format!("{ok}{TWO}")),
        [
            "lbd.toml:6:11: listen[0].servers: never used: a redirect_https listener answers every request with the redirect"
        ]
    );
    let e = errors(&format!(
        "{ok}tls = {{ cert = \"/dev/null\", key = \"/dev/null\" }}\n"
    ));
    assert_eq!(
        e,
        [
            "lbd.toml:5:18: listen[0].redirect_https: this listener already speaks TLS: redirect_https belongs on the plain-HTTP listener (remove it here)"
        ]
    );
}

#[test]
fn tls_termination_is_allowed_in_tcp_mode() {
    let c = parse(
        "lbd.toml",
        &format!("[[listen]]\nname = \"tls\"\nbind = \"127.0.0.1:8443\"\ntls = {{ cert = \"/dev/null\", key = \"/dev/null\" }}\n{TWO}"),
    )
    .expect("valid");
    assert_eq!(c.listeners[0].mode, Mode::Tcp);
    assert_eq!(c.listeners[0].tls.len(), 1);
}

#[test]
fn health_checks_are_http_or_tcp_and_map_onto_monitor_config() {
    let base = format!("[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\n{TWO}");
    let c = parse(
        "lbd.toml",
        &format!("{base}check = {{ http = \"/health\", interval = \"200ms\", timeout = \"1s\", fastinter = \"50ms\", downinter = \"5s\", rise = 1, fall = 2 }}\n"),
    )
    .expect("valid");
    let m = &c.listeners[0].check.as_ref().unwrap().monitor;
    assert_eq!(
        (
            m.interval,
            m.timeout,
            m.fastinter,
            m.downinter,
            m.rise,
            m.fall
        ),
        (
            Duration::from_millis(200),
            Duration::from_secs(1),
            Some(Duration::from_millis(50)),
            Some(Duration::from_secs(5)),
            1,
            2
        )
    );
    assert!(m.validate().is_ok());
    for (check, want) in [
        (
            "{ interval = \"1s\" }",
            "lbd.toml:5:9: listen[0].check: says what to probe: add `http = \"/health\"` or `tcp = true`",
        ),
        (
            "{ tcp = false }",
            "lbd.toml:5:17: listen[0].check.tcp: tcp = false: leave `check` out for no health check",
        ),
        (
            "{ http = \"/\", tcp = true }",
            "lbd.toml:5:29: listen[0].check.tcp: a check is `http = \"/path\"` or `tcp = true`, not both",
        ),
        (
            "{ http = \"health\" }",
            "lbd.toml:5:18: listen[0].check.http: \"health\": the path to GET, starting with '/' (e.g. \"/health\")",
        ),
        (
            "{ tcp = true, interval = \"0s\" }",
            "lbd.toml:5:34: listen[0].check.interval: is zero: checks need a positive time",
        ),
        (
            "{ tcp = true, rise = 0 }",
            "lbd.toml:5:30: listen[0].check.rise: 0: at least 1",
        ),
    ] {
        assert_eq!(
            errors(&format!("{base}check = {check}\n")),
            [want],
            "{check}"
        );
    }
}

#[test]
fn balance_names_the_lb_core_algorithm() {
    let base =
        format!("[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\nmode = \"http\"\n{TWO}");
    let of = |b: &str| {
        parse("lbd.toml", &format!("{base}balance = \"{b}\"\n"))
            .expect(b)
            .listeners[0]
            .balance
            .clone()
    };
    assert_eq!(of("leastconn"), Balance::LeastConnections);
    assert_eq!(of("source"), Balance::ConsistentHash(HashKey::Source));
    assert_eq!(
        of("hdr(X-Tenant)"),
        Balance::ConsistentHash(HashKey::Header(http::HeaderName::from_static("x-tenant")))
    );
    assert_eq!(of("p2c"), Balance::PowerOfTwoChoices);
    assert_eq!(
        warnings(&format!("{base}balance = \"first\"\n")),
        [
            "lbd.toml:5:11: listen[0].servers: balance = \"first\" fills each server up to its maxconn, and none has one: all traffic goes to the first server"
        ]
    );
}

#[test]
fn suspicious_but_valid_settings_draw_warnings() {
    let base = format!("[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\n{TWO}");
    assert_eq!(
        warnings(&format!(
            "{base}retries = 0\nredispatch = true\nstats = {{ bind = \"0.0.0.0:8404\" }}\n"
        )),
        [
            "lbd.toml:6:14: listen[0].redispatch: has no effect with retries = 0: redispatch moves a retry to another server",
            "lbd.toml:7:18: listen[0].stats.bind: 0.0.0.0:8404 is not a loopback address and there is no auth: anyone who reaches it reads the stats (add auth = \"user:password\")",
        ]
    );
    let w = warnings(
        "[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\nservers = [{ name = \"s1\", addr = \"127.0.0.1:8081\", verify = \"none\" }]\n",
    );
    assert_eq!(
        w,
        [
            "lbd.toml:4:61: listen[0].servers[0].verify: ignored: this server is plain TCP (add tls = true to use TLS)"
        ]
    );
}

#[test]
fn names_stats_and_binds_are_checked() {
    let base = "[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\n";
    let e = errors(&format!(
        "{base}servers = [{{ name = \"web 1\", addr = \"127.0.0.1:1\", maxconn = 0 }}]\nstats = {{ bind = \"127.0.0.1:8080\", uri = \"/metrics\" }}\ncookie = \"a;b\"\nmaxconn = -1\n"
    ));
    assert_eq!(
        e,
        [
            "lbd.toml:4:21: listen[0].servers[0].name: \"web 1\" contains ' ': use letters, digits, '-', '_', '.' and ':'",
            "lbd.toml:4:62: listen[0].servers[0].maxconn: 0: at least 1 (leave it out for no limit)",
            "lbd.toml:5:18: listen[0].stats.bind: 127.0.0.1:8080 is already bound by listen[0].bind: each address and port once",
            "lbd.toml:5:42: listen[0].stats.uri: /metrics serves the Prometheus metrics: pick another path",
            "lbd.toml:6:10: listen[0].cookie: cookie stickiness needs mode = \"http\" (this listener is in tcp mode)",
            "lbd.toml:6:10: listen[0].cookie: \"a;b\" is not a cookie name: use letters, digits and -_.!#$%&'*+^`|~",
            "lbd.toml:7:11: listen[0].maxconn: -1: at least 1",
        ]
    );
}

#[test]
fn unknown_keys_missing_keys_and_syntax_errors_name_the_line() {
    let e = errors("[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:80\"\nbalanse = \"first\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("lbd.toml:4:1: unknown field `balanse`"),
        "{e:?}"
    );
    let e = errors("[[listen]]\nname = \"w\"\n");
    assert!(
        e[0].starts_with("lbd.toml:1:1: missing field `bind`"),
        "{e:?}"
    );
    let e = errors("[[listen]\n");
    assert!(e[0].starts_with("lbd.toml:1:"), "{e:?}");
    assert_eq!(
        errors("# nothing\n"),
        ["lbd.toml:1:1: listen: no [[listen]] section: add one with name, bind and servers"]
    );
}

#[test]
fn a_tls_server_may_name_its_ca_file() {
    let base = "[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8080\"\n";
    let c = parse(
        "lbd.toml",
        &format!("{base}servers = [{{ name = \"s1\", addr = \"127.0.0.1:8443\", tls = true, ca = \"/etc/ssl/certs/ca-certificates.crt\" }}]\n"),
    )
    .expect("valid");
    assert_eq!(c.listeners[0].servers[0].tls, Some(Verify::Required));
    assert_eq!(
        c.listeners[0].servers[0].ca,
        Some("/etc/ssl/certs/ca-certificates.crt".into())
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        warnings(&format!(
            "{base}servers = [\n  {{ name = \"s1\", addr = \"127.0.0.1:1\", ca = \"/dev/null\" }},\n  {{ name = \"s2\", addr = \"127.0.0.1:2\", tls = true, verify = \"none\", ca = \"/dev/null\" }},\n  {{ name = \"s3\", addr = \"127.0.0.1:3\", tls = true, ca = \"/nonexistent/ca.pem\" }},\n]\n"
        )),
        [
            "lbd.toml:5:45: listen[0].servers[0].ca: ignored: this server is plain TCP (add tls = true to use TLS)",
            "lbd.toml:6:74: listen[0].servers[1].ca: ignored: verify = \"none\" checks no certificate (remove ca, or verify)",
            "lbd.toml:7:57: listen[0].servers[2].ca: \"/nonexistent/ca.pem\" is not a file here: lbd will not start until it is",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{base}servers = [{{ name = \"s1\", addr = \"127.0.0.1:1\", tls = true, ca = \"\" }}]\n"
        )),
        [
            "lbd.toml:4:66: listen[0].servers[0].ca: is empty: give the CA PEM file's path (leave ca out for the system's CAs)"
        ]
    );
}

#[test]
fn a_listener_may_list_several_certificates() {
    let base =
        format!("[[listen]]\nname = \"w\"\nbind = \"127.0.0.1:8443\"\nmode = \"http\"\n{TWO}");
    let c = parse(
        "lbd.toml",
        &format!("{base}tls = [\n  {{ cert = \"/dev/null\", key = \"/dev/zero\" }},\n  {{ cert = \"/dev/zero\", key = \"/dev/null\" }},\n]\n"),
    )
    .expect("valid");
    assert_eq!(
        c.listeners[0].tls,
        [
            TlsFiles {
                cert: "/dev/null".into(),
                key: "/dev/zero".into()
            },
            TlsFiles {
                cert: "/dev/zero".into(),
                key: "/dev/null".into()
            },
        ]
    );
    let files = |list: &str| format!("{base}tls = {list}\n");
    assert_eq!(
        warnings(&files(
            "[{ cert = \"/a.pem\", key = \"/a.key\" }, { cert = \"/a.pem\", key = \"/a.key\" }]"
        )),
        [
            "lbd.toml:6:17: listen[0].tls[0].cert: \"/a.pem\" is not a file here: lbd will not start until it is",
            "lbd.toml:6:33: listen[0].tls[0].key: \"/a.key\" is not a file here: lbd will not start until it is",
            "lbd.toml:6:45: listen[0].tls[1]: the same files as tls[0]: never chosen (remove it)",
            "lbd.toml:6:54: listen[0].tls[1].cert: \"/a.pem\" is not a file here: lbd will not start until it is",
            "lbd.toml:6:70: listen[0].tls[1].key: \"/a.key\" is not a file here: lbd will not start until it is",
        ]
    );
    assert_eq!(
        errors(&files("[]")),
        [
            "lbd.toml:6:7: listen[0].tls: is empty: list at least one { cert = \"FILE\", key = \"FILE\" }, or leave tls out for plain TCP/HTTP"
        ]
    );
    assert_eq!(
        errors(&files(
            "[{ cert = \"/dev/null\", key = \"/dev/null\" }, { cert = \"\", key = \"/dev/null\" }]"
        )),
        ["lbd.toml:6:60: listen[0].tls[1].cert: is empty: give the PEM file's path"]
    );
    let e = errors(&files(
        "[{ cert = \"/dev/null\", key = \"/dev/null\" }, { cert = \"/dev/null\", kye = \"/dev/null\" }]",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("lbd.toml:6:"), "{e:?}");
    assert!(e[0].contains("unknown field `kye`"), "{e:?}");
    let e = errors(&files("\"/etc/ha/site.pem\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("lbd.toml:6:7: invalid type: string \"/etc/ha/site.pem\", expected { cert = \"FILE\", key = \"FILE\" }, or a list of them"),
        "{e:?}"
    );
}

#[test]
fn a_global_maxconn_before_the_listeners_bounds_them_all() {
    let config = parse("lbd.toml", &format!("maxconn = 8000\n{DESIGN}")).expect("accepted");
    assert_eq!(config.maxconn, Some(8000));
    assert_eq!(parse("lbd.toml", DESIGN).expect("accepted").maxconn, None);
    let e = errors(&format!("maxconn = 0\n{DESIGN}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("lbd.toml:1:11: maxconn: 0: at least 1"),
        "{e:?}"
    );
}
