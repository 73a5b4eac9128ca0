//! Durations as the config writes them: `"1s"`, `"100ms"`, `"1m30s"`, `"2h"` (humantime's
//! common subset, without the dependency).

use std::time::Duration;

/// Parses `"1s"`, `"10ms"`, `"1m30s"`, `"0s"`: one or more `<integer><unit>` parts, units `ms`,
/// `s`, `m`, `h`. The error says what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty duration: write e.g. \"1s\" or \"100ms\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: write e.g. \"1s\", \"100ms\", \"1m30s\""
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "" => {
                return Err(format!(
                    "{text:?} has no unit: write e.g. \"{value}s\" or \"{value}ms\""
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_the_config_uses() {
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(
            parse("").unwrap_err(),
            "an empty duration: write e.g. \"1s\" or \"100ms\""
        );
        assert_eq!(
            parse("5").unwrap_err(),
            "\"5\" has no unit: write e.g. \"5s\" or \"5ms\""
        );
        assert_eq!(
            parse("5sec").unwrap_err(),
            "\"5sec\": unknown unit \"sec\" (use ms, s, m or h)"
        );
        assert!(parse("fast").unwrap_err().contains("is not a duration"));
    }
}
