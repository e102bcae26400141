//! The request headers `/auth/verify` reads, found in one pass over the request's headers.
//!
//! `/auth/verify` sits on another gateway's hot path and must stay close to a bare hyper
//! server (docs/PERFORMANCE.md). Each `HeaderMap::get` hashes the name and probes the map;
//! a verification asked about eight names that way, most of them absent, and the lookups
//! were a sixth of its instructions. A proxy sends a handful of headers, so one walk over
//! them, comparing names, costs less than the lookups did. Each field holds the first value
//! of its header, as `HeaderMap::get` would give, except `X-Forwarded-For`, whose every line
//! counts ([`VerifyHeaders::x_forwarded_for`]).

use axum::http::{header, HeaderMap};

use crate::request_headers::{HIGH_BITS, ONES};

/// The headers of one `/auth/verify` request that its decision reads, as the bytes of their
/// values: from hyper's `HeaderMap`, or from the head `crate::connection_front` parsed
/// itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyHeaders<'a> {
    pub authorization: Option<&'a [u8]>,
    pub x_api_key: Option<&'a [u8]>,
    pub x_dashscope_workspace: Option<&'a [u8]>,
    /// The headers themselves, for the one header whose lines all count (`X-Forwarded-For`).
    pub lines: HeaderLines<'a>,
    pub x_keygate_model: Option<&'a [u8]>,
    pub x_keygate_identity: Option<&'a [u8]>,
    pub x_original_uri: Option<&'a [u8]>,
    pub content_length: Option<&'a [u8]>,
    pub has_transfer_encoding: bool,
}

/// The headers a [`VerifyHeaders`] was found in.
#[derive(Debug, Default, Clone, Copy)]
pub enum HeaderLines<'a> {
    #[default]
    Nothing,
    Map(&'a HeaderMap),
    Parsed(&'a [httparse::Header<'a>]),
}

impl<'a> VerifyHeaders<'a> {
    /// Walks `headers` once.
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut found = VerifyHeaders { lines: HeaderLines::Map(headers), ..VerifyHeaders::default() };
        for (name, value) in headers {
            // The standard names compare as the `http` crate's own constants (no string
            // comparison); the others by their lower-case text, which is how a
            // `HeaderName` holds them.
            let slot = if name == header::AUTHORIZATION {
                &mut found.authorization
            } else if name == header::CONTENT_LENGTH {
                &mut found.content_length
            } else if name == header::TRANSFER_ENCODING {
                found.has_transfer_encoding = true;
                continue;
            } else {
                match found.slot_of_lower_case(name.as_str().as_bytes()) {
                    Some(slot) => slot,
                    None => continue,
                }
            };
            if slot.is_none() {
                *slot = Some(value.as_bytes());
            }
        }
        found
    }

    /// Walks the headers of a head parsed with httparse once. Their names come as the
    /// client wrote them, so they are compared without regard to case.
    pub fn of_parsed(headers: &'a [httparse::Header<'a>]) -> Self {
        let mut found = VerifyHeaders { lines: HeaderLines::Parsed(headers), ..VerifyHeaders::default() };
        let mut lower_case = [0u8; 32];
        for parsed in headers {
            let name = parsed.name.as_bytes();
            // No name the decision reads is longer than 32 bytes.
            let Some(lower) = lower_case.get_mut(..name.len()) else { continue };
            for (into, byte) in lower.iter_mut().zip(name) {
                *into = byte.to_ascii_lowercase();
            }
            let slot = match &*lower {
                b"authorization" => &mut found.authorization,
                b"content-length" => &mut found.content_length,
                b"transfer-encoding" => {
                    found.has_transfer_encoding = true;
                    continue;
                }
                other => match found.slot_of_lower_case(other) {
                    Some(slot) => slot,
                    None => continue,
                },
            };
            if slot.is_none() {
                *slot = Some(parsed.value);
            }
        }
        found
    }

    /// The field of a non-standard header the decision reads, by its lower-case name.
    fn slot_of_lower_case(&mut self, name: &[u8]) -> Option<&mut Option<&'a [u8]>> {
        Some(match name {
            b"x-api-key" => &mut self.x_api_key,
            b"x-dashscope-workspace" => &mut self.x_dashscope_workspace,
            b"x-keygate-model" => &mut self.x_keygate_model,
            b"x-keygate-identity" => &mut self.x_keygate_identity,
            b"x-original-uri" => &mut self.x_original_uri,
            _ => return None,
        })
    }

    /// The values of every `X-Forwarded-For` line, in the order they came: read only for a
    /// peer that is a trusted proxy, so the walk over the headers happens only then.
    pub fn x_forwarded_for(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        let (map, parsed) = match self.lines {
            HeaderLines::Nothing => (None, None),
            HeaderLines::Map(map) => (Some(map), None),
            HeaderLines::Parsed(parsed) => (None, Some(parsed)),
        };
        let from_map = map.into_iter().flat_map(|map| map.get_all("x-forwarded-for").into_iter().map(|value| value.as_bytes()));
        let from_parsed = parsed.into_iter().flat_map(|headers| {
            headers.iter().filter(|header| header.name.eq_ignore_ascii_case("x-forwarded-for")).map(|header| header.value)
        });
        from_map.chain(from_parsed)
    }

    /// Whether the request carries the original request's body (Envoy's `ext_authz` with
    /// `with_request_body`): a `Transfer-Encoding`, or a `Content-Length` that is not 0 (an
    /// unreadable one counts as a body, which the body reader then refuses).
    pub fn has_body(&self) -> bool {
        self.has_transfer_encoding
            || Self::text(self.content_length).is_some_and(|value| value.trim().parse::<u64>().map_or(true, |length| length > 0))
    }

    /// A header's value as text, `None` when absent or not visible ASCII.
    pub fn text(value: Option<&'a [u8]>) -> Option<&'a str> {
        value.and_then(visible_text)
    }
}

