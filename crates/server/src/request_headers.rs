//! A request's headers as the gateway's pipeline and the request context read them:
//! `http`'s map, for a request hyper parsed, or the fields of a head the connection front
//! parsed, read where they lie in the head (`connection_front`).
//!
//! Why two forms: building a `HeaderMap` for a call the front parsed (a name looked up in
//! the table of standard names and hashed, a value validated again, for every header) was
//! a tenth of a forwarded call's instructions, and the pipeline reads a handful of headers
//! and copies the rest to the upstream as they are. A head's fields are looked up by a scan
//! with case-insensitive comparison (a head has a few dozen at most: the front takes no
//! more than `connection_front::FRONT_HEADERS`).
//!
//! Both forms hold what HTTP/1.1 allows only: httparse checked the head's names (tokens)
//! and values (no control character but tab, no DEL: the same bytes `HeaderValue` takes,
//! byte for byte) as `http` checks a map's, so a value read here can be written into the
//! upstream's request as it is.

use std::ops::Range;

use axum::http::{HeaderMap, HeaderName};

use crate::gateway::verify_headers::visible_text;
use crate::upstream_client::place_within;

/// Where one header of a parsed head lies in the head: its name and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeadField {
    name: Range<usize>,
    value: Range<usize>,
}

/// Where each header of a head parsed with httparse lies in the head, in the order they
/// came: made while the parser's slices borrow the head, read in the head's copy that the
/// call is served from (the connection's buffer reads ahead meanwhile). Only httparse's
/// headers make one, so its fields hold only what httparse accepted.
#[derive(Debug, Clone)]
pub struct HeadPlaces {
    fields: Vec<HeadField>,
}

impl HeadPlaces {
    /// `None` when a parsed slice is not inside `head` (httparse's contract is that each
    /// is: checked all the same, so that a surprise is a refusal, not a panic).
    pub fn of(head: &[u8], parsed: &[httparse::Header<'_>]) -> Option<HeadPlaces> {
        let mut fields = Vec::with_capacity(parsed.len());
        for header in parsed {
            fields.push(HeadField { name: place_within(head, header.name.as_bytes())?, value: place_within(head, header.value)? });
        }
        Some(HeadPlaces { fields })
    }

    /// The headers, read from `head`: the same bytes the places were taken in. `None` when
    /// a place is beyond its end.
    pub fn in_head<'a>(&'a self, head: &'a [u8]) -> Option<HeadFields<'a>> {
        self.fields
            .iter()
            .all(|field| field.name.end <= head.len() && field.value.end <= head.len())
            .then_some(HeadFields { head, fields: &self.fields })
    }
}

/// The headers of a head the connection front parsed: the head's bytes and where each
/// field lies in them ([`HeadPlaces::in_head`]).
#[derive(Debug, Clone, Copy)]
pub struct HeadFields<'a> {
    head: &'a [u8],
    fields: &'a [HeadField],
}

impl<'a> HeadFields<'a> {
    fn iter(self) -> impl DoubleEndedIterator<Item = (&'a [u8], &'a [u8])> {
        self.fields.iter().map(move |field| (&self.head[field.name.clone()], &self.head[field.value.clone()]))
    }
}

/// Whether `a` and `b` are the same bytes but for the case of ASCII letters: what
/// `<[u8]>::eq_ignore_ascii_case` answers, eight bytes at a time. Header names are compared
/// this way many times per call (each lookup in a head, each header's check before it is
/// copied to the upstream), and byte by byte each compare lowered both sides' every byte.
#[inline]
pub fn eq_ignore_ascii_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    for (a_word, b_word) in (&mut a_words).zip(&mut b_words) {
        let a_word = u64::from_le_bytes(a_word.try_into().unwrap_or_default());
        let b_word = u64::from_le_bytes(b_word.try_into().unwrap_or_default());
        if a_word != b_word && ascii_lowered(a_word) != ascii_lowered(b_word) {
            return false;
        }
    }
    a_words.remainder().eq_ignore_ascii_case(b_words.remainder())
}

/// The eight bytes of `word` with their ASCII upper-case letters lowered, every other byte
/// (non-ASCII ones too) as it is.
#[inline]
fn ascii_lowered(word: u64) -> u64 {
    // Each byte's low seven bits, plus an amount that sets its high bit when they are at
    // least `A`, or more than `Z`: no sum carries into the next byte.
    let low_bits = word & !HIGH_BITS;
    let from_a = low_bits + ONES * u64::from(0x80 - b'A');
    let after_z = low_bits + ONES * u64::from(0x7f - b'Z');
    let upper_case = from_a & !after_z & !word & HIGH_BITS;
    // The high bit of each upper-case letter moved down to its 0x20 bit.
    word | (upper_case >> 2)
}

