//! The leak scanner (`keygate scan`, `POST /keygate/v1/leaks`) over arbitrary bytes, and
//! with a key planted in them. The input: 2 bytes of position, a format byte, 32 bytes for
//! the planted key's body, then the bytes to scan.
//!
//! Invariants:
//! - findings are in order, do not overlap, and lie within the bytes; a confirmed one is
//!   a secure or plan key whose checksum holds, a possible one a classic key that stands
//!   alone; line and column are those of its first byte;
//! - a secure or plan key planted anywhere is found where it was planted, and a classic
//!   one too when nothing alphanumeric touches it (unless a finding before it overlaps
//!   it: keys are reported without overlap).

#![no_main]

use keygate_core::base62;
use keygate_core::keys::{checksum_of, parse_permanent_key, KeyFormat};
use keygate_core::leak_scan::{find_leaked_keys, LeakCandidate, LeakConfidence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_findings(data, &find_leaked_keys(data));
    if data.len() < 35 {
        return;
    }
    let haystack = &data[35..];
    let position = usize::from(u16::from_le_bytes([data[0], data[1]])) % (haystack.len() + 1);
    let key = match data[2] % 3 {
        0 => format!("sk-ws-{}", secure_body(&data[3..35])),
        1 => format!("sk-sp-{}", secure_body(&data[3..35])),
        _ => format!("sk-{}", data[3..35].iter().map(|byte| char::from(b"0123456789abcdef"[usize::from(*byte) % 16])).collect::<String>()),
    };
    let mut planted = haystack[..position].to_vec();
    planted.extend_from_slice(key.as_bytes());
    planted.extend_from_slice(&haystack[position..]);
    let findings = find_leaked_keys(&planted);
    check_findings(&planted, &findings);
    let end = position + key.len();
    let classic = data[2] % 3 == 2;
    let touched =
        (position > 0 && planted[position - 1].is_ascii_alphanumeric()) || planted.get(end).is_some_and(u8::is_ascii_alphanumeric);
    if classic && touched {
        return;
    }
    let found = findings.iter().any(|finding| finding.start == position && finding.end == end);
    let overlapped = findings.iter().any(|finding| finding.start < position && finding.end > position);
    assert!(found || overlapped, "{key:?} planted at {position} not found: {findings:?}");
});

fn secure_body(bytes: &[u8]) -> String {
    let random_part: String = bytes.iter().map(|byte| base62::ALPHABET[usize::from(*byte) % 62] as char).collect();
    let checksum = checksum_of(&random_part);
    format!("{random_part}{checksum}")
}

fn check_findings(haystack: &[u8], findings: &[LeakCandidate]) {
    let mut previous_end = 0;
    for finding in findings {
        assert!(previous_end <= finding.start && finding.start < finding.end && finding.end <= haystack.len(), "{findings:?}");
        previous_end = finding.end;
        let key = finding.key_in(haystack);
        let parsed = parse_permanent_key(key).unwrap_or_else(|error| panic!("{key:?} reported: {error}"));
        assert_eq!(parsed.format, finding.format, "{key:?}");
        match finding.confidence {
            LeakConfidence::Confirmed => assert!(matches!(finding.format, KeyFormat::Secure | KeyFormat::Plan), "{finding:?}"),
            LeakConfidence::Possible => {
                assert_eq!(finding.format, KeyFormat::Classic);
                assert!(finding.start == 0 || !haystack[finding.start - 1].is_ascii_alphanumeric(), "{finding:?}");
                assert!(haystack.get(finding.end).is_none_or(|byte| !byte.is_ascii_alphanumeric()), "{finding:?}");
            }
        }
        let before = &haystack[..finding.start];
        let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
        let column = finding.start - before.iter().rposition(|byte| *byte == b'\n').map_or(0, |newline| newline + 1) + 1;
        assert_eq!((finding.line, finding.column), (line, column), "{finding:?}");
    }
}
