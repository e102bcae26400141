//! The rules of importing existing keys (`keygate keys import`), shared by the server and
//! by the CLI's check of a file before it sends anything: which keys may be imported, the
//! description, repeats within one import, and how a refused line is described. A refusal
//! never carries the plaintext: a well-formed key is named by its masked form, a malformed
//! one not at all.

use std::collections::HashMap;

use crate::ids::{Description, IdError};
use crate::keys::{mask_key, parse_importable_key, KeyDigest, CLASSIC_PREFIX, PLAN_PREFIX, SECURE_PREFIX};

/// Most keys in one import (one request, one transaction).
pub const MAX_KEYS_PER_IMPORT: usize = 10_000;

/// Why one line of an import is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// The line has no key.
    NoKey,
    /// `sk-ws-` and `sk-sp-` keys are made by keygate, not brought in.
    IssuedByKeygate,
    /// Not an `sk-` key at all.
    NotAnSkKey,
    /// `sk-` with a body keygate cannot take (length or characters).
    MalformedKey,
    DescriptionTooLong {
        characters: usize,
    },
    DescriptionHasControlCharacters,
    /// The same key as an earlier line of the import.
    Repeats {
        masked: String,
        first_line: u64,
    },
    /// The key is already in keygate.
    AlreadyStored {
        masked: String,
    },
    /// A file line that is not `key` or `key,description` (said by the CLI's reader).
    Unreadable(String),
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineProblem::NoKey => formatter.write_str("there is no key"),
            LineProblem::IssuedByKeygate => formatter.write_str("sk-ws- and sk-sp- keys are issued by keygate and cannot be imported"),
            LineProblem::NotAnSkKey => formatter.write_str("not an sk- key"),
            LineProblem::MalformedKey => {
                formatter.write_str("not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_')")
            }
            LineProblem::DescriptionTooLong { characters } => {
                write!(formatter, "the description has {characters} characters; at most {}", crate::ids::MAX_DESCRIPTION_CHARACTERS)
            }
            LineProblem::DescriptionHasControlCharacters => formatter.write_str("the description has control characters"),
            LineProblem::Repeats { masked, first_line } => write!(formatter, "{masked} repeats line {first_line}"),
            LineProblem::AlreadyStored { masked } => write!(formatter, "{masked} is already in keygate"),
            LineProblem::Unreadable(why) => formatter.write_str(why),
        }
    }
}

/// A refused line: its number (1-based, as in the file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub problem: LineProblem,
}

/// A key and description that may be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEntry {
    pub digest: KeyDigest,
    pub masked: String,
    pub description: Description,
}

/// Checks one key (already trimmed) and its description.
pub fn check_entry(key: &str, description: &str) -> Result<CheckedEntry, LineProblem> {
    let parsed = parse_importable_key(key).map_err(|_| key_problem(key))?;
    let description = Description::parse(description).map_err(|error| match error {
        IdError::TooLong { actual, .. } => LineProblem::DescriptionTooLong { characters: actual },
        IdError::Malformed { .. } => LineProblem::DescriptionHasControlCharacters,
    })?;
    Ok(CheckedEntry { digest: parsed.digest, masked: mask_key(key), description })
}

fn key_problem(key: &str) -> LineProblem {
    if key.is_empty() {
        LineProblem::NoKey
    } else if key.starts_with(SECURE_PREFIX) || key.starts_with(PLAN_PREFIX) {
        LineProblem::IssuedByKeygate
    } else if !key.starts_with(CLASSIC_PREFIX) {
        LineProblem::NotAnSkKey
    } else {
        LineProblem::MalformedKey
    }
}

/// The keys seen so far in one import, to refuse a repeat with the line it repeats.
#[derive(Debug, Default)]
pub struct SeenKeys(HashMap<KeyDigest, u64>);

impl SeenKeys {
    /// Records `entry` at `line`; a repeat of an earlier line is refused.
    pub fn admit(&mut self, entry: &CheckedEntry, line: u64) -> Result<(), LineProblem> {
        match self.0.get(&entry.digest) {
            Some(first_line) => Err(LineProblem::Repeats { masked: entry.masked.clone(), first_line: *first_line }),
            None => {
                self.0.insert(entry.digest, line);
                Ok(())
            }
        }
    }
}

/// `line 3: ...; line 7: ...` for the first `shown` bad lines, and how many more there are.
pub fn summarize(bad_lines: &[BadLine], shown: usize) -> String {
    let mut text = bad_lines.iter().take(shown).map(|bad| format!("line {}: {}", bad.line, bad.problem)).collect::<Vec<_>>().join("; ");
    if bad_lines.len() > shown {
        text.push_str(&format!("; and {} more", bad_lines.len() - shown));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC: &str = "sk-0123456789abcdef0123456789abcdef";

    #[test]
    fn importable_keys_pass_with_their_masked_form() {
        let entry = check_entry(CLASSIC, "from the old gateway").unwrap();
        assert_eq!(entry.masked, "sk-0123****cdef");
        assert_eq!(entry.digest, KeyDigest::of(CLASSIC));
        assert_eq!(entry.description.as_str(), "from the old gateway");
        assert!(check_entry("sk-Legacy_Key-123", "").is_ok());
    }

    #[test]
    fn each_refusal_says_why_without_the_key() {
        let secure = crate::keys::expose(&crate::keys::generate_key(crate::keys::KeyFormat::Secure).plaintext).to_string();
        let cases = [
            ("", "there is no key"),
            (secure.as_str(), "sk-ws- and sk-sp- keys are issued by keygate and cannot be imported"),
            ("pk-0123456789abcdef", "not an sk- key"),
            ("sk-short", "not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_')"),
            ("sk-has space inside", "not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_')"),
        ];
        for (key, expected) in cases {
            let problem = check_entry(key, "").unwrap_err();
            assert_eq!(problem.to_string(), expected, "{key:?}");
        }
        assert_eq!(check_entry(CLASSIC, &"x".repeat(201)).unwrap_err().to_string(), "the description has 201 characters; at most 200");
        assert_eq!(check_entry(CLASSIC, "a\tb").unwrap_err(), LineProblem::DescriptionHasControlCharacters);
    }

    #[test]
    fn a_repeat_names_the_first_line() {
        let mut seen = SeenKeys::default();
        let entry = check_entry(CLASSIC, "").unwrap();
        seen.admit(&entry, 3).unwrap();
        let problem = seen.admit(&entry, 7).unwrap_err();
        assert_eq!(problem.to_string(), "sk-0123****cdef repeats line 3");
    }

    #[test]
    fn a_summary_shows_the_first_lines_and_counts_the_rest() {
        let bad: Vec<BadLine> = (1..=5).map(|line| BadLine { line, problem: LineProblem::NoKey }).collect();
        assert_eq!(summarize(&bad[..1], 2), "line 1: there is no key");
        assert_eq!(summarize(&bad, 2), "line 1: there is no key; line 2: there is no key; and 3 more");
    }
}
