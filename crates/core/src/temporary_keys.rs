//! Temporary keys (`st-`): stateless tokens minted from a permanent key, valid for
//! `expire_in_seconds` (1-1800, default 60).
//!
//! A token is `st-` + base62(payload || tag): the payload holds a format version, the
//! parent key id, the expiry (Unix seconds), a fingerprint of the parent's digest and a
//! random nonce; the tag is HMAC-SHA256 over the payload under a secret derived from the
//! master key. Any node with the master key verifies a token without a database read; the
//! parent's state is checked on every use, and the fingerprint makes a token die when its
//! parent is reset (the id stays, the digest changes).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::base62;
use crate::keys::{KeyDigest, TEMPORARY_PREFIX};
use crate::random::fill_random;

/// Default lifetime of a temporary key.
pub const DEFAULT_TEMPORARY_KEY_SECONDS: i64 = 60;
/// Longest lifetime of a temporary key.
pub const MAX_TEMPORARY_KEY_SECONDS: i64 = 1800;

const FORMAT_VERSION: u8 = 1;
const FINGERPRINT_LENGTH: usize = 8;
const NONCE_LENGTH: usize = 8;
const PAYLOAD_LENGTH: usize = 1 + 8 + 8 + FINGERPRINT_LENGTH + NONCE_LENGTH;
const TAG_LENGTH: usize = 32;

/// The signing secret, derived from the master key by the caller.
#[derive(Clone)]
pub struct TemporaryKeySecret([u8; 32]);