/// A header value as text when it holds only visible ASCII, spaces and tabs, as
/// `HeaderValue::to_str` reads one; `None` otherwise.
pub fn visible_text(value: &[u8]) -> Option<&str> {
    // Eight bytes at a time (every call's key passes here, and a byte-by-byte check of it
    // cost more than the conversion after it).
    let mut words = value.chunks_exact(8);
    for word in &mut words {
        let bytes: [u8; 8] = word.try_into().unwrap_or_default();
        let packed = u64::from_le_bytes(bytes);
        if has_byte_above_tilde(packed) || (has_byte_below_space(packed) && !bytes.iter().all(is_visible_byte)) {
            return None;
        }
    }
    if !words.remainder().iter().all(is_visible_byte) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// A byte [`visible_text`] takes: a tab, a space or visible ASCII.
fn is_visible_byte(byte: &u8) -> bool {
    *byte == b'\t' || (b' '..0x7f).contains(byte)
}

/// Whether one of the eight bytes of `word` is below a space (a control byte, or a tab,
/// which [`visible_text`] then looks at byte by byte): exact as a whole, though not per
/// byte.
fn has_byte_below_space(word: u64) -> bool {
    word.wrapping_sub(ONES * u64::from(b' ')) & !word & HIGH_BITS != 0
}

/// Whether one of the eight bytes of `word` is above `~` (DEL, or not ASCII).
fn has_byte_above_tilde(word: u64) -> bool {
    (word.wrapping_add(ONES * u64::from(0x7f - b'~')) | word) & HIGH_BITS != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The word-at-a-time check takes what `HeaderValue::to_str` takes, for every byte at
    /// every place of a word and of the bytes after the last word, next to each kind of
    /// neighbour.
    #[test]
    fn visible_text_takes_what_header_values_read_as_text() {
        for byte in 0..=u8::MAX {
            for neighbour in [b'a', b'\t', b' ', b'~', 0x7f, 0x80, 0xff, 0x00, 0x1f] {
                for at in 0..12 {
                    let mut value = [b'k'; 12];
                    value[at] = byte;
                    value[(at + 1) % 12] = neighbour;
                    let expected = HeaderValue::from_bytes(&value).ok().and_then(|value| value.to_str().ok().map(str::to_string));
                    assert_eq!(visible_text(&value).map(str::to_string), expected, "{value:?}");
                }
            }
        }
        assert_eq!(visible_text(b""), Some(""));
        assert_eq!(visible_text(b"Bearer sk-ws-0123456789abcdef\tx"), Some("Bearer sk-ws-0123456789abcdef\tx"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn finds_each_header_the_decision_reads_and_ignores_the_rest() {
        let map = headers(&[
            ("host", "keygate"),
            ("authorization", "Bearer sk-one"),
            ("x-api-key", "sk-two"),
            ("x-dashscope-workspace", "ws-1"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-keygate-model", "qwen-plus"),
            ("x-keygate-identity", "on"),
            ("x-original-uri", "/api/v1/apps/app-1/completion"),
            ("user-agent", "nginx"),
        ]);
        let found = VerifyHeaders::of(&map);
        assert_eq!(VerifyHeaders::text(found.authorization), Some("Bearer sk-one"));
        assert_eq!(VerifyHeaders::text(found.x_api_key), Some("sk-two"));
        assert_eq!(VerifyHeaders::text(found.x_dashscope_workspace), Some("ws-1"));
        assert_eq!(found.x_forwarded_for().collect::<Vec<_>>(), [&b"203.0.113.7"[..]]);
        assert_eq!(VerifyHeaders::text(found.x_keygate_model), Some("qwen-plus"));
        assert_eq!(VerifyHeaders::text(found.x_keygate_identity), Some("on"));
        assert_eq!(VerifyHeaders::text(found.x_original_uri), Some("/api/v1/apps/app-1/completion"));
        assert!(!found.has_body());
    }

    #[test]
    fn a_head_parsed_with_httparse_gives_the_same_headers_whatever_the_names_case() {
        let head = b"GET /auth/verify HTTP/1.1\r\nHost: k\r\nAUTHORIZATION: Bearer sk-one\r\nX-Forwarded-For: 203.0.113.7\r\n\
            x-keygate-MODEL: qwen-plus\r\nAuthorization: Bearer second\r\nX-Original-URI: /api/v1/apps/a/completion\r\n\
            Content-Length: 0\r\nX-A-Header-Name-Longer-Than-Thirty-Two-Bytes: x\r\nx-forwarded-FOR: 198.51.100.9\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(head).unwrap().is_complete());
        let found = VerifyHeaders::of_parsed(request.headers);
        assert_eq!(VerifyHeaders::text(found.authorization), Some("Bearer sk-one"));
        // Every line of X-Forwarded-For, in order, and of the others the first.
        assert_eq!(found.x_forwarded_for().collect::<Vec<_>>(), [&b"203.0.113.7"[..], b"198.51.100.9"]);
        assert_eq!(VerifyHeaders::text(found.x_keygate_model), Some("qwen-plus"));
        assert_eq!(VerifyHeaders::text(found.x_original_uri), Some("/api/v1/apps/a/completion"));
        assert_eq!(found.x_api_key, None);
        assert!(!found.has_body());
        assert_eq!(VerifyHeaders::text(Some(b"caf\xc3\xa9")), None, "not visible ASCII");
    }

    #[test]
    fn a_repeated_header_gives_its_first_value_as_a_lookup_would() {
        let map = headers(&[("authorization", "Bearer first"), ("x-forwarded-for", "198.51.100.1"), ("authorization", "Bearer second")]);
        let found = VerifyHeaders::of(&map);
        assert_eq!(found.authorization, map.get("authorization").map(|value| value.as_bytes()));
        assert_eq!(VerifyHeaders::text(found.authorization), Some("Bearer first"));
    }

    #[test]
    fn a_body_is_announced_by_a_nonzero_or_unreadable_length_or_a_transfer_encoding() {
        assert!(!VerifyHeaders::of(&headers(&[("content-length", "0")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("content-length", "12")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("content-length", "twelve")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("transfer-encoding", "chunked")])).has_body());
        assert!(!VerifyHeaders::of(&HeaderMap::new()).has_body());
    }
}
