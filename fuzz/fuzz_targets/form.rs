//! `application/x-www-form-urlencoded` bodies and query strings of the management API and
//! the console (`keygate_wire::form`).
//!
//! Invariants:
//! - every pair read has a non-empty name, and there are no more pairs than pieces;
//! - a component decodes as the percent-encoding crate decodes it (with `+` as a space),
//!   and only when every `%` starts a valid escape and the result is UTF-8;
//! - pairs written back as a form (the SDKs' encoding) read back as the same pairs;
//! - a refusal names the first bad piece: it is not empty, it is malformed, and every
//!   piece before it reads.

#![no_main]

use keygate_wire::form::{decode_component, parse_form};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What the Alibaba Cloud SDKs leave unencoded in a form.
const FORM_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b' ');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, FORM_ENCODE).to_string().replace(' ', "+")
}

fn well_escaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices('%').all(|(index, _)| bytes.get(index + 1..index + 3).is_some_and(|escape| escape.iter().all(u8::is_ascii_hexdigit)))
}

fn check_component(text: &str) {
    let expected = if well_escaped(text) {
        percent_decode_str(&text.replace('+', " ")).decode_utf8().ok().map(|decoded| decoded.into_owned())
    } else {
        None
    };
    assert_eq!(decode_component(text), expected, "{text:?}");
}

fn piece_reads(piece: &str) -> bool {
    let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
    decode_component(name).is_some_and(|name| !name.is_empty()) && decode_component(value).is_some()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pieces: Vec<&str> = text.split('&').collect();
    for piece in pieces.iter().take(8) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        check_component(name);
        check_component(value);
    }
    match parse_form(text) {
        Ok(pairs) => {
            assert!(pairs.len() <= pieces.len());
            assert!(pairs.iter().all(|(name, _)| !name.is_empty()));
            assert!(pieces.iter().all(|piece| piece.is_empty() || piece_reads(piece)), "{text:?}");
            let written: Vec<String> = pairs.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect();
            let written = written.join("&");
            assert_eq!(parse_form(&written).as_ref(), Ok(&pairs), "{text:?} written as {written:?}");
        }
        Err(malformed) => {
            let index = malformed.field.checked_sub(1).expect("fields count from 1");
            let piece = pieces.get(index).unwrap_or_else(|| panic!("field {} of {} pieces", malformed.field, pieces.len()));
            assert!(!piece.is_empty() && !piece_reads(piece), "{piece:?} is not malformed");
            assert!(pieces[..index].iter().all(|piece| piece.is_empty() || piece_reads(piece)), "{text:?}");
        }
    }
});
