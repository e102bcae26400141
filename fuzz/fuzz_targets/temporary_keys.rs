//! Temporary keys (`st-`): the token a client presents, verified with the signing secret,
//! and the expiry read from it without the secret.
//!
//! Invariants:
//! - a presented text that verifies is a token of the documented shape whose unverified
//!   expiry is the verified one, later than now; an expired one reads as expired unverified
//!   too; anything the unverified reader accepts has the token's shape;
//! - a token minted from the input's id, expiry and parent verifies to exactly those
//!   claims before its expiry, is `Expired` from then on, is `Invalid` under another
//!   secret, and is `Invalid` with any one character changed, dropped or added.

#![no_main]

use keygate_core::base62;
use keygate_core::keys::KeyDigest;
use keygate_core::temporary_keys::{mint_temporary_key, unverified_expiry, verify_temporary_key, TemporaryKeyError, TemporaryKeySecret};
use libfuzzer_sys::fuzz_target;

/// The secret of the committed seed tokens (`fuzz/corpus/temporary_keys/`), so that the
/// accepting path is reached from the start.
const SECRET: [u8; 32] = [7; 32];
/// 2027-01-15: before the seeds' expiry.
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let secret = TemporaryKeySecret::new(SECRET);
    if let Ok(text) = std::str::from_utf8(data) {
        check_presented(&secret, text);
    }
    if data.len() >= 26 {
        check_minted(&secret, data);
    }
});

fn number(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

fn has_token_shape(text: &str) -> bool {
    text.strip_prefix("st-").is_some_and(|body| {
        body.len() <= 120 && base62::is_base62(body) && base62::decode_bytes(body).is_some_and(|bytes| bytes.len() == 65 && bytes[0] == 1)
    })
}

fn check_presented(secret: &TemporaryKeySecret, text: &str) {
    let unverified = unverified_expiry(text);
    if unverified.is_some() {
        assert!(has_token_shape(text), "{text:?} read without having the shape of a token");
    }
    match verify_temporary_key(secret, text, NOW) {
        Ok(claims) => {
            assert!(has_token_shape(text));
            assert!(claims.expires_at > NOW);
            assert_eq!(unverified, Some(claims.expires_at));
        }
        Err(TemporaryKeyError::Expired) => assert!(unverified.is_some_and(|expiry| expiry <= NOW), "{text:?}"),
        Err(TemporaryKeyError::Invalid) => {}
    }
}

fn check_minted(secret: &TemporaryKeySecret, data: &[u8]) {
    let parent_key_id = number(&data[0..8]);
    let expires_at = number(&data[8..16]);
    let now = number(&data[16..24]);
    let parent = KeyDigest::of(&String::from_utf8_lossy(&data[26..]));
    let token = mint_temporary_key(secret, parent_key_id, &parent, expires_at);
    assert!(has_token_shape(&token), "{token:?}");
    assert_eq!(unverified_expiry(&token), Some(expires_at));
    match verify_temporary_key(secret, &token, now) {
        Ok(claims) => {
            assert!(now < expires_at);
            assert_eq!((claims.parent_key_id, claims.expires_at), (parent_key_id, expires_at));
            assert!(claims.matches_parent_digest(&parent));
            // Another parent (a reset one) differs in its first 8 bytes but once in 2^64.
            let reset = KeyDigest::of(&format!("{}-reset", String::from_utf8_lossy(&data[26..])));
            assert_eq!(claims.matches_parent_digest(&reset), parent.as_bytes()[..8] == reset.as_bytes()[..8]);
        }
        Err(error) => assert_eq!((error, now >= expires_at), (TemporaryKeyError::Expired, true), "{token:?} at {now}"),
    }
    let other = TemporaryKeySecret::new([8; 32]);
    assert_eq!(verify_temporary_key(&other, &token, i64::MIN), Err(TemporaryKeyError::Invalid));

    // One character changed, dropped or added anywhere in the body: base62 decoding is
    // one-to-one, so the bytes change and the tag no longer holds.
    let body = &token[3..];
    let position = usize::from(data[24]) % body.len();
    let replacement = base62::ALPHABET[usize::from(data[25]) % 62] as char;
    // One of the three per input: verifying is most of a run's time.
    let forged = match data[25] % 3 {
        0 => format!("st-{}{}", &body[..position], &body[position + 1..]),
        1 => format!("st-{}{replacement}{}", &body[..position], &body[position..]),
        _ if body.as_bytes()[position] as char == replacement => return,
        _ => format!("st-{}{replacement}{}", &body[..position], &body[position + 1..]),
    };
    assert_eq!(verify_temporary_key(secret, &forged, i64::MIN), Err(TemporaryKeyError::Invalid), "{forged:?}");
}
