//! The path and query a model call is forwarded with (`keygate_wire::forwarding_path`).
//! The input is the rest of a request target after the route's prefix: the path, and the
//! query after the first `?`.
//!
//! Invariants:
//! - a checked path is the path given; it is empty or absolute, within the length and
//!   segment limits, and has no empty segment, no segment made only of dots, no `%`, no
//!   backslash, no NUL and nothing outside the allowed characters, so removing dot
//!   segments, decoding or turning backslashes into slashes cannot change it; the check
//!   agrees with that statement of the rule on every input;
//! - a re-encoded query holds only unreserved characters, `%XX`, `=` and `&`, decodes to
//!   the pairs the client sent (empty names dropped, no NUL), and is its own re-encoding (within the length limit);
//!   a query is refused only when too long or when a part is not valid percent-encoded
//!   UTF-8 without NUL.

#![no_main]

use keygate_wire::forwarding_path::{
    check_forwarded_path, reencode_query, ForwardingPathError, MAX_FORWARDED_PATH_BYTES, MAX_FORWARDED_QUERY_BYTES, MAX_FORWARDED_SEGMENTS,
};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    check_path(path);
    // The whole text as a path too: a `?` must never pass.
    check_path(text);
    check_query(query);
});

/// The rule, written out without the checker's code.
fn allowed(path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else { return false };
    let segments: Vec<&str> = rest.split('/').collect();
    path.len() <= MAX_FORWARDED_PATH_BYTES
        && segments.len() <= MAX_FORWARDED_SEGMENTS
        && segments.iter().all(|segment| {
            !segment.is_empty()
                && !segment.bytes().all(|byte| byte == b'.')
                && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~:@+=,".contains(&byte))
        })
}

/// The removal of `.` and `..` segments that URL parsers apply to a path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                output.pop();
            }
            other => output.push(other),
        }
    }
    let mut normalised = String::new();
    for segment in output {
        normalised.push('/');
        normalised.push_str(segment);
    }
    if path.ends_with("/.") || path.ends_with("/..") {
        normalised.push('/');
    }
    normalised
}

fn check_path(path: &str) {
    let checked = check_forwarded_path(path);
    assert_eq!(checked.is_ok(), allowed(path), "{path:?}: {checked:?}");
    let Ok(checked) = checked else { return };
    assert!(std::ptr::eq(checked, path), "a checked path is returned unchanged");
    assert!(!path.contains(['%', '\\', '\0', '?', '#', ';']), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    if !path.is_empty() {
        assert_eq!(remove_dot_segments(path), path, "{path:?} has a dot segment");
    }
    assert_eq!(percent_decode_str(path).decode_utf8().as_deref(), Ok(path));
}

fn is_reencoded_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~%=&".contains(&byte)
}

/// A query's pairs as the upstream reads them, or why they cannot be read.
fn decoded_pairs(query: &str) -> Option<Vec<(String, Option<String>)>> {
    let decode = |part: &str| -> Option<String> {
        let bytes = part.as_bytes();
        for (index, _) in part.match_indices('%') {
            if !bytes.get(index + 1..index + 3).is_some_and(|escape| escape.iter().all(u8::is_ascii_hexdigit)) {
                return None;
            }
        }
        let decoded = percent_decode_str(part).decode_utf8().ok()?.into_owned();
        (!decoded.contains('\0')).then_some(decoded)
    };
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        };
        let name = decode(name)?;
        // A pair without a name is dropped whole: its value is never read.
        if name.is_empty() {
            continue;
        }
        let value = match value {
            Some(value) => Some(decode(value)?),
            None => None,
        };
        pairs.push((name, value));
    }
    Some(pairs)
}

fn check_query(query: &str) {
    let reencoded = reencode_query(query);
    if query.len() > MAX_FORWARDED_QUERY_BYTES {
        assert_eq!(reencoded, Err(ForwardingPathError::QueryTooLong));
        return;
    }
    let expected = decoded_pairs(query);
    match reencoded {
        Ok(None) => assert_eq!(expected, Some(vec![]), "{query:?}"),
        Ok(Some(reencoded)) => {
            assert!(reencoded.bytes().all(is_reencoded_byte), "{query:?} -> {reencoded:?}");
            assert!(!reencoded.starts_with('&') && !reencoded.ends_with('&') && !reencoded.contains("&&"), "{reencoded:?}");
            assert_eq!(decoded_pairs(&reencoded), expected, "{query:?} -> {reencoded:?}");
            // Encoding can triple the length; the limit applies to what a client sends.
            if reencoded.len() <= MAX_FORWARDED_QUERY_BYTES {
                assert_eq!(reencode_query(&reencoded), Ok(Some(reencoded.clone())), "{query:?} -> {reencoded:?}");
            }
        }
        Err(error) => {
            assert_eq!(error, ForwardingPathError::MalformedQuery);
            assert_eq!(expected, None, "{query:?} refused");
        }
    }
}
