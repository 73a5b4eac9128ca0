//! What the daemons' configuration checkers share: a mistake with its place in the file
//! ([`ConfigError`], shown as `file:line:column: key: message`) and the collector that gathers
//! every mistake and warning of one file before any is reported.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::duration;

/// One mistake (or warning) in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key (`instance[0].vrid`), or empty for a syntax error.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.key, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads `path` and checks it with `parse` (a daemon's `config::parse`): the configuration, or
/// the lines a daemon prints before it exits 1 (`DAEMON: cannot read ...`, or every mistake as
/// `file:line:column: key: message` then `DAEMON: N error(s) in FILE`).
pub fn load<T>(
    daemon: &str,
    path: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{daemon}: cannot read {path}: {e}")])?;
    parse(path, &text).map_err(|errors| {
        let mut lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        lines.push(format!("{daemon}: {} error(s) in {path}", errors.len()));
        lines
    })
}

/// [`load`] at a daemon's start: the configuration, its `warnings` printed on stderr
/// (`warning: ...`); or, when it cannot run, every line printed and exit code 1.
pub fn load_at_start<T>(
    daemon: &str,
    path: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, Vec<ConfigError>>,
    warnings: impl FnOnce(&T) -> &[ConfigError],
) -> Result<T, std::process::ExitCode> {
    let config = load(daemon, path, parse).map_err(|lines| {
        for line in lines {
            eprintln!("{line}");
        }
        std::process::ExitCode::from(1)
    })?;
    for w in warnings(&config) {
        eprintln!("warning: {w}");
    }
    Ok(config)
}

/// The start of a daemon's `config::parse`: `text` as TOML in the shape `T`, with a report to
/// collect what checking it finds; or the syntax (or shape) error alone.
pub(crate) fn parse_toml<'a, T: serde::de::DeserializeOwned>(
    file: &'a str,
    text: &'a str,
) -> Result<(Report<'a>, T), Vec<ConfigError>> {
    let mut r = Report::new(file, text);
    match toml::from_str(text) {
        Ok(raw) => Ok((r, raw)),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            r.at(span, String::new(), e.message().trim().to_owned());
            Err(r.errors)
        }
    }
}

/// The messages `parse` refuses `text` with (`file` names it), for the checkers' tests.
#[cfg(test)]
pub(crate) fn refused<T: fmt::Debug>(
    parse: impl FnOnce(&str, &str) -> Result<T, Vec<ConfigError>>,
    file: &str,
    text: &str,
) -> Vec<String> {
    parse(file, text)
        .expect_err("refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Fails unless one of `messages` contains `part`, for the checkers' tests.
#[cfg(test)]
pub(crate) fn assert_mentions(messages: &[String], part: &str) {
    assert!(
        messages.iter().any(|m| m.contains(part)),
        "missing {part}\n got: {messages:#?}"
    );
}

/// Fails unless every one of `want` is among `messages`, for the checkers' tests.
#[cfg(test)]
pub(crate) fn assert_all_in(messages: &[String], want: &[&str]) {
    for w in want {
        assert!(
            messages.iter().any(|m| m == w),
            "missing {w}\n got: {messages:#?}"
        );
    }
}

/// Fails unless one of `messages` ends with `end`, for the checkers' tests.
#[cfg(test)]
pub(crate) fn assert_ends(messages: &[String], end: &str) {
    assert!(
        messages.iter().any(|m| m.ends_with(end)),
        "missing {end}\n got: {messages:#?}"
    );
}

/// Collects errors and warnings with their positions.
pub(crate) struct Report<'a> {
    file: &'a str,
    text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    /// An empty report on `text`, read from `file`.
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Report {
            file,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&self, span: Range<usize>, key: String, message: String) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key,
            message,
        }
    }

    /// An error at `span` of the file.
    pub(crate) fn at(&mut self, span: Range<usize>, key: String, message: String) {
        let e = self.error(span, key, message);
        self.errors.push(e);
    }

    /// A warning at `span` of the file.
    pub(crate) fn warn(&mut self, span: Range<usize>, key: String, message: String) {
        let e = self.error(span, key, message);
        self.warnings.push(e);
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// A key that takes one of a few words (`choices`, with the value each stands for): `default`
/// when absent; another word is reported (`"WORD": expected`) and stands for `fallback`.
pub(crate) fn choice<T: Copy>(
    r: &mut Report<'_>,
    value: &Option<Spanned<String>>,
    key: String,
    choices: &[(&str, T)],
    (default, fallback): (T, T),
    expected: &str,
) -> T {
    if value.is_none() {
        return default;
    }
    checked(r, value, key, |word| {
        choices
            .iter()
            .find(|(w, _)| *w == word)
            .map(|&(_, chosen)| chosen)
            .ok_or_else(|| format!("{word:?}: {expected}"))
    })
    .unwrap_or(fallback)
}

/// A text key that must pass `valid`: its value, or (when absent, or reported as `"VALUE"
/// why`) none.
pub(crate) fn text_where(
    r: &mut Report<'_>,
    value: &Option<Spanned<String>>,
    key: String,
    valid: impl FnOnce(&str) -> bool,
    why: &str,
) -> Option<String> {
    checked(r, value, key, |s| {
        if valid(s) {
            Ok(s.to_owned())
        } else {
            Err(format!("{s:?} {why}"))
        }
    })
}

/// A text key read by `read`: its result, or none when absent or when `read` refuses it (its
/// message reported at the value).
fn checked<T>(
    r: &mut Report<'_>,
    value: &Option<Spanned<String>>,
    key: String,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let v = value.as_ref()?;
    match read(v.get_ref()) {
        Ok(t) => Some(t),
        Err(message) => {
            r.at(v.span(), key, message);
            None
        }
    }
}

/// An integer key: `default` when absent; a value outside `range` is reported (`message`
/// says why, given the value) and returned as it is.
pub(crate) fn integer_in(
    r: &mut Report<'_>,
    value: &Option<Spanned<i64>>,
    key: String,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    message: impl FnOnce(i64) -> String,
) -> i64 {
    let Some(v) = value else { return default };
    let n = *v.get_ref();
    if !range.contains(&n) {
        r.at(v.span(), key, message(n));
    }
    n
}

/// A duration key that must be above zero: as [`duration_of`], and a zero value is reported
/// as `is zero: WHY` (and returned as it is, checking goes on).
pub(crate) fn positive_duration(
    r: &mut Report<'_>,
    value: &Option<Spanned<String>>,
    key: String,
    default: Duration,
    why: &str,
) -> Duration {
    let d = duration_of(r, value, key.clone(), default);
    if let (Some(v), true) = (value, d.is_zero()) {
        r.at(v.span(), key, format!("is zero: {why}"));
    }
    d
}

/// A duration key: `default` when absent, else its value; a mistake is reported (and the
/// default returned so that checking goes on).
pub(crate) fn duration_of(
    r: &mut Report<'_>,
    value: &Option<Spanned<String>>,
    key: String,
    default: Duration,
) -> Duration {
    match value {
        None => default,
        Some(v) => match duration::parse(v.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                r.at(v.span(), key, e);
                default
            }
        },
    }
}