impl TemporaryKeySecret {
    pub fn new(bytes: [u8; 32]) -> TemporaryKeySecret {
        TemporaryKeySecret(bytes)
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_LENGTH] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for TemporaryKeySecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TemporaryKeySecret(..)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporaryKeyClaims {
    pub parent_key_id: i64,
    pub expires_at: i64,
    parent_fingerprint: [u8; FINGERPRINT_LENGTH],
}

impl TemporaryKeyClaims {
    /// True when the token was minted from the parent's current secret.
    pub fn matches_parent_digest(&self, digest: &KeyDigest) -> bool {
        bool::from(digest.as_bytes()[..FINGERPRINT_LENGTH].ct_eq(&self.parent_fingerprint))
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemporaryKeyError {
    #[error("the temporary key is malformed or its signature does not hold")]
    Invalid,
    #[error("the temporary key has expired")]
    Expired,
}

/// Checks a requested lifetime: 1 to 1800 seconds.
pub fn checked_lifetime(seconds: i64) -> Option<i64> {
    (1..=MAX_TEMPORARY_KEY_SECONDS).contains(&seconds).then_some(seconds)
}

/// Mints a token for `parent_key_id` (whose current digest is `parent_digest`).
pub fn mint_temporary_key(secret: &TemporaryKeySecret, parent_key_id: i64, parent_digest: &KeyDigest, expires_at: i64) -> String {
    let mut payload = Vec::with_capacity(PAYLOAD_LENGTH + TAG_LENGTH);
    payload.push(FORMAT_VERSION);
    payload.extend_from_slice(&parent_key_id.to_be_bytes());
    payload.extend_from_slice(&expires_at.to_be_bytes());
    payload.extend_from_slice(&parent_digest.as_bytes()[..FINGERPRINT_LENGTH]);
    let mut nonce = [0u8; NONCE_LENGTH];
    fill_random(&mut nonce);
    payload.extend_from_slice(&nonce);
    let tag = secret.tag(&payload);
    payload.extend_from_slice(&tag);
    format!("{TEMPORARY_PREFIX}{}", base62::encode_bytes(&payload))
}

/// Verifies a token's signature and expiry at `now` (Unix seconds).
pub fn verify_temporary_key(secret: &TemporaryKeySecret, token: &str, now: i64) -> Result<TemporaryKeyClaims, TemporaryKeyError> {
    let body = token.strip_prefix(TEMPORARY_PREFIX).ok_or(TemporaryKeyError::Invalid)?;
    if body.len() > 120 {
        return Err(TemporaryKeyError::Invalid);
    }
    let bytes = base62::decode_bytes(body).ok_or(TemporaryKeyError::Invalid)?;
    if bytes.len() != PAYLOAD_LENGTH + TAG_LENGTH {
        return Err(TemporaryKeyError::Invalid);
    }
    let (payload, tag) = bytes.split_at(PAYLOAD_LENGTH);
    if !bool::from(secret.tag(payload).ct_eq(tag)) || payload[0] != FORMAT_VERSION {
        return Err(TemporaryKeyError::Invalid);
    }
    let parent_key_id = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
    let expires_at = i64::from_be_bytes(payload[9..17].try_into().expect("8 bytes"));
    let parent_fingerprint: [u8; FINGERPRINT_LENGTH] = payload[17..17 + FINGERPRINT_LENGTH].try_into().expect("fingerprint");
    if now >= expires_at {
        return Err(TemporaryKeyError::Expired);
    }
    Ok(TemporaryKeyClaims { parent_key_id, expires_at, parent_fingerprint })
}

/// The expiry written in a token, read WITHOUT checking its signature (which needs the
/// master key): for telling the holder of a token that it has run out, never for accepting
/// it. `None` when the token does not have the shape of one.
pub fn unverified_expiry(token: &str) -> Option<i64> {
    let body = token.strip_prefix(TEMPORARY_PREFIX).filter(|body| body.len() <= 120)?;
    let bytes = base62::decode_bytes(body)?;
    if bytes.len() != PAYLOAD_LENGTH + TAG_LENGTH || bytes[0] != FORMAT_VERSION {
        return None;
    }
    Some(i64::from_be_bytes(bytes[9..17].try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> TemporaryKeySecret {
        TemporaryKeySecret::new([byte; 32])
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let digest = KeyDigest::of("sk-parent");
        let token = mint_temporary_key(&secret(1), 42, &digest, 1_000);
        assert!(token.starts_with("st-"));
        let claims = verify_temporary_key(&secret(1), &token, 999).unwrap();
        assert_eq!((claims.parent_key_id, claims.expires_at), (42, 1_000));
        assert!(claims.matches_parent_digest(&digest));
        assert!(!claims.matches_parent_digest(&KeyDigest::of("sk-reset")));
        assert_eq!(verify_temporary_key(&secret(1), &token, 1_000), Err(TemporaryKeyError::Expired));
    }

    #[test]
    fn another_secret_or_a_changed_character_is_refused() {
        let token = mint_temporary_key(&secret(1), 42, &KeyDigest::of("sk-parent"), 1_000);
        assert_eq!(verify_temporary_key(&secret(2), &token, 0), Err(TemporaryKeyError::Invalid));
        let mut characters: Vec<char> = token.chars().collect();
        let last = characters.len() - 1;
        characters[last] = if characters[last] == 'a' { 'b' } else { 'a' };
        let changed: String = characters.into_iter().collect();
        assert_eq!(verify_temporary_key(&secret(1), &changed, 0), Err(TemporaryKeyError::Invalid));
        assert_eq!(verify_temporary_key(&secret(1), "st-", 0), Err(TemporaryKeyError::Invalid));
        assert_eq!(verify_temporary_key(&secret(1), "st-!!", 0), Err(TemporaryKeyError::Invalid));
    }

    #[test]
    fn the_expiry_can_be_read_without_the_secret_but_only_from_a_token_shape() {
        let token = mint_temporary_key(&secret(1), 42, &KeyDigest::of("sk-parent"), 1_234);
        assert_eq!(unverified_expiry(&token), Some(1_234));
        assert_eq!(unverified_expiry("st-"), None);
        assert_eq!(unverified_expiry("st-abc"), None);
        assert_eq!(unverified_expiry("sk-ws-abc"), None);
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(checked_lifetime(60), Some(60));
        assert_eq!(checked_lifetime(0), None);
        assert_eq!(checked_lifetime(1801), None);
    }
}
