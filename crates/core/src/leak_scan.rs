//! Finding keygate keys in bytes that may have leaked (source files, logs, a repository's
//! history): candidates are found by their shape and, for the formats that carry a
//! checksum (`sk-ws-`, `sk-sp-`), confirmed by it, so that a random string of the same
//! shape is not reported. Classic keys (`sk-` + 32 lowercase hex) have no checksum: they
//! are reported as possible matches. No IO: `keygate scan` walks files and repositories and
//! hands each one's bytes here.
//!
//! A candidate holds only where the key is ([`LeakCandidate::range`]); whoever prints it
//! shows [`crate::keys::mask_key`] of it, never the plaintext.

use crate::keys::{parse_permanent_key, KeyFormat, CLASSIC_PREFIX, PLAN_PREFIX, SECURE_PREFIX};

/// Characters after `sk-ws-`/`sk-sp-`: 32 random and 6 checksum characters.
const SECURE_BODY_LENGTH: usize = 38;
/// Characters after `sk-` in a classic key.
const CLASSIC_BODY_LENGTH: usize = 32;

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakConfidence {
    /// The key's checksum holds: it was made by keygate (or Model Studio's scheme).
    Confirmed,
    /// The shape matches but the format has no checksum (classic keys).
    Possible,
}

/// One key-shaped string found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakCandidate {
    /// Byte offsets of the whole key (prefix included) in the scanned bytes.
    pub start: usize,
    pub end: usize,
    /// 1-based line, and 1-based byte column within that line.
    pub line: usize,
    pub column: usize,
    pub format: KeyFormat,
    pub confidence: LeakConfidence,
}

impl LeakCandidate {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// The key itself, from the bytes it was found in (always ASCII).
    pub fn key_in<'a>(&self, haystack: &'a [u8]) -> &'a str {
        std::str::from_utf8(&haystack[self.range()]).expect("a candidate is ASCII")
    }
}

fn is_base62_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

