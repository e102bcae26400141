//! The path and query a forwarded model call takes to its upstream, checked so that
//! nothing a client sends can steer the call outside the route it matched.
//!
//! An upstream URL is `<base URL of the protocol>` + the path after the route's prefix +
//! the query. A URL parser collapses dot segments (`/services/../fine-tunes` becomes
//! `/fine-tunes`), and an upstream may decode `%2e%2e`, `%2f` or `%5c` before it routes,
//! so every spelling of a dot segment, an encoded slash, a backslash or a NUL is refused
//! here, before any upstream is contacted. The model APIs keygate forwards have plain
//! paths (`/services/aigc/text-generation/generation`, `/chat/completions`), so the rule
//! is an allow-list: segments of letters, digits and `-._~:@+=,`, none of them made only
//! of dots, and no percent-encoding at all.
//!
//! The query is parsed into pairs and encoded again from them, so that what the upstream
//! receives is exactly the pairs keygate read, whatever escaping the client used.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Longest path after the route's prefix that is forwarded.
pub const MAX_FORWARDED_PATH_BYTES: usize = 1024;
/// Most segments in a forwarded path.
pub const MAX_FORWARDED_SEGMENTS: usize = 16;
/// Longest query string that is forwarded.
pub const MAX_FORWARDED_QUERY_BYTES: usize = 4096;

/// Why a path or query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardingPathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path is longer than {MAX_FORWARDED_PATH_BYTES} bytes or has more than {MAX_FORWARDED_SEGMENTS} segments")]
    TooLong,
    #[error("the path has an empty segment ('//')")]
    EmptySegment,
    #[error("the path has a dot segment ('.' or '..')")]
    DotSegment,
    #[error("the path has a percent-encoded character; send it unencoded")]
    PercentEncoded,
    #[error("the path has a backslash")]
    Backslash,
    #[error("the path has a character that is not allowed in a forwarded path (byte 0x{0:02x})")]
    ForbiddenCharacter(u8),
    #[error("the query is longer than {MAX_FORWARDED_QUERY_BYTES} bytes")]
    QueryTooLong,
    #[error("the query has a malformed percent-encoding or is not UTF-8")]
    MalformedQuery,
}

/// Bytes a path segment may hold besides ASCII letters and digits.
const SEGMENT_PUNCTUATION: &[u8] = b"-._~:@+=,";

/// Whether a path segment may hold each byte: ASCII letters, digits and
/// [`SEGMENT_PUNCTUATION`]. A table, looked up once per byte: every forwarded call's path
/// is checked, and the search of the punctuation per byte was most of the check's cost.
const SEGMENT_BYTES: [bool; 256] = alphanumeric_and(SEGMENT_PUNCTUATION);

/// A table of the bytes that are ASCII letters, digits or one of `punctuation`, indexed
/// by byte: for checks made on every byte of every call's path or target.
pub const fn alphanumeric_and(punctuation: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let mut index = 0;
    while index < punctuation.len() {
        table[punctuation[index] as usize] = true;
        index += 1;
    }
    table
}

/// Checks the path after a route's prefix (`/chat/completions`, `/services/aigc/...`;
/// the empty string when the route is the prefix itself) and returns it unchanged.
/// Segment by segment, in one pass over the bytes: the first fault found is the one told.
pub fn check_forwarded_path(path: &str) -> Result<&str, ForwardingPathError> {
    if path.is_empty() {
        return Ok(path);
    }
    let Some(rest) = path.strip_prefix('/') else { return Err(ForwardingPathError::NotAbsolute) };
    if path.len() > MAX_FORWARDED_PATH_BYTES {
        return Err(ForwardingPathError::TooLong);
    }
    let mut segments = 1usize;
    let mut segment_length = 0usize;
    let mut only_dots = true;
    for &byte in rest.as_bytes() {
        if byte == b'/' {
            end_of_segment(segment_length, only_dots)?;
            segments += 1;
            if segments > MAX_FORWARDED_SEGMENTS {
                return Err(ForwardingPathError::TooLong);
            }
            segment_length = 0;
            only_dots = true;
            continue;
        }
        match byte {
            b'%' => return Err(ForwardingPathError::PercentEncoded),
            b'\\' => return Err(ForwardingPathError::Backslash),
            _ if SEGMENT_BYTES[usize::from(byte)] => {}
            _ => return Err(ForwardingPathError::ForbiddenCharacter(byte)),
        }
        segment_length += 1;
        only_dots &= byte == b'.';
    }
    end_of_segment(segment_length, only_dots)?;
    Ok(path)
}

