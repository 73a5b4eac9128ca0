//! The HTML page: one table per listener (its own row, then one row per server) with HAProxy's
//! columns, states in color, and a `<meta refresh>` so that it updates itself. No script, no
//! external resource: it works offline and under a strict Content-Security-Policy.

use std::fmt::Write as _;
use std::time::Duration;

use super::METRICS_URI;
use super::prometheus;
use super::section::Section;
use super::snapshot::{Counters, ListenerStatus, Mode, ServerState, ServerStatus, Snapshot};

/// Seconds between refreshes unless `?refresh=N` says otherwise.
pub const DEFAULT_REFRESH: u32 = 5;

/// The longest refresh `?refresh=N` may ask for (an hour).
pub const MAX_REFRESH: u32 = 3600;

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;font-size:13px;margin:1em;color:#222}
h1{font-size:18px;margin:0 0 .3em}h2{font-size:15px;margin:1.2em 0 .3em}
h2 small{font-weight:normal;color:#555}p.meta{color:#555;margin:0}
table{border-collapse:collapse;margin-bottom:.5em}
th,td{border:1px solid #bbb;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#dde4ee}td.name,td.check,td.error{text-align:left}
td.error{white-space:normal;color:#900;max-width:28em}
tr.listener{background:#eef;font-weight:bold}
.state-up{background:#c6efc6}.state-down{background:#f5b5b5}
.state-maint{background:#d2a679}.state-nocheck{background:#e2e2e2}
.going-down{background:#f3f08a}.going-up{background:#f7c88c}
td.status{font-weight:bold}.legend span{padding:1px 6px;margin-right:4px}
table.section td{text-align:left}
";

/// The page for `snapshot`, titled `title`, served at `uri` (its JSON at `uri;json`, the
/// metrics at [`METRICS_URI`]), refreshing every `refresh` seconds (`None`: never).
///
/// ```
/// use lb_core::stats_page::{Snapshot, html};
///
/// let page = html::render(&Snapshot::default(), "lbd statistics", "/stats", Some(5));
/// assert!(page.contains("<title>lbd statistics</title>"));
/// assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
/// ```
pub fn render(snapshot: &Snapshot, title: &str, uri: &str, refresh: Option<u32>) -> String {
    let mut out = String::with_capacity(4096 + 1024 * snapshot.listeners.len());
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    if let Some(n) = refresh {
        let _ = writeln!(out, "<meta http-equiv=\"refresh\" content=\"{n}\">");
    }
    let title = escape(title);
    let _ = write!(
        out,
        "<title>{title}</title>\n<style>\n{STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n<p class=\"meta\">uptime <span id=\"uptime\">{}</span>; {}; also as <a href=\"{}\">JSON</a> and <a href=\"{}\">Prometheus metrics</a></p>\n",
        human_duration(snapshot.uptime),
        match refresh {
            Some(n) => format!(
                "refreshes every {n} s (<a href=\"{}?refresh=0\">stop</a>)",
                escape(uri)
            ),
            None => format!(
                "not refreshing (<a href=\"{}\">refresh every {DEFAULT_REFRESH} s</a>)",
                escape(uri)
            ),
        },
        escape(&format!("{uri};json")),
        METRICS_URI,
    );
    out.push_str("<p class=\"legend\">");
    for (class, text) in [
        ("state-up", "UP"),
        ("going-down", "UP, going down"),
        ("state-down", "DOWN"),
        ("going-up", "DOWN, going up"),
        ("state-maint", "MAINT"),
        ("state-nocheck", "no check"),
    ] {
        let _ = write!(out, "<span class=\"{class}\">{text}</span>");
    }
    out.push_str("</p>\n");
    for l in &snapshot.listeners {
        listener(&mut out, l);
    }
    for s in &snapshot.sections {
        section(&mut out, s);
    }
    out.push_str("</body></html>\n");
    out
}

fn listener(out: &mut String, l: &ListenerStatus) {
    let name = escape(&l.name);
    let up = l.servers.iter().filter(|s| s.state.takes_traffic()).count();
    let _ = write!(
        out,
        "<h2 id=\"{name}\">{name} <small>{} · {} · {} · {up}/{} servers up</small></h2>\n<table class=\"listener\">\n",
        l.mode.name(),
        l.bind,
        escape(&l.balance),
        l.servers.len(),
    );
    out.push_str(concat!(
        "<thead><tr><th rowspan=\"2\">Name</th><th colspan=\"2\">Queue</th><th colspan=\"4\">Sessions</th>",
        "<th rowspan=\"2\">Requests</th><th colspan=\"2\">Bytes</th><th colspan=\"6\">Responses</th>",
        "<th colspan=\"2\">Errors</th><th colspan=\"5\">Server</th></tr>\n<tr>",
        "<th>Cur</th><th>Max</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th>",
        "<th>In</th><th>Out</th><th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>Other</th>",
        "<th>Conn</th><th>Resp</th><th>Status</th><th>Last change</th><th>Weight</th><th>Check</th><th>Last error</th>",
        "</tr></thead>\n<tbody>\n"
    ));
    let http = l.mode == Mode::Http;
    let queued: u64 = l.servers.iter().map(|s| s.queue.current).sum();
    let _ = write!(
        out,
        "<tr id=\"{name}/\" class=\"listener\"><td class=\"name\">{name}</td><td>{queued}</td><td></td>"
    );
    counters(out, http, &l.counters);
    let conn: u64 = l.servers.iter().map(|s| s.connect_errors).sum();
    let resp: u64 = l.servers.iter().map(|s| s.response_errors).sum();
    let weight: u64 = l
        .servers
        .iter()
        .filter(|s| s.state.takes_traffic())
        .map(|s| u64::from(s.weight))
        .sum();
    let _ = writeln!(
        out,
        "<td>{conn}</td><td>{resp}</td><td class=\"status\">OPEN</td><td></td><td>{weight}</td><td class=\"check\"></td><td class=\"error\"></td></tr>"
    );
    for s in &l.servers {
        server(out, &name, http, s);
    }
    out.push_str("</tbody></table>\n");
}

/// A section of the embedder's: its heading, its column names, a row per row (id
/// `title/first cell`, class `row` and its tone's), short rows padded with empty cells.
fn section(out: &mut String, s: &Section) {
    let title = escape(&s.title);
    let _ = write!(
        out,
        "<h2 id=\"{title}\">{title}</h2>\n<table class=\"section\">\n<thead><tr>"
    );
    for column in &s.columns {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &s.rows {
        let first = row.cells.first().map(|c| escape(c)).unwrap_or_default();
        let tone = row
            .tone
            .map(|t| format!(" {}", t.class()))
            .unwrap_or_default();
        let _ = write!(out, "<tr id=\"{title}/{first}\" class=\"row{tone}\">");
        for (k, cell) in row.cells.iter().enumerate() {
            let class = if k == 0 { " class=\"name\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        for _ in row.cells.len()..s.columns.len() {
            out.push_str("<td></td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn server(out: &mut String, listener: &str, http: bool, s: &ServerStatus) {
    let name = escape(&s.name);
    let (label, transition) = state_label(s);
    let _ = write!(
        out,
        "<tr id=\"{listener}/{name}\" class=\"server state-{}{}\" title=\"{}\"><td class=\"name\">{name}</td><td>{}</td><td>{}</td>",
        s.state.slug(),
        transition.map(|t| format!(" {t}")).unwrap_or_default(),
        s.addr,
        s.queue.current,
        s.queue.max,
    );
    counters(out, http, &s.counters);
    let (check, error) = match &s.check {
        Some(c) => (
            format!(
                "<span title=\"rise {} fall {}, {} checks\">{}</span>",
                c.rise,
                c.fall,
                c.checks,
                escape(&c.status)
            ),
            c.last_error.as_deref().map(escape).unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    let _ = writeln!(
        out,
        "<td>{}</td><td>{}</td><td class=\"status\">{label}</td><td>{}</td><td>{}</td><td class=\"check\">{check}</td><td class=\"error\">{error}</td></tr>",
        s.connect_errors,
        s.response_errors,
        human_duration(s.since),
        s.weight,
    );
}

/// The state as HAProxy writes it, with the rise/fall progress while it is changing ("UP 1/3":
/// one failure of the three that take it down), and the CSS class of that transition.
fn state_label(s: &ServerStatus) -> (String, Option<&'static str>) {
    let label = s.state.label();
    match (&s.check, s.state) {
        (Some(c), ServerState::Up) if c.failures > 0 => (
            format!("{label} {}/{}", c.failures, c.fall),
            Some("going-down"),
        ),
        (Some(c), ServerState::Down) if c.successes > 0 => (
            format!("{label} {}/{}", c.successes, c.rise),
            Some("going-up"),
        ),
        _ => (label.to_owned(), None),
    }
}

/// The sessions, requests, bytes and responses cells; requests and responses are `-` in TCP
/// mode, where there are none.
fn counters(out: &mut String, http: bool, c: &Counters) {
    let dash = |n: u64| if http { n.to_string() } else { "-".into() };
    let limit = c.limit.map(|l| l.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td><td>{limit}</td><td>{}</td><td>{}</td><td title=\"{}\">{}</td><td title=\"{}\">{}</td>",
        c.current,
        c.max,
        c.total,
        dash(c.requests),
        c.bytes_in,
        human_bytes(c.bytes_in),
        c.bytes_out,
        human_bytes(c.bytes_out)
    );
    for (_, n) in c.responses.by_class() {
        let _ = write!(out, "<td>{}</td>", dash(n));
    }
}

/// Text for HTML content and attribute values: `& < > " '` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration in the two largest units that matter, as HAProxy's page writes it: `"45s"`,
/// `"2m13s"`, `"1h02m"`, `"3d04h"`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A byte count in binary units with one decimal: `"512 B"`, `"1.5 KiB"`, `"3.0 GiB"`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = prometheus::count(n) / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    /// The `<tr ...>` line whose id is `id`.
    fn row<'a>(page: &'a str, id: &str) -> &'a str {
        let start = page
            .find(&format!("<tr id=\"{id}\""))
            .unwrap_or_else(|| panic!("no row {id} in\n{page}"));
        let len = page[start..].find("</tr>").unwrap();
        &page[start..start + len]
    }

    #[test]
    fn every_server_has_a_row_with_its_state_class_and_word() {
        let page = render(&fixture::snapshot(), "lbd statistics", "/stats", Some(5));
        let web1 = row(&page, "web &lt;&amp;&gt;/web1");
        assert!(web1.contains("class=\"server state-up\""), "{web1}");
        assert!(web1.contains("<td class=\"status\">UP</td>"), "{web1}");
        assert!(web1.contains("L7OK/200 in 1ms"), "{web1}");
        let web2 = row(&page, "web &lt;&amp;&gt;/web2");
        assert!(
            web2.contains("class=\"server state-down going-up\""),
            "{web2}"
        );
        assert!(web2.contains(">DOWN 1/2</td>"), "{web2}");
        assert!(
            web2.contains("connect: Connection refused &lt;os error 111&gt;"),
            "the last check error is shown, escaped: {web2}"
        );
        let web3 = row(&page, "web &lt;&amp;&gt;/web&quot;3&quot;");
        assert!(web3.contains("state-up going-down"), "{web3}");
        assert!(web3.contains(">UP 1/3</td>"), "{web3}");
        assert!(row(&page, "db/pg1").contains("state-nocheck"));
        assert!(row(&page, "db/pg1").contains(">no check</td>"));
        assert!(row(&page, "db/pg2").contains("state-maint"));
        assert!(row(&page, "db/pg2").contains(">MAINT</td>"));
    }

    #[test]
    fn names_are_escaped_everywhere() {
        let page = render(&fixture::snapshot(), "lbd statistics", "/st\"ats", None);
        assert!(!page.contains("web <&>"), "raw listener name in the page");
        assert!(!page.contains("web\"3\""), "raw server name in the page");
        assert!(page.contains("<h2 id=\"web &lt;&amp;&gt;\">web &lt;&amp;&gt; <small>"));
        assert!(page.contains("href=\"/st&quot;ats;json\""));
    }

    #[test]
    fn columns_show_sessions_bytes_responses_and_time_since_change() {
        let page = render(&fixture::snapshot(), "lbd statistics", "/stats", Some(5));
        let web1 = row(&page, "web &lt;&amp;&gt;/web1");
        // queue 4/8; sessions 2 9 100 1234; requests; bytes; 1xx..other; errors; since; weight.
        let cells: Vec<&str> = web1
            .split("<td")
            .skip(1)
            .map(|c| {
                let c = &c[c.find('>').unwrap() + 1..];
                &c[..c.find("</td>").unwrap_or(c.len())]
            })
            .collect();
        assert_eq!(
            &cells[..20],
            [
                "web1", "4", "8", "2", "9", "100", "1234", "5678", "1.5 KiB", "3.0 MiB", "0",
                "5000", "0", "0", "7", "0", "3", "1", "UP", "2m13s"
            ]
        );
        let listener = row(&page, "web &lt;&amp;&gt;/");
        assert!(listener.contains("<td>17034</td>"), "{listener}");
        // TCP listeners have no requests or responses.
        assert!(row(&page, "db/pg1").contains("<td>-</td>"));
        assert!(page.contains("2/3 servers up"));
        assert!(page.contains("<span id=\"uptime\">1h02m</span>"));
    }

    #[test]
    fn the_page_refreshes_itself_unless_told_not_to() {
        let page = render(&fixture::snapshot(), "lbd statistics", "/stats", Some(7));
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"7\">"));
        let page = render(&fixture::snapshot(), "lbd statistics", "/stats", None);
        assert!(!page.contains("http-equiv=\"refresh\""));
        assert!(!page.contains("<script"), "no script");
        assert!(!page.contains("src="), "no external resource");
    }

    #[test]
    fn a_section_is_a_table_after_the_listeners_with_a_tone_per_row() {
        let page = render(&fixture::with_vrrp(), "lbd statistics", "/stats", None);
        let heading = "<h2 id=\"VRRP &lt;instances&gt;\">VRRP &lt;instances&gt;</h2>";
        let at = page.find(heading).expect(&page);
        assert!(
            at > page.find("<h2 id=\"db\">").unwrap(),
            "after the listeners"
        );
        assert!(page[at..].contains(
            "<thead><tr><th>Instance</th><th>State</th><th>Priority</th><th>VIPs</th></tr></thead>"
        ));
        assert_eq!(
            row(&page, "VRRP &lt;instances&gt;/VI_1"),
            "<tr id=\"VRRP &lt;instances&gt;/VI_1\" class=\"row state-up\"><td class=\"name\">VI_1</td><td>MASTER</td><td>150</td><td>10.0.0.100/24</td>"
        );
        assert_eq!(
            row(&page, "VRRP &lt;instances&gt;/VI_&lt;2&gt;"),
            "<tr id=\"VRRP &lt;instances&gt;/VI_&lt;2&gt;\" class=\"row state-nocheck\"><td class=\"name\">VI_&lt;2&gt;</td><td>BACKUP</td><td></td><td></td>",
            "short rows are padded, cells escaped"
        );
        let vi3 = row(&page, "VRRP &lt;instances&gt;/VI_3");
        assert!(
            vi3.starts_with("<tr id=\"VRRP &lt;instances&gt;/VI_3\" class=\"row\">"),
            "{vi3}"
        );
        assert!(vi3.ends_with("<td></td><td>extra</td>"), "{vi3}");
    }

    #[test]
    fn durations_read_like_haproxys() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::from_millis(999)), "0s");
        assert_eq!(human_duration(s(59)), "59s");
        assert_eq!(human_duration(s(133)), "2m13s");
        assert_eq!(human_duration(s(3600 + 120 + 5)), "1h02m");
        assert_eq!(human_duration(s(3 * 86400 + 4 * 3600 + 59)), "3d04h");
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
