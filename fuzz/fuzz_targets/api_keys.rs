//! Permanent API keys as presented to the gateway (`sk-ws-`, `sk-sp-`, classic and legacy
//! `sk-`), their masked form, and the base62 that secure bodies and temporary tokens use.
//!
//! Invariants:
//! - `parse_permanent_key` agrees with a plain restatement of the formats (below), and the
//!   digest of an accepted key is the SHA-256 of the whole text;
//! - `parse_importable_key` accepts exactly the classic and legacy keys, as legacy;
//! - a key built the way keygate issues one (32 base62 + CRC32 checksum) always parses to
//!   its format, and changing one checksum character makes it `BadChecksum`;
//! - `mask_key` keeps the prefix and shows at most a quarter of the body, never more than
//!   4 characters on each side, and never the whole body of a key;
//! - base62 bytes -> text -> bytes and text -> bytes -> text are identities.

#![no_main]

use keygate_core::base62;
use keygate_core::keys::{
    checksum_of, mask_key, parse_importable_key, parse_permanent_key, KeyDigest, KeyFormat, KeyParseError, MAX_PRESENTED_KEY_LENGTH,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_presented(text);
        check_masking(text);
        if text.len() <= 120 && base62::is_base62(text) {
            let bytes = base62::decode_bytes(text).expect("base62 text decodes");
            assert_eq!(base62::encode_bytes(&bytes), text, "base62 text -> bytes -> text");
        }
    }
    check_issued(data);
    // Base62 of bytes is quadratic in their length (and was most of a run's time at 96
    // bytes); a temporary token is 65.
    let bytes = &data[..data.len().min(66)];
    let encoded = base62::encode_bytes(bytes);
    assert!(base62::is_base62(&encoded));
    assert_eq!(base62::decode_bytes(&encoded).as_deref(), Some(bytes), "base62 bytes -> text -> bytes");
});

/// The key formats as the documentation states them, written without the parser's code.
fn expected(text: &str) -> Result<KeyFormat, KeyParseError> {
    if text.is_empty() {
        return Err(KeyParseError::Empty);
    }
    if text.len() > MAX_PRESENTED_KEY_LENGTH {
        return Err(KeyParseError::Malformed);
    }
    for (prefix, format) in [("sk-ws-", KeyFormat::Secure), ("sk-sp-", KeyFormat::Plan)] {
        if let Some(body) = text.strip_prefix(prefix) {
            if body.len() != 38 || !body.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
                return Err(KeyParseError::Malformed);
            }
            return if checksum_of(&body[..32]) == body[32..] { Ok(format) } else { Err(KeyParseError::BadChecksum) };
        }
    }
    let Some(body) = text.strip_prefix("sk-") else { return Err(KeyParseError::Malformed) };
    if body.len() == 32 && body.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)) {
        return Ok(KeyFormat::Classic);
    }
    if (8..=200).contains(&body.len()) && body.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
        return Ok(KeyFormat::Legacy);
    }
    Err(KeyParseError::Malformed)
}

fn check_presented(text: &str) {
    let parsed = parse_permanent_key(text);
    assert_eq!(parsed.as_ref().map(|key| key.format).map_err(Clone::clone), expected(text), "{text:?}");
    if let Ok(key) = &parsed {
        assert_eq!(key.digest, KeyDigest::of(text));
        assert!(key.digest.constant_time_eq(&KeyDigest::of(text)));
    }
    match (parse_importable_key(text), &parsed) {
        (Ok(imported), Ok(key)) => {
            assert!(matches!(key.format, KeyFormat::Classic | KeyFormat::Legacy), "{text:?} imported as {:?}", key.format);
            assert_eq!(imported.format, KeyFormat::Legacy);
            assert_eq!(imported.digest, key.digest);
        }
        (Ok(_), Err(error)) => panic!("{text:?} importable but refused as a key: {error}"),
        (Err(_), Ok(key)) => assert!(matches!(key.format, KeyFormat::Secure | KeyFormat::Plan), "{text:?} not importable"),
        (Err(_), Err(_)) => {}
    }
}

fn check_masking(text: &str) {
    let masked = mask_key(text);
    let prefix = ["sk-ws-", "sk-sp-", "sk-", "st-"].into_iter().find(|prefix| text.starts_with(prefix)).unwrap_or("");
    let body: Vec<char> = text[prefix.len()..].chars().collect();
    let shown_each_side = (body.len() / 4).min(4);
    let head: String = body[..shown_each_side].iter().collect();
    let tail: String = body[body.len() - shown_each_side..].iter().collect();
    assert_eq!(masked, format!("{prefix}{head}****{tail}"), "{text:?}");
    if parse_permanent_key(text).is_ok() {
        let body: String = body.iter().collect();
        assert!(!masked.contains(&body), "{masked:?} shows the whole key");
    }
}

/// A key made the way `generate_key` makes one, from the input instead of the OS.
fn check_issued(data: &[u8]) {
    if data.len() < 34 {
        return;
    }
    let random_part: String = data[..32].iter().map(|byte| base62::ALPHABET[usize::from(*byte) % 62] as char).collect();
    let checksum = checksum_of(&random_part);
    assert_eq!(checksum.len(), 6);
    assert!(base62::is_base62(&checksum));
    for (prefix, format) in [("sk-ws-", KeyFormat::Secure), ("sk-sp-", KeyFormat::Plan)] {
        let whole = format!("{prefix}{random_part}{checksum}");
        let parsed = parse_permanent_key(&whole).unwrap_or_else(|error| panic!("{whole:?}: {error}"));
        assert_eq!((parsed.format, parsed.digest), (format, KeyDigest::of(&whole)));
        assert!(parse_importable_key(&whole).is_err(), "keygate's own keys are not imported");
        let mut changed = whole.clone().into_bytes();
        let position = prefix.len() + 32 + usize::from(data[32]) % 6;
        let replacement = base62::ALPHABET[usize::from(data[33]) % 62];
        if changed[position] != replacement {
            changed[position] = replacement;
            let changed = String::from_utf8(changed).expect("ASCII");
            assert_eq!(parse_permanent_key(&changed), Err(KeyParseError::BadChecksum), "{changed:?}");
        }
    }
    let classic: String = data[..32].iter().map(|byte| char::from(b"0123456789abcdef"[usize::from(*byte) % 16])).collect();
    let classic = format!("sk-{classic}");
    assert_eq!(parse_permanent_key(&classic).map(|key| key.format), Ok(KeyFormat::Classic));
    assert_eq!(parse_importable_key(&classic).map(|key| key.format), Ok(KeyFormat::Legacy));
}
