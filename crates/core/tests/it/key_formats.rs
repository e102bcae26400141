//! Key formats at volume and under mutation: generated secure keys are distinct and parse,
//! any single-character change breaks the checksum, and masking reveals at most 8
//! characters of a body.

use std::collections::HashSet;

use keygate_core::base62;
use keygate_core::keys::{expose, generate_key, mask_key, parse_permanent_key, KeyFormat, KeyParseError};
use proptest::prelude::*;

#[test]
fn a_million_secure_keys_are_distinct_and_all_parse() {
    let count = 1_000_000;
    let mut digests = HashSet::with_capacity(count);
    for _ in 0..count {
        let key = generate_key(KeyFormat::Secure);
        let parsed = parse_permanent_key(expose(&key.plaintext)).expect("a generated key parses");
        assert_eq!(parsed.digest, key.digest);
        assert!(digests.insert(key.digest), "two generated keys collided");
    }
    assert_eq!(digests.len(), count);
}

fn body_of(text: &str) -> &str {
    text.strip_prefix("sk-ws-")
        .or_else(|| text.strip_prefix("sk-sp-"))
        .or_else(|| text.strip_prefix("sk-"))
        .or_else(|| text.strip_prefix("st-"))
        .unwrap_or(text)
}

/// Characters of the masked form's body that are not the `****` filler.
fn revealed_characters(masked: &str) -> usize {
    body_of(masked).replacen("****", "", 1).chars().count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_single_character_change_fails_the_checksum(position in 0usize..38, replacement_index in 0usize..62) {
        let key = generate_key(KeyFormat::Secure);
        let text = expose(&key.plaintext).to_string();
        let body_position = 6 + position;
        let original = text.as_bytes()[body_position];
        let replacement = base62::ALPHABET[replacement_index];
        prop_assume!(replacement != original);
        let mut changed = text.into_bytes();
        changed[body_position] = replacement;
        let changed = String::from_utf8(changed).unwrap();
        prop_assert_eq!(parse_permanent_key(&changed), Err(KeyParseError::BadChecksum));
    }

    #[test]
    fn a_character_outside_the_alphabet_is_malformed(position in 0usize..38, replacement in prop::sample::select(vec!['-', '_', '+', '/', ' ', 'é'])) {
        let key = generate_key(KeyFormat::Secure);
        let mut characters: Vec<char> = expose(&key.plaintext).chars().collect();
        characters[6 + position] = replacement;
        let changed: String = characters.into_iter().collect();
        prop_assert!(parse_permanent_key(&changed).is_err());
    }

    #[test]
    fn masking_never_reveals_more_than_eight_body_characters(body in "[A-Za-z0-9_-]{0,120}", prefix in prop::sample::select(vec!["sk-ws-", "sk-sp-", "sk-", "st-", ""])) {
        let whole = format!("{prefix}{body}");
        let masked = mask_key(&whole);
        prop_assert!(masked.contains("****"));
        prop_assert!(revealed_characters(&masked) <= 8, "{} reveals too much", masked);
        prop_assert!(revealed_characters(&masked) <= body.chars().count() / 2);
    }
}

#[test]
fn masks_of_every_generated_format_show_four_and_four() {
    for format in [KeyFormat::Secure, KeyFormat::Classic, KeyFormat::Plan] {
        let key = generate_key(format);
        assert_eq!(revealed_characters(&key.masked), 8, "{}", key.masked);
        assert_eq!(key.masked, mask_key(expose(&key.plaintext)));
        assert!(!key.masked.contains(&expose(&key.plaintext)[6..20]));
    }
}
