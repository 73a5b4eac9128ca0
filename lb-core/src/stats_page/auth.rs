//! Basic authentication (RFC 7617) for the page, as HAProxy's `stats auth user:pass`.

use std::hint::black_box;

/// The one user and password the page admits (HTTP basic authentication, as HAProxy's
/// `stats auth user:pass`); the page asks for them on every path. Its `Debug` never shows the
/// password.
///
/// ```
/// use lb_core::stats_page::Credentials;
///
/// let admin = Credentials::new("admin", "secret");
/// assert!(!format!("{admin:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, even in a debug print.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `user` with `password`. The user may not be empty nor hold a `:` (RFC 7617: the user
    /// ends at the first one), which [`StatsServer::start`](super::StatsServer::start) checks.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            pass: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether a browser could send them: a user, and no `:` in it.
    pub(super) fn is_usable(&self) -> bool {
        !self.user.is_empty() && !self.user.contains(':')
    }

    /// Whether an `Authorization` header value (`Basic base64(user:pass)`) carries them. Any
    /// other scheme, bad base64 or a missing `:` is a refusal.
    pub(super) fn admit(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, token)| decode_base64(token.trim()))
        else {
            return false;
        };
        let Some(colon) = given.iter().position(|&b| b == b':') else {
            return false;
        };
        // Both halves compared whole, whatever the first says: no early exit to time.
        let user = constant_time_eq(&given[..colon], self.user.as_bytes());
        let pass = constant_time_eq(&given[colon + 1..], self.pass.as_bytes());
        user & pass
    }
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (k, &e) in expected.iter().enumerate() {
        diff |= black_box(given.get(k).copied().unwrap_or(!e) ^ e);
    }
    black_box(diff) == 0
}

/// Standard base64 with padding (RFC 4648 §4), as browsers send it; `None` when it is not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (k, quad) in text.chunks(4).enumerate() {
        let last = k + 1 == text.len() / 4;
        let pad = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut bits = 0u32;
        for &c in &quad[..4 - pad] {
            bits = bits << 6 | u32::from(sextet(c)?);
        }
        bits <<= 6 * pad;
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_the_rfc_4648_test_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("admin:secret", "YWRtaW46c2VjcmV0"),
        ] {
            assert_eq!(
                decode_base64(coded).as_deref(),
                Some(plain.as_bytes()),
                "{coded}"
            );
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!", "Zm 9", "====", "é"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_configured_user_and_password_are_admitted_rfc_7617() {
        let c = Credentials::new("admin", "secret");
        assert!(c.admit(Some("Basic YWRtaW46c2VjcmV0")));
        assert!(
            c.admit(Some("basic  YWRtaW46c2VjcmV0 ")),
            "the scheme is case-insensitive"
        );
        for refused in [
            None,
            Some(""),
            Some("Basic"),
            Some("Basic "),
            Some("Bearer YWRtaW46c2VjcmV0"),
            Some("Basic YWRtaW46c2VjcmV1"),     // admin:secreu
            Some("Basic YWRtaW46c2VjcmV0eA=="), // admin:secretx
            Some("Basic YWRtaW46"),             // admin:
            Some("Basic YWRtaW4="),             // admin (no colon)
            Some("Basic !!!!"),
            Some("Basic \u{00e9}\u{00e9}"),
        ] {
            assert!(!c.admit(refused), "{refused:?}");
        }
        // A password with a colon: the user ends at the first one (RFC 7617 §2).
        let c = Credentials::new("a", "b:c");
        assert!(c.admit(Some("Basic YTpiOmM=")));
        assert!(
            !format!("{c:?}").contains("b:c"),
            "the password never prints"
        );
    }

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
