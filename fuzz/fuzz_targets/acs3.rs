//! ACS3-HMAC-SHA256, the management API's request signature: the `Authorization` header
//! parser, the canonical query and canonical request, and the `x-acs-date` timestamp.
//!
//! The input is lines: the `Authorization` header, the method, the path, the raw query,
//! then `name:value` request headers (the first 24).
//!
//! Invariants:
//! - the header parser refuses as `NotAcs3` exactly what does not start with the algorithm
//!   and a space; what it accepts has a non-empty credential and signature without commas
//!   and non-empty, trimmed, lower-case signed header names without `;` or `,`, and
//!   formatting it again parses to the same value;
//! - the canonical query is made only of unreserved characters, `%XX`, `=` and `&`, is a
//!   fixpoint, and does not depend on the order of the parameters;
//! - a request signed the way the SDKs sign it verifies: the server, reading the signed
//!   header list back from the `Authorization` header, builds the same canonical request,
//!   and the signature matches in either case but not with one hex digit changed;
//! - a timestamp that parses formats back to the same text when it is a real calendar
//!   date and second, and every Unix time of years 0-9999 formats and parses back.

#![no_main]

use keygate_core::acs3::{
    canonical_query, canonical_request, parse_authorization, payload_sha256, signature, signatures_match, string_to_sign,
    within_clock_window, Acs3Authorization, Acs3Error, ALGORITHM,
};
use keygate_core::civil_time::{format_utc_timestamp, parse_utc_timestamp};
use libfuzzer_sys::fuzz_target;

const MAX_HEADERS: usize = 24;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let authorization = lines.next().unwrap_or("");
    let method = lines.next().unwrap_or("GET");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    // Matching signed names to headers is quadratic; a signed request has about ten, and
    // hundreds made most of a run's time.
    let headers: Vec<(String, String)> = lines
        .take(MAX_HEADERS)
        .map(|line| line.split_once(':').unwrap_or((line, "")))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();

    check_header(authorization);
    check_query(query);
    // The query's canonical form is checked above; canonicalising it twice more here made
    // a third of a run's time, so the signed request takes it only when short.
    check_signing(method, path, if query.len() <= 64 { query } else { "" }, &headers, data);
    for (_, value) in &headers {
        check_timestamp(value.trim());
    }
    check_timestamp(authorization);
    if data.len() >= 8 {
        check_formatting(i64::from_le_bytes(data[..8].try_into().expect("8 bytes")));
    }
});

fn format_header(parsed: &Acs3Authorization) -> String {
    format!(
        "{ALGORITHM} Credential={},SignedHeaders={},Signature={}",
        parsed.access_key_id,
        parsed.signed_headers.join(";"),
        parsed.signature
    )
}

fn check_header(header: &str) {
    let is_acs3 = header.trim().strip_prefix(ALGORITHM).is_some_and(|rest| rest.starts_with(' '));
    match parse_authorization(header) {
        Ok(parsed) => {
            assert!(is_acs3, "{header:?}");
            for value in [&parsed.access_key_id, &parsed.signature] {
                assert!(!value.is_empty() && !value.contains(','), "{header:?} gave {value:?}");
            }
            assert!(!parsed.signed_headers.is_empty());
            for name in &parsed.signed_headers {
                assert!(!name.is_empty() && !name.contains([';', ',']), "{header:?} gave the header name {name:?}");
                assert_eq!(name.trim(), name);
                assert_eq!(&name.to_ascii_lowercase(), name);
            }
            let again = format_header(&parsed);
            assert_eq!(parse_authorization(&again).as_ref(), Ok(&parsed), "{header:?} formatted as {again:?}");
        }
        Err(Acs3Error::NotAcs3) => assert!(!is_acs3, "{header:?}"),
        Err(Acs3Error::MissingPart(_)) => assert!(is_acs3, "{header:?}"),
    }
}

fn is_canonical_query_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.~%=&".contains(&byte)
}

fn check_query(query: &str) {
    let canonical = canonical_query(query);
    assert!(canonical.bytes().all(is_canonical_query_byte), "{query:?} -> {canonical:?}");
    for (index, _) in canonical.match_indices('%') {
        let escape = &canonical.as_bytes()[index + 1..index + 3];
        assert!(escape.iter().all(|byte| byte.is_ascii_digit() || (b'A'..=b'F').contains(byte)), "{canonical:?}");
    }
    assert_eq!(canonical_query(&canonical), canonical, "the canonical query of {query:?} is not a fixpoint");
    let reversed: Vec<&str> = query.split('&').rev().collect();
    assert_eq!(canonical_query(&reversed.join("&")), canonical, "the order of {query:?} changed its canonical form");
}

fn check_signing(method: &str, path: &str, query: &str, headers: &[(String, String)], data: &[u8]) {
    // The names a client signs: lower-case, as the SDKs send them; a name the header
    // cannot carry (empty, with a separator, padded) is left unsigned.
    let signed: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| !name.is_empty() && !name.contains([';', ',']) && name.trim() == name)
        .collect();
    if signed.is_empty() {
        return;
    }
    let payload_hash = payload_sha256(data);
    let secret = "TEST_SECRET_123";
    let client_request = canonical_request(method, path, query, headers, &signed, &payload_hash);
    let client_signature = signature(secret, &string_to_sign(&client_request));
    let header = format!("{ALGORITHM} Credential=LTAI_TEST_AK,SignedHeaders={},Signature={client_signature}", signed.join(";"));
    let parsed = parse_authorization(&header).unwrap_or_else(|error| panic!("{header:?}: {error}"));
    let server_request = canonical_request(method, path, query, headers, &parsed.signed_headers, &payload_hash);
    assert_eq!(server_request, client_request);
    let expected = signature(secret, &string_to_sign(&server_request));
    assert!(signatures_match(&expected, &parsed.signature));
    assert!(signatures_match(&expected, &parsed.signature.to_ascii_uppercase()));
    let mut changed = parsed.signature.into_bytes();
    let position = usize::from(data[0]) % changed.len();
    changed[position] = if changed[position] == b'0' { b'1' } else { b'0' };
    assert!(!signatures_match(&expected, std::str::from_utf8(&changed).expect("hex")));
    assert!(!signatures_match(&expected, &expected[1..]));
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn check_timestamp(text: &str) {
    let Some(seconds) = parse_utc_timestamp(text) else { return };
    assert_eq!(text.len(), 20);
    // A signed date is compared with the clock; the comparison must not overflow.
    let _ = within_clock_window(seconds, 1_800_000_000);
    let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("digits");
    let (year, month, day, second) = (field(0..4), field(5..7), field(8..10), field(17..19));
    if day <= days_in_month(year, month) && second < 60 {
        assert_eq!(format_utc_timestamp(seconds), text);
    }
}

fn check_formatting(seconds: i64) {
    // Unix times of 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
    let seconds = seconds.rem_euclid(253_402_300_800 + 62_167_219_200) - 62_167_219_200;
    let text = format_utc_timestamp(seconds);
    assert_eq!(parse_utc_timestamp(&text), Some(seconds), "{seconds} -> {text:?}");
}
