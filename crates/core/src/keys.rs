//! API key formats: generation, parsing (with the CRC32 checksum of secure keys), the
//! SHA-256 digest that is the only thing ever stored, and the masked form shown after
//! creation.
//!
//! A plaintext key is held in a [`SecretString`] so that it cannot be printed by accident;
//! it exists only in the response that creates it and in the request that presents it.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::base62;
use crate::random::random_string_from;

/// Prefix of secure keys (`sk-ws-` + 32 base62 + 6 base62 checksum).
pub const SECURE_PREFIX: &str = "sk-ws-";
/// Prefix of Token Plan / Coding Plan keys (`sk-sp-` + the secure body).
pub const PLAN_PREFIX: &str = "sk-sp-";
/// Prefix of classic keys (`sk-` + 32 lowercase hex) and of imported legacy keys.
pub const CLASSIC_PREFIX: &str = "sk-";
/// Prefix of temporary keys.
pub const TEMPORARY_PREFIX: &str = "st-";

const RANDOM_BODY_LENGTH: usize = 32;
const CHECKSUM_LENGTH: usize = 6;
const SECURE_BODY_LENGTH: usize = RANDOM_BODY_LENGTH + CHECKSUM_LENGTH;
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
/// Longest key accepted at all; anything longer is malformed before it is hashed.
pub const MAX_PRESENTED_KEY_LENGTH: usize = 512;

/// The shape of a key, which decides how it was made and how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// `sk-ws-`: 190 bits from the OS, CRC32 checksum; shown once.
    Secure,
    /// `sk-` + 32 lowercase hex: 128 bits; the format of regions without the upgrade.
    Classic,
    /// Any other `sk-` key brought in by import; its plaintext may be viewed again.
    Legacy,
    /// `sk-sp-`: Token Plan / Coding Plan keys, accepted only on plan listeners.
    Plan,
    /// `st-`: a signed, self-contained temporary key.
    Temporary,
}

impl KeyFormat {
    /// The stable name used in storage and in API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFormat::Secure => "secure",
            KeyFormat::Classic => "classic",
            KeyFormat::Legacy => "legacy",
            KeyFormat::Plan => "plan",
            KeyFormat::Temporary => "temporary",
        }
    }

    /// Parses the stable name.
    pub fn parse(name: &str) -> Option<KeyFormat> {
        match name {
            "secure" => Some(KeyFormat::Secure),
            "classic" => Some(KeyFormat::Classic),
            "legacy" => Some(KeyFormat::Legacy),
            "plan" => Some(KeyFormat::Plan),
            "temporary" => Some(KeyFormat::Temporary),
            _ => None,
        }
    }
}

/// SHA-256 of the whole key: the lookup index and the only form a key is stored in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl std::hash::Hash for KeyDigest {
    /// A SHA-256 digest is uniformly distributed, so its first 64 bits are as good a hash
    /// input as all 256 (equality still compares all 32 bytes). The registry's table uses
    /// the same 64 bits as the hash itself (see `verification::digest_hash`).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl KeyDigest {
    /// Digest of a whole presented or generated key.
    pub fn of(whole_key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(whole_key.as_bytes()).into())
    }

    /// Rebuilds a digest read back from storage.
    pub fn from_bytes(bytes: &[u8]) -> Option<KeyDigest> {
        Some(KeyDigest(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, for comparisons where timing must not leak.
    pub fn constant_time_eq(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest is not secret, but a short form keeps logs readable.
        write!(formatter, "KeyDigest({}…)", hex::encode(&self.0[..6]))
    }
}

/// A key just made: its plaintext (to be shown once), digest and masked form.
pub struct GeneratedKey {
    pub plaintext: SecretString,
    pub digest: KeyDigest,
    pub masked: String,
    pub format: KeyFormat,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("GeneratedKey").field("masked", &self.masked).field("format", &self.format).finish_non_exhaustive()
    }
}

/// The 6-character base62 CRC32 of a 32-character random body.
pub fn checksum_of(random_body: &str) -> String {
    base62::encode_u64_fixed(u64::from(crc32fast::hash(random_body.as_bytes())), CHECKSUM_LENGTH)
}

fn secure_body() -> String {
    let random_part = random_string_from(base62::ALPHABET, RANDOM_BODY_LENGTH);
    let checksum = checksum_of(&random_part);
    format!("{random_part}{checksum}")
}

/// Makes a new key of `format` (secure, classic or plan) from the OS random source.
///
/// # Panics
/// For `Legacy` and `Temporary`, which are never generated here.
pub fn generate_key(format: KeyFormat) -> GeneratedKey {
    let whole = match format {
        KeyFormat::Secure => format!("{SECURE_PREFIX}{}", secure_body()),
        KeyFormat::Plan => format!("{PLAN_PREFIX}{}", secure_body()),
        KeyFormat::Classic => format!("{CLASSIC_PREFIX}{}", random_string_from(LOWER_HEX, RANDOM_BODY_LENGTH)),
        KeyFormat::Legacy | KeyFormat::Temporary => {
            panic!("{} keys are not generated here", format.as_str())
        }
    };
    let digest = KeyDigest::of(&whole);
    let masked = mask_key(&whole);
    GeneratedKey { plaintext: SecretString::from(whole), digest, masked, format }
}

/// Why a presented key was refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("the key is empty")]
    Empty,
    #[error("the key does not have a known prefix or shape")]
    Malformed,
    #[error("the key's checksum does not match")]
    BadChecksum,
}

