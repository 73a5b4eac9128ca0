//! `balance`: HAProxy's algorithm names, parsed into the lb-core algorithm that implements each.

use std::fmt;

use http::HeaderName;
use lb_core::HashKey;

/// A listener's balancing algorithm, named after the lb-core type that runs it.
///
/// | `balance =` | variant | lb-core |
/// |---|---|---|
/// | `"roundrobin"` (the default, as HAProxy's) | [`RoundRobin`](Balance::RoundRobin) | [`lb_core::RoundRobin`] |
/// | `"static-rr"` | [`StaticRoundRobin`](Balance::StaticRoundRobin) | [`lb_core::StaticRoundRobin`] |
/// | `"leastconn"` | [`LeastConnections`](Balance::LeastConnections) | [`lb_core::LeastConnections`] |
/// | `"source"` | [`ConsistentHash`](Balance::ConsistentHash)`(HashKey::Source)` | [`lb_core::ConsistentHash`] |
/// | `"uri"` (http mode) | [`ConsistentHash`](Balance::ConsistentHash)`(HashKey::Uri { whole: false })` | [`lb_core::ConsistentHash`] |
/// | `"hdr(NAME)"` (http mode) | [`ConsistentHash`](Balance::ConsistentHash)`(HashKey::Header(NAME))` | [`lb_core::ConsistentHash`] |
/// | `"random"` | [`Random`](Balance::Random) | [`lb_core::Random`] |
/// | `"first"` | [`First`](Balance::First) | [`lb_core::First`] |
/// | `"p2c"` | [`PowerOfTwoChoices`](Balance::PowerOfTwoChoices) | [`lb_core::PowerOfTwoChoices::in_flight`] |
///
/// The hash algorithms always hash consistently (Maglev), as HAProxy's `hash-type consistent`:
/// removing a server moves only its own share of the keys. HAProxy's default `hash-type
/// map-based` reshuffles most keys instead; nothing depends on that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Balance {
    /// `roundrobin`: weighted turns, weights may change at run time.
    RoundRobin,
    /// `static-rr`: weighted turns on the configured weights.
    StaticRoundRobin,
    /// `leastconn`: the fewest requests in flight per unit of weight.
    LeastConnections,
    /// `source`, `uri`, `hdr(NAME)`: a consistent hash of this part of the request.
    ConsistentHash(HashKey),
    /// `random`: weighted random.
    Random,
    /// `first`: the first server with a free slot below its `maxconn`.
    First,
    /// `p2c`: the less loaded of two random servers (in-flight requests).
    PowerOfTwoChoices,
}

impl Balance {
    /// Parses a `balance` value; the error lists the accepted values.
    pub fn parse(text: &str) -> Result<Balance, String> {
        Ok(match text {
            "roundrobin" => Balance::RoundRobin,
            "static-rr" => Balance::StaticRoundRobin,
            "leastconn" => Balance::LeastConnections,
            "source" => Balance::ConsistentHash(HashKey::Source),
            "uri" => Balance::ConsistentHash(HashKey::Uri { whole: false }),
            "random" => Balance::Random,
            "first" => Balance::First,
            "p2c" => Balance::PowerOfTwoChoices,
            other => {
                if let Some(inner) = other.strip_prefix("hdr(").and_then(|r| r.strip_suffix(')')) {
                    let name = inner.trim();
                    if name.is_empty() {
                        return Err(
                            "\"hdr()\" needs a header name: write e.g. \"hdr(host)\"".into()
                        );
                    }
                    return HeaderName::from_bytes(name.as_bytes())
                        .map(|h| Balance::ConsistentHash(HashKey::Header(h)))
                        .map_err(|_| format!("{name:?} is not a valid HTTP header name"));
                }
                return Err(format!(
                    "{other:?}: one of \"roundrobin\", \"static-rr\", \"leastconn\", \"source\", \"uri\", \"hdr(NAME)\", \"random\", \"first\", \"p2c\""
                ));
            }
        })
    }

    /// Whether the algorithm reads the HTTP request (`uri`, `hdr()`), so needs `mode = "http"`.
    pub fn needs_http(&self) -> bool {
        matches!(
            self,
            Balance::ConsistentHash(HashKey::Uri { .. } | HashKey::Header(_))
        )
    }
}

impl fmt::Display for Balance {
    /// The HAProxy name, as the configuration writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Balance::RoundRobin => f.write_str("roundrobin"),
            Balance::StaticRoundRobin => f.write_str("static-rr"),
            Balance::LeastConnections => f.write_str("leastconn"),
            Balance::ConsistentHash(HashKey::Source) => f.write_str("source"),
            Balance::ConsistentHash(HashKey::Uri { .. }) => f.write_str("uri"),
            Balance::ConsistentHash(HashKey::Header(h)) => write!(f, "hdr({h})"),
            Balance::ConsistentHash(HashKey::UrlParam(p)) => write!(f, "url_param({p})"),
            Balance::Random => f.write_str("random"),
            Balance::First => f.write_str("first"),
            Balance::PowerOfTwoChoices => f.write_str("p2c"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_haproxy_name_maps_to_an_lb_core_algorithm_and_back() {
        for name in [
            "roundrobin",
            "static-rr",
            "leastconn",
            "source",
            "uri",
            "hdr(x-tenant)",
            "random",
            "first",
            "p2c",
        ] {
            let b = Balance::parse(name).expect(name);
            assert_eq!(b.to_string(), name);
        }
        assert_eq!(
            Balance::parse("hdr(Host)"),
            Ok(Balance::ConsistentHash(HashKey::Header(
                HeaderName::from_static("host")
            )))
        );
        assert!(Balance::parse("uri").unwrap().needs_http());
        assert!(!Balance::parse("source").unwrap().needs_http());
    }

    #[test]
    fn mistakes_name_the_fix() {
        assert_eq!(
            Balance::parse("hdr()").unwrap_err(),
            "\"hdr()\" needs a header name: write e.g. \"hdr(host)\""
        );
        assert_eq!(
            Balance::parse("hdr(a b)").unwrap_err(),
            "\"a b\" is not a valid HTTP header name"
        );
        assert!(
            Balance::parse("round-robin")
                .unwrap_err()
                .starts_with("\"round-robin\": one of \"roundrobin\"")
        );
    }
}