/// The checks made at the end of a segment whose bytes were each allowed.
fn end_of_segment(length: usize, only_dots: bool) -> Result<(), ForwardingPathError> {
    if length == 0 {
        return Err(ForwardingPathError::EmptySegment);
    }
    // `.`, `..` and longer runs of dots: some servers treat any all-dot segment as a
    // parent reference, so none is forwarded.
    if only_dots {
        return Err(ForwardingPathError::DotSegment);
    }
    Ok(())
}

/// What is left unencoded in a re-encoded query name or value: the unreserved
/// characters of RFC 3986.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The query parsed into `name=value` pairs (percent-decoded; `+` stays a plus) and
/// encoded again from them. Empty pairs are dropped; `None` when nothing is left.
pub fn reencode_query(raw_query: &str) -> Result<Option<String>, ForwardingPathError> {
    if raw_query.len() > MAX_FORWARDED_QUERY_BYTES {
        return Err(ForwardingPathError::QueryTooLong);
    }
    let mut encoded = String::with_capacity(raw_query.len());
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        };
        let name = decode_query_part(name)?;
        if name.is_empty() {
            continue;
        }
        if !encoded.is_empty() {
            encoded.push('&');
        }
        encoded.extend(utf8_percent_encode(&name, QUERY_ENCODE));
        if let Some(value) = value {
            encoded.push('=');
            encoded.extend(utf8_percent_encode(&decode_query_part(value)?, QUERY_ENCODE));
        }
    }
    Ok((!encoded.is_empty()).then_some(encoded))
}

