//! The Prometheus text exposition format 0.0.4, as the page's `/metrics` writes it: each
//! [`Family`] writes its `# HELP` and `# TYPE` lines, then its samples, with label values
//! escaped as the format wants. A [`SnapshotSource`](super::SnapshotSource) appending metrics
//! of its own to `/metrics` writes them with it too.
//!
//! ```
//! use lb_core::stats_page::prometheus::Family;
//!
//! let mut out = String::new();
//! let mut f = Family::new(&mut out, "demo_up", "gauge", "1 when up.");
//! f.sample(&[("server", "web\"1")], 1.0);
//! assert_eq!(out, "# HELP demo_up 1 when up.\n# TYPE demo_up gauge\ndemo_up{server=\"web\\\"1\"} 1\n");
//! ```

use std::fmt::Write as _;

/// The Content-Type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family in a table of families with one sample per item (a server, an instance): its
/// name (or the part after a prefix), type, help, and the value of an item, if it has one.
pub type Metric<T> = (
    &'static str,
    &'static str,
    &'static str,
    fn(&T) -> Option<f64>,
);

/// One metric family being written: its samples follow its HELP and TYPE lines.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Family<'_> {
    /// Starts family `name` of type `kind` (`gauge`, `counter`) in `out`.
    pub fn new<'a>(
        out: &'a mut String,
        name: impl Into<String>,
        kind: &str,
        help: &str,
    ) -> Family<'a> {
        let name = name.into();
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    /// Writes one sample with these labels (names as given, values escaped).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(&self.name);
        for (k, (label, v)) in labels.iter().enumerate() {
            self.out.push(if k == 0 { '{' } else { ',' });
            let _ = write!(self.out, "{label}=\"{}\"", escape(v));
        }
        if !labels.is_empty() {
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text as the format wants it: `\` and newlines escaped (quotes stay).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value for a flag: 1 or 0.
pub fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A counter's sample value (exact up to 2^53, far beyond what a daemon counts).
pub fn count(n: u64) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline_per_format_0_0_4() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
        let mut out = String::new();
        let mut f = Family::new(&mut out, "x_total", "counter", "Lines\nand \\ slashes.");
        f.sample(&[], 3.0);
        f.sample(&[("a", "1"), ("b", "\"")], 0.5);
        assert_eq!(
            out,
            "# HELP x_total Lines\\nand \\\\ slashes.\n# TYPE x_total counter\nx_total 3\nx_total{a=\"1\",b=\"\\\"\"} 0.5\n"
        );
    }
}