/// A presented permanent key that has the right shape: what to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey {
    pub format: KeyFormat,
    pub digest: KeyDigest,
}

fn is_classic_body(body: &str) -> bool {
    body.len() == RANDOM_BODY_LENGTH && body.bytes().all(|byte| LOWER_HEX.contains(&byte))
}

fn is_legacy_body(body: &str) -> bool {
    // Keys imported from other deployments: printable, no whitespace, bounded length.
    (8..=200).contains(&body.len()) && body.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn check_secure_body(body: &str) -> Result<(), KeyParseError> {
    if body.len() != SECURE_BODY_LENGTH || !base62::is_base62(body) {
        return Err(KeyParseError::Malformed);
    }
    let (random_part, checksum) = body.split_at(RANDOM_BODY_LENGTH);
    // As `checksum_of`, on the stack: this runs for every presented key.
    let mut expected = [0u8; CHECKSUM_LENGTH];
    base62::encode_u64_into(u64::from(crc32fast::hash(random_part.as_bytes())), &mut expected);
    if expected != checksum.as_bytes() {
        return Err(KeyParseError::BadChecksum);
    }
    Ok(())
}

/// Parses a permanent key (`sk-ws-`, `sk-sp-`, classic or legacy `sk-`). Temporary `st-`
/// keys are parsed by [`crate::verification`], which needs the signing secret.
pub fn parse_permanent_key(presented: &str) -> Result<PresentedKey, KeyParseError> {
    if presented.is_empty() {
        return Err(KeyParseError::Empty);
    }
    if presented.len() > MAX_PRESENTED_KEY_LENGTH {
        return Err(KeyParseError::Malformed);
    }
    let format = if let Some(body) = presented.strip_prefix(SECURE_PREFIX) {
        check_secure_body(body)?;
        KeyFormat::Secure
    } else if let Some(body) = presented.strip_prefix(PLAN_PREFIX) {
        check_secure_body(body)?;
        KeyFormat::Plan
    } else if let Some(body) = presented.strip_prefix(CLASSIC_PREFIX) {
        if is_classic_body(body) {
            KeyFormat::Classic
        } else if is_legacy_body(body) {
            KeyFormat::Legacy
        } else {
            return Err(KeyParseError::Malformed);
        }
    } else {
        return Err(KeyParseError::Malformed);
    };
    Ok(PresentedKey { format, digest: KeyDigest::of(presented) })
}

/// Validates a key offered for import (`sk-` and not `sk-ws-`/`sk-sp-`).
pub fn parse_importable_key(presented: &str) -> Result<PresentedKey, KeyParseError> {
    let parsed = parse_permanent_key(presented)?;
    match parsed.format {
        KeyFormat::Classic | KeyFormat::Legacy => Ok(PresentedKey { format: KeyFormat::Legacy, digest: parsed.digest }),
        _ => Err(KeyParseError::Malformed),
    }
}

fn split_prefix(whole: &str) -> (&str, &str) {
    for prefix in [SECURE_PREFIX, PLAN_PREFIX, CLASSIC_PREFIX, TEMPORARY_PREFIX] {
        if let Some(body) = whole.strip_prefix(prefix) {
            return (prefix, body);
        }
    }
    ("", whole)
}

/// The masked form: prefix, first 4 and last 4 characters of the body around `****`.
/// Short bodies reveal less, so that at most a quarter of a body (and never more than
/// 8 characters) is shown.
pub fn mask_key(whole: &str) -> String {
    let (prefix, body) = split_prefix(whole);
    let characters: Vec<char> = body.chars().collect();
    let shown_each_side = (characters.len() / 4).min(4);
    let head: String = characters[..shown_each_side].iter().collect();
    let tail: String = characters[characters.len() - shown_each_side..].iter().collect();
    format!("{prefix}{head}****{tail}")
}

/// Whether `text` may hold an API key: it has a key prefix (`sk-`, `sk-ws-`, `sk-sp-`,
/// `st-`) anywhere. Such text is never repeated in an error message or written to a log,
/// so that a key pasted into the wrong field or path does not travel further; text that
/// merely looks like one (`first-step`) is held back too, which costs only a less precise
/// message.
pub fn may_hold_key(text: &str) -> bool {
    text.contains(CLASSIC_PREFIX) || text.contains(TEMPORARY_PREFIX)
}

/// What an error message may repeat of a client's `text`: at most `max_characters` of it,
/// or a note instead when it may hold a key ([`may_hold_key`]).
pub fn shown_input(text: &str, max_characters: usize) -> String {
    if may_hold_key(text) {
        return "(a value that looks like an API key; not repeated)".into();
    }
    text.chars().take(max_characters).collect()
}

/// Reads a plaintext for a moment, e.g. to write it into a create response.
pub fn expose(plaintext: &SecretString) -> &str {
    plaintext.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_keys_have_the_documented_shape_and_parse() {
        let key = generate_key(KeyFormat::Secure);
        let text = expose(&key.plaintext);
        assert!(text.starts_with("sk-ws-"));
        assert_eq!(text.len(), 6 + 38);
        let parsed = parse_permanent_key(text).unwrap();
        assert_eq!(parsed.format, KeyFormat::Secure);
        assert_eq!(parsed.digest, key.digest);
    }

    #[test]
    fn classic_keys_are_32_lowercase_hex() {
        let key = generate_key(KeyFormat::Classic);
        let text = expose(&key.plaintext);
        assert_eq!(text.len(), 3 + 32);
        assert!(text[3..].bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()));
        assert_eq!(parse_permanent_key(text).unwrap().format, KeyFormat::Classic);
    }

    #[test]
    fn plan_keys_use_the_secure_body() {
        let key = generate_key(KeyFormat::Plan);
        assert_eq!(parse_permanent_key(expose(&key.plaintext)).unwrap().format, KeyFormat::Plan);
    }

    #[test]
    fn a_changed_checksum_is_refused_before_lookup() {
        let key = generate_key(KeyFormat::Secure);
        let mut text = expose(&key.plaintext).to_string();
        let last = text.pop().unwrap();
        text.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(parse_permanent_key(&text), Err(KeyParseError::BadChecksum));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "Bearer", "sk-", "sk-ws-short", "sk-has space inside", "pk-0123456789abcdef0123456789abcdef"] {
            assert!(parse_permanent_key(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_permanent_key(&"sk-".repeat(300)).is_err());
    }

    #[test]
    fn masking_shows_prefix_and_four_characters_each_side() {
        assert_eq!(mask_key("sk-ws-Ab3xMIDDLEPARTMIDDLEPARTMIDDLEPART9xYz"), "sk-ws-Ab3x****9xYz");
        assert_eq!(mask_key("sk-0123456789abcdef0123456789abcdef"), "sk-0123****cdef");
        assert_eq!(mask_key("sk-abcdefgh"), "sk-ab****gh");
    }
}