fn is_lower_hex_byte(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// A classic key must stand alone: no letter or digit right before or after it, so that
/// `task-` + hex or a longer hex run is not taken for one.
fn stands_alone(haystack: &[u8], start: usize, end: usize) -> bool {
    let before_is_free = start == 0 || !haystack[start - 1].is_ascii_alphanumeric();
    let after_is_free = end == haystack.len() || !haystack[end].is_ascii_alphanumeric();
    before_is_free && after_is_free
}

/// The format and confidence of a key starting at `start` (which holds `sk-`), and its end.
fn classify_at(haystack: &[u8], start: usize) -> Option<(KeyFormat, LeakConfidence, usize)> {
    let rest = &haystack[start..];
    for (prefix, format) in [(SECURE_PREFIX, KeyFormat::Secure), (PLAN_PREFIX, KeyFormat::Plan)] {
        if rest.starts_with(prefix.as_bytes()) {
            let end = start + prefix.len() + SECURE_BODY_LENGTH;
            let body = haystack.get(start + prefix.len()..end)?;
            if !body.iter().copied().all(is_base62_byte) {
                return None;
            }
            // The checksum decides; no boundary is needed (a random 38-character window
            // passes it about once in 5 * 10^10).
            let whole = std::str::from_utf8(&haystack[start..end]).ok()?;
            return match parse_permanent_key(whole) {
                Ok(parsed) if parsed.format == format => Some((format, LeakConfidence::Confirmed, end)),
                _ => None,
            };
        }
    }
    let end = start + CLASSIC_PREFIX.len() + CLASSIC_BODY_LENGTH;
    let body = haystack.get(start + CLASSIC_PREFIX.len()..end)?;
    if body.iter().copied().all(is_lower_hex_byte) && stands_alone(haystack, start, end) {
        return Some((KeyFormat::Classic, LeakConfidence::Possible, end));
    }
    None
}

/// Every key-shaped string in `haystack`, in order: confirmed secure and plan keys, and
/// possible classic keys. Bytes need not be UTF-8.
pub fn find_leaked_keys(haystack: &[u8]) -> Vec<LeakCandidate> {
    let prefix = CLASSIC_PREFIX.as_bytes();
    let mut candidates = Vec::new();
    // Line counting advances with the search, so the whole text is read once.
    let mut line = 1;
    let mut line_start = 0;
    let mut counted_up_to = 0;
    let mut position = 0;
    while position + prefix.len() <= haystack.len() {
        let Some(offset) = haystack[position..].windows(prefix.len()).position(|window| window == prefix) else {
            break;
        };
        let start = position + offset;
        let Some((format, confidence, end)) = classify_at(haystack, start) else {
            position = start + 1;
            continue;
        };
        for (index, byte) in haystack[counted_up_to..start].iter().enumerate() {
            if *byte == b'\n' {
                line += 1;
                line_start = counted_up_to + index + 1;
            }
        }
        counted_up_to = start;
        candidates.push(LeakCandidate { start, end, line, column: start - line_start + 1, format, confidence });
        position = end;
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{checksum_of, expose, generate_key, mask_key};
    use crate::random::random_string_from;

    fn secure_key() -> String {
        expose(&generate_key(KeyFormat::Secure).plaintext).to_string()
    }

    /// (line, column, key, confidence) of each finding, for whole-value comparisons.
    fn check(text: &[u8]) -> Vec<(usize, usize, String, LeakConfidence)> {
        find_leaked_keys(text).iter().map(|found| (found.line, found.column, found.key_in(text).to_string(), found.confidence)).collect()
    }

    #[test]
    fn a_secure_key_in_code_is_confirmed_with_its_line_and_column() {
        let key = secure_key();
        let text = format!("import os\n\nclient = Client(api_key=\"{key}\")\n");
        assert_eq!(check(text.as_bytes()), vec![(3, 26, key, LeakConfidence::Confirmed)]);
    }

    #[test]
    fn plan_and_classic_keys_are_found_with_their_format() {
        let plan = expose(&generate_key(KeyFormat::Plan).plaintext).to_string();
        let classic = expose(&generate_key(KeyFormat::Classic).plaintext).to_string();
        let text = format!("PLAN={plan}\nCLASSIC={classic}\n");
        let found = find_leaked_keys(text.as_bytes());
        assert_eq!(
            found.iter().map(|found| (found.format, found.confidence)).collect::<Vec<_>>(),
            [(KeyFormat::Plan, LeakConfidence::Confirmed), (KeyFormat::Classic, LeakConfidence::Possible)]
        );
        assert_eq!(found[1].key_in(text.as_bytes()), classic);
        assert_eq!((found[1].line, found[1].column), (2, 9));
    }

    #[test]
    fn a_wrong_checksum_is_not_reported_at_all() {
        let key = secure_key();
        let mut changed = key.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(check(format!("key = {changed}").as_bytes()), vec![]);
    }

    #[test]
    fn ten_thousand_random_strings_of_the_same_shape_with_wrong_checksums_give_nothing() {
        let alphabet = crate::base62::ALPHABET;
        let mut text = String::new();
        for _ in 0..10_000 {
            let random_part = random_string_from(alphabet, 32);
            let correct = checksum_of(&random_part);
            let checksum = loop {
                let candidate = random_string_from(alphabet, 6);
                if candidate != correct {
                    break candidate;
                }
            };
            text.push_str(&format!("sk-ws-{random_part}{checksum}\n"));
        }
        assert_eq!(find_leaked_keys(text.as_bytes()), vec![]);
    }

    #[test]
    fn keys_next_to_quotes_json_and_urls_are_found_and_several_on_a_line_too() {
        let (first, second) = (secure_key(), secure_key());
        let text = format!("{{\"keys\":[\"{first}\",\"{second}\"]}} https://x.example/?k={first}&v=1");
        let found = check(text.as_bytes());
        assert_eq!(found.iter().map(|(_, _, key, _)| key.clone()).collect::<Vec<_>>(), [first.clone(), second, first]);
        assert!(found.iter().all(|(line, _, _, confidence)| *line == 1 && *confidence == LeakConfidence::Confirmed));
    }

    #[test]
    fn a_classic_key_must_stand_alone_and_be_lowercase_hex() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(check(format!("task-{hex}").as_bytes()), vec![], "a word before it");
        assert_eq!(check(format!("sk-{hex}0").as_bytes()), vec![], "a longer run");
        assert_eq!(check(format!("sk-{}", hex.to_uppercase()).as_bytes()), vec![], "upper case");
        assert_eq!(check(format!("sk-{}", &hex[1..]).as_bytes()), vec![], "too short");
        assert_eq!(check(format!("'sk-{hex}'").as_bytes()), vec![(1, 2, format!("sk-{hex}"), LeakConfidence::Possible)]);
    }

    #[test]
    fn non_utf8_bytes_around_a_key_and_a_key_at_the_very_end_are_handled() {
        let key = secure_key();
        let mut bytes = vec![0xff, 0xfe, b'\n', 0x00];
        bytes.extend_from_slice(key.as_bytes());
        let found = find_leaked_keys(&bytes);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column, found[0].key_in(&bytes)), (2, 2, key.as_str()));
        assert_eq!(check(b"sk-ws-"), vec![]);
        assert_eq!(check(b"sk-"), vec![]);
        assert_eq!(check(b""), vec![]);
    }

    #[test]
    fn a_key_after_a_false_start_is_still_found() {
        let key = secure_key();
        let text = format!("sk-sk-ws-{}", &key["sk-ws-".len()..]);
        assert_eq!(check(text.as_bytes()), vec![(1, 4, key.clone(), LeakConfidence::Confirmed)]);
        assert_eq!(mask_key(&key).len(), "sk-ws-".len() + 12);
    }

    #[test]
    fn lines_are_counted_across_many_findings() {
        let keys: Vec<String> = (0..5).map(|_| secure_key()).collect();
        let text: String = keys.iter().enumerate().map(|(index, key)| format!("{}{key}\n\n", " ".repeat(index))).collect();
        let found = check(text.as_bytes());
        assert_eq!(found.iter().map(|(line, column, _, _)| (*line, *column)).collect::<Vec<_>>(), [(1, 1), (3, 2), (5, 3), (7, 4), (9, 5)]);
    }
}