/// A byte of 1 in each of a word's eight places, and each place's high bit: the words the
/// eight-bytes-at-a-time checks of a head are written with (here, in `visible_text` and in
/// the front's target check).
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
pub(crate) const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// A request's headers, in either form (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub enum RequestHeaders<'a> {
    Map(&'a HeaderMap),
    Head(HeadFields<'a>),
}

impl<'a> From<&'a HeaderMap> for RequestHeaders<'a> {
    fn from(map: &'a HeaderMap) -> RequestHeaders<'a> {
        RequestHeaders::Map(map)
    }
}

impl<'a> RequestHeaders<'a> {
    /// The first value of `name`, as bytes.
    pub fn get(self, name: &HeaderName) -> Option<&'a [u8]> {
        match self {
            RequestHeaders::Map(map) => map.get(name).map(|value| value.as_bytes()),
            RequestHeaders::Head(head) => {
                let name = name.as_str().as_bytes();
                head.iter().find(|(field, _)| eq_ignore_ascii_case(field, name)).map(|(_, value)| value)
            }
        }
    }

    /// The first value of `name` as text, when it is visible ASCII (spaces and tabs
    /// allowed), as `HeaderValue::to_str` reads one.
    pub fn get_str(self, name: &HeaderName) -> Option<&'a str> {
        self.get(name).and_then(visible_text)
    }

    /// Every value of `name`, in order.
    pub fn get_all(self, name: &'a HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        let (map, head) = match self {
            RequestHeaders::Map(map) => (Some(map.get_all(name).into_iter().map(|value| value.as_bytes())), None),
            RequestHeaders::Head(head) => (
                None,
                Some(head.iter().filter(move |(field, _)| eq_ignore_ascii_case(field, name.as_str().as_bytes())).map(|(_, value)| value)),
            ),
        };
        map.into_iter().flatten().chain(head.into_iter().flatten())
    }

    /// Every header in order, its name as it came (a map's names are lower case; a head's
    /// are as the client wrote them) and its value.
    pub fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let (map, head) = match self {
            RequestHeaders::Map(map) => (Some(map.iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))), None),
            RequestHeaders::Head(head) => (None, Some(head.iter())),
        };
        map.into_iter().flatten().chain(head.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The places of `head`'s headers, as the front records them.
    fn places_of(head: &[u8]) -> HeadPlaces {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(head).unwrap().is_complete());
        HeadPlaces::of(head, request.headers).unwrap()
    }

    #[test]
    fn a_parsed_head_reads_like_the_map_hyper_would_make_of_it() {
        let head = b"POST /v1/chat HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer sk-1\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nX-Note: caf\xc3\xa9\r\n\r\n";
        let places = places_of(head);
        let parsed = RequestHeaders::Head(places.in_head(head).unwrap());
        let mut map = HeaderMap::new();
        map.append("host", HeaderValue::from_static("k"));
        map.append("authorization", HeaderValue::from_static("Bearer sk-1"));
        map.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        map.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        map.append("x-note", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let mapped = RequestHeaders::from(&map);
        static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
        static NOTE: HeaderName = HeaderName::from_static("x-note");
        for headers in [parsed, mapped] {
            assert_eq!(headers.get(&axum::http::header::AUTHORIZATION), Some(&b"Bearer sk-1"[..]));
            assert_eq!(headers.get_str(&axum::http::header::HOST), Some("k"));
            assert_eq!(headers.get(&axum::http::header::ACCEPT), None);
            assert_eq!(headers.get_all(&FORWARDED_FOR).collect::<Vec<_>>(), [&b"10.0.0.1"[..], b"10.0.0.2"]);
            // Not visible ASCII: no text, as `HeaderValue::to_str` gives none.
            assert_eq!(headers.get(&NOTE), Some(&b"caf\xc3\xa9"[..]));
            assert_eq!(headers.get_str(&NOTE), None);
            let names: Vec<String> = headers.iter().map(|(name, _)| String::from_utf8_lossy(name).to_ascii_lowercase()).collect();
            assert_eq!(names, ["host", "authorization", "x-forwarded-for", "x-forwarded-for", "x-note"]);
        }
    }

    /// What the module relies on to copy a value to the upstream as it is: httparse takes
    /// in a value exactly the bytes `HeaderValue` takes (no line break, no other control
    /// character but tab, no DEL), byte for byte.
    #[test]
    fn httparse_takes_in_a_value_the_bytes_header_value_takes() {
        for byte in 0..=u8::MAX {
            let head = [b"GET / HTTP/1.1\r\nX: a".as_slice(), &[byte], b"b\r\n\r\n"].concat();
            let mut headers = [httparse::EMPTY_HEADER; 4];
            let parsed = httparse::Request::new(&mut headers).parse(&head).is_ok_and(|status| status.is_complete());
            let taken = HeaderValue::from_bytes(&[b'a', byte, b'b']).is_ok();
            assert_eq!(parsed, taken, "byte {byte:#04x}");
        }
    }

    /// The word-at-a-time compare answers as the standard library's, for every pair of
    /// bytes in a word's first and last place and in the remainder after the words.
    #[test]
    fn names_compare_as_the_standard_library_compares_them() {
        for a in 0..=u8::MAX {
            for b in 0..=u8::MAX {
                for at in [0, 7, 9] {
                    let (mut left, mut right) = (*b"Content-Length", *b"cONTENT-lENGTH");
                    left[at] = a;
                    right[at] = b;
                    assert_eq!(eq_ignore_ascii_case(&left, &right), left.eq_ignore_ascii_case(&right), "{a:#04x} {b:#04x} at {at}");
                }
            }
        }
        for (a, b) in [
            ("", ""),
            ("x-api-key", "X-API-KEY"),
            ("authorization", "authorizatioN"),
            ("accept", "accepts"),
            ("host", "hosT"),
            ("x-keygate-", "X-Keygate-"),
        ] {
            assert_eq!(eq_ignore_ascii_case(a.as_bytes(), b.as_bytes()), a.eq_ignore_ascii_case(b), "{a} {b}");
        }
        assert!(!eq_ignore_ascii_case(b"transfer-encoding", b"transfer-encodinf"));
        assert!(!eq_ignore_ascii_case(b"x-forwarded-for@", b"x-forwarded-for`"));
    }

    #[test]
    fn places_outside_the_head_are_refused() {
        let head = b"POST / HTTP/1.1\r\nHost: k\r\n\r\n";
        let places = places_of(head);
        assert!(places.in_head(&head[..head.len() - 5]).is_none());
        let elsewhere = httparse::Header { name: "Host", value: b"k" };
        assert!(HeadPlaces::of(head, &[elsewhere]).is_none());
    }
}