fn decode_query_part(part: &str) -> Result<String, ForwardingPathError> {
    // A '%' that does not start a valid escape is malformed, not a literal.
    let bytes = part.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'%' {
            let escape = bytes.get(index + 1..index + 3).ok_or(ForwardingPathError::MalformedQuery)?;
            if !escape.iter().all(u8::is_ascii_hexdigit) {
                return Err(ForwardingPathError::MalformedQuery);
            }
        }
    }
    let decoded = percent_decode_str(part).decode_utf8().map_err(|_| ForwardingPathError::MalformedQuery)?;
    if decoded.contains('\0') {
        return Err(ForwardingPathError::MalformedQuery);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_model_api_paths_pass_unchanged() {
        for path in [
            "",
            "/chat/completions",
            "/services/aigc/text-generation/generation",
            "/services/embeddings/text-embedding/text-embedding",
            "/apps/0123456789abcdef0123456789abcdef/completion",
            "/v1/messages",
            "/models/qwen2.5-72b-instruct",
            "/tasks/86ecf553-d340-4e21-af6e-a0c6a421c010",
        ] {
            assert_eq!(check_forwarded_path(path), Ok(path), "{path}");
        }
    }

    /// The check as the rule reads, segment by segment (how it was written before the one
    /// pass): the one pass must tell the same fault for every path.
    fn segment_by_segment(path: &str) -> Result<&str, ForwardingPathError> {
        if path.is_empty() {
            return Ok(path);
        }
        let Some(rest) = path.strip_prefix('/') else { return Err(ForwardingPathError::NotAbsolute) };
        if path.len() > MAX_FORWARDED_PATH_BYTES {
            return Err(ForwardingPathError::TooLong);
        }
        for (index, segment) in rest.split('/').enumerate() {
            if index + 1 > MAX_FORWARDED_SEGMENTS {
                return Err(ForwardingPathError::TooLong);
            }
            if segment.is_empty() {
                return Err(ForwardingPathError::EmptySegment);
            }
            for &byte in segment.as_bytes() {
                match byte {
                    b'%' => return Err(ForwardingPathError::PercentEncoded),
                    b'\\' => return Err(ForwardingPathError::Backslash),
                    _ if byte.is_ascii_alphanumeric() || SEGMENT_PUNCTUATION.contains(&byte) => {}
                    _ => return Err(ForwardingPathError::ForbiddenCharacter(byte)),
                }
            }
            if segment.bytes().all(|byte| byte == b'.') {
                return Err(ForwardingPathError::DotSegment);
            }
        }
        Ok(path)
    }

    #[test]
    fn the_one_pass_tells_the_fault_the_segments_tell_for_every_short_path() {
        let alphabet = ['/', 'a', '.', '%', '\\', ' ', '~'];
        let mut paths = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = paths.iter().flat_map(|path| alphabet.iter().map(move |byte| format!("{path}{byte}"))).collect();
            for path in &longer {
                assert_eq!(check_forwarded_path(path), segment_by_segment(path), "{path:?}");
            }
            paths = longer;
        }
        let many_segments = "/a".repeat(MAX_FORWARDED_SEGMENTS + 1);
        let long = format!("/{}", "a".repeat(MAX_FORWARDED_PATH_BYTES));
        for path in [many_segments.as_str(), &many_segments[..many_segments.len() - 2], long.as_str(), "/a//b", "/a/b/"] {
            assert_eq!(check_forwarded_path(path), segment_by_segment(path), "{path:?}");
        }
    }

    #[test]
    fn every_spelling_of_leaving_the_route_is_refused() {
        let refused = [
            ("/../fine-tunes", ForwardingPathError::DotSegment),
            ("/./chat", ForwardingPathError::DotSegment),
            ("/a/..", ForwardingPathError::DotSegment),
            ("/.../x", ForwardingPathError::DotSegment),
            ("/%2e%2e/fine-tunes", ForwardingPathError::PercentEncoded),
            ("/%2E%2E/x", ForwardingPathError::PercentEncoded),
            ("/.%2e/x", ForwardingPathError::PercentEncoded),
            ("/a%2fb", ForwardingPathError::PercentEncoded),
            ("/a%5c..%5cb", ForwardingPathError::PercentEncoded),
            ("/a%00", ForwardingPathError::PercentEncoded),
            ("/%252e%252e/x", ForwardingPathError::PercentEncoded),
            ("/..\\admin", ForwardingPathError::Backslash),
            ("/a\\b", ForwardingPathError::Backslash),
            ("/a//b", ForwardingPathError::EmptySegment),
            ("/a/", ForwardingPathError::EmptySegment),
            ("/..;/admin", ForwardingPathError::ForbiddenCharacter(b';')),
            ("/a?b", ForwardingPathError::ForbiddenCharacter(b'?')),
            ("/a#b", ForwardingPathError::ForbiddenCharacter(b'#')),
            ("/a b", ForwardingPathError::ForbiddenCharacter(b' ')),
            ("/caf\u{e9}", ForwardingPathError::ForbiddenCharacter(0xc3)),
            ("relative", ForwardingPathError::NotAbsolute),
        ];
        for (path, expected) in refused {
            assert_eq!(check_forwarded_path(path), Err(expected), "{path}");
        }
        assert_eq!(check_forwarded_path(&format!("/{}", "a".repeat(MAX_FORWARDED_PATH_BYTES))), Err(ForwardingPathError::TooLong));
        assert_eq!(check_forwarded_path(&"/a".repeat(MAX_FORWARDED_SEGMENTS + 1)), Err(ForwardingPathError::TooLong));
    }

    #[test]
    fn queries_are_encoded_again_from_their_pairs() {
        assert_eq!(reencode_query(""), Ok(None));
        assert_eq!(reencode_query("&&"), Ok(None));
        assert_eq!(reencode_query("a=1&b=two"), Ok(Some("a=1&b=two".into())));
        assert_eq!(reencode_query("flag"), Ok(Some("flag".into())));
        assert_eq!(reencode_query("x=../../admin"), Ok(Some("x=..%2F..%2Fadmin".into())));
        assert_eq!(reencode_query("x=%2e%2e%2f"), Ok(Some("x=..%2F".into())));
        assert_eq!(reencode_query("p=a+b&q=a%20b"), Ok(Some("p=a%2Bb&q=a%20b".into())));
        assert_eq!(reencode_query("x=%41%42&=empty-name"), Ok(Some("x=AB".into())));
        assert_eq!(reencode_query("x=%zz"), Err(ForwardingPathError::MalformedQuery));
        assert_eq!(reencode_query("x=%4"), Err(ForwardingPathError::MalformedQuery));
        assert_eq!(reencode_query("x=%ff"), Err(ForwardingPathError::MalformedQuery));
        assert_eq!(reencode_query("x=%00"), Err(ForwardingPathError::MalformedQuery));
        assert_eq!(reencode_query(&"a".repeat(MAX_FORWARDED_QUERY_BYTES + 1)), Err(ForwardingPathError::QueryTooLong));
    }

    #[test]
    fn a_reencoded_query_is_stable() {
        for raw in ["a=1&b=%2F", "x=..%2F..%2Fadmin", "q=%E4%BD%A0%E5%A5%BD", "k", "a=b=c"] {
            let once = reencode_query(raw).unwrap().unwrap();
            assert_eq!(reencode_query(&once).unwrap().unwrap(), once, "{raw}");
        }
    }
}
