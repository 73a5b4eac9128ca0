//! Just enough XML for EC2 Query API answers: the text of an element, and error codes.

/// The text of the first `<tag>...</tag>` in `body`.
pub(crate) fn text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}

/// The texts of every `<tag>...</tag>` in `body`.
pub(crate) fn all<'a>(body: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(&after[..e]);
        rest = &after[e + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_elements() {
        let b = "<R><Errors><Error><Code>InvalidAllocationID.NotFound</Code><Message>x</Message></Error></Errors><a>1</a><a>2</a></R>";
        assert_eq!(super::text(b, "Code"), Some("InvalidAllocationID.NotFound"));
        assert_eq!(super::all(b, "a"), ["1", "2"]);
        assert_eq!(super::text(b, "none"), None);
    }
}
