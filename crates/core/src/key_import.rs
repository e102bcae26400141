//! The rules of importing existing keys (`keygate keys import`), shared by the server and
//! by the CLI's check of a file before it sends anything: how a file of keys is read (one
//! key a line, or CSV `key,description`), which keys may be imported, the description,
//! repeats within one import, and how a refused line is described. A refusal
//! never carries the plaintext: a well-formed key is named by its masked form, a malformed
//! one not at all.

use std::collections::HashMap;

use secrecy::SecretString;

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

/// One key of the file, with its line number (from 1, counting every line).
pub struct FileEntry {
    pub line: u64,
    pub key: SecretString,
    pub description: String,
}

impl std::fmt::Debug for FileEntry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FileEntry").field("line", &self.line).field("description", &self.description).finish_non_exhaustive()
    }
}

/// What a file holds: the keys that passed the checks, the bad lines, and how many lines
/// there were.
#[derive(Debug, Default)]
pub struct ImportFile {
    pub entries: Vec<FileEntry>,
    pub bad_lines: Vec<BadLine>,
    pub lines: u64,
}

/// Splits one CSV record (one line; no line breaks inside quotes) into trimmed fields. A
/// quoted field keeps its text as written, `""` standing for a quote.
fn split_record(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut characters = line.chars().peekable();
    loop {
        while characters.next_if(|character| *character == ' ' || *character == '\t').is_some() {}
        let mut field = String::new();
        if characters.next_if_eq(&'"').is_some() {
            loop {
                match characters.next() {
                    None => return Err("a quoted field is not closed".into()),
                    Some('"') if characters.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(character) => field.push(character),
                }
            }
            while characters.next_if(|character| *character == ' ' || *character == '\t').is_some() {}
            match characters.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text follows a closing quote".into()),
            }
        } else {
            loop {
                match characters.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field.trim().to_string());
                        break;
                    }
                    Some(character) => field.push(character),
                }
            }
        }
    }
}

/// `key,description` (any case) as the first record: a header, not a key.
fn is_header(fields: &[String]) -> bool {
    match fields {
        [key] => key.eq_ignore_ascii_case("key"),
        [key, description] => key.eq_ignore_ascii_case("key") && description.eq_ignore_ascii_case("description"),
        _ => false,
    }
}

/// Reads and checks a whole file: blank lines and `#` comments are skipped (but counted),
/// a `key,description` header is allowed on the first record, every other line must be
/// `key` or `key,description` with a key that may be imported, not repeating an earlier one.
pub fn read_import_file(text: &str, mut on_line: impl FnMut(u64)) -> ImportFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut file = ImportFile::default();
    let mut seen = SeenKeys::default();
    let mut first_record = true;
    // `lines()`: `\n` or `\r\n`, and a final newline makes no extra line.
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        on_line(line);
        file.lines = line;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = match split_record(trimmed) {
            Ok(fields) => fields,
            Err(why) => {
                file.bad_lines.push(BadLine { line, problem: LineProblem::Unreadable(why) });
                continue;
            }
        };
        if std::mem::take(&mut first_record) && is_header(&fields) {
            continue;
        }
        let (key, description) = match fields.as_slice() {
            [key] => (key.as_str(), ""),
            [key, description] => (key.as_str(), description.as_str()),
            _ => {
                let why = format!("expected key or key,description, found {} fields (quote a description that has commas)", fields.len());
                file.bad_lines.push(BadLine { line, problem: LineProblem::Unreadable(why) });
                continue;
            }
        };
        match check_entry(key, description).and_then(|checked| seen.admit(&checked, line)) {
            Ok(()) => file.entries.push(FileEntry { line, key: SecretString::from(key.to_string()), description: description.to_string() }),
            Err(problem) => file.bad_lines.push(BadLine { line, problem }),
        }
    }
    file
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

#[cfg(test)]
mod file_tests {
    use super::*;
    use crate::keys::expose;

    const FIRST: &str = "sk-0123456789abcdef0123456789abcdef";
    const SECOND: &str = "sk-legacy_key-from-the-old-gateway";

    fn read(text: &str) -> ImportFile {
        read_import_file(text, |_| {})
    }

    fn keys(file: &ImportFile) -> Vec<(u64, String, String)> {
        file.entries.iter().map(|entry| (entry.line, expose(&entry.key).to_string(), entry.description.clone())).collect()
    }

    fn bad(file: &ImportFile) -> Vec<(u64, String)> {
        file.bad_lines.iter().map(|bad| (bad.line, bad.problem.to_string())).collect()
    }

    #[test]
    fn csv_records_split_on_commas_outside_quotes() {
        let cases: [(&str, Result<Vec<&str>, &str>); 8] = [
            (FIRST, Ok(vec![FIRST])),
            ("k, ci bot ", Ok(vec!["k", "ci bot"])),
            (r#"k,"with, comma""#, Ok(vec!["k", "with, comma"])),
            (r#"k, "say ""hi"" " "#, Ok(vec!["k", r#"say "hi" "#])),
            ("k,", Ok(vec!["k", ""])),
            ("k,a,b", Ok(vec!["k", "a", "b"])),
            (r#"k,"open"#, Err("a quoted field is not closed")),
            (r#"k,"closed" late"#, Err("text follows a closing quote")),
        ];
        for (line, expected) in cases {
            let expected = expected.map(|fields| fields.into_iter().map(str::to_string).collect::<Vec<_>>()).map_err(str::to_string);
            assert_eq!(split_record(line), expected, "{line}");
        }
    }

    #[test]
    fn one_key_a_line_with_blank_lines_and_comments_counted() {
        let file = read(&format!("# exported 2026-01-01\n{FIRST}\n\n  {SECOND}  \r\n"));
        assert_eq!(keys(&file), [(2, FIRST.to_string(), String::new()), (4, SECOND.to_string(), String::new())]);
        assert!(file.bad_lines.is_empty());
        assert_eq!(file.lines, 4);
    }

    #[test]
    fn csv_with_a_header_and_quoted_descriptions() {
        let file = read(&format!("Key,Description\n{FIRST},ci bot\n\"{SECOND}\",\"staging, eu\"\n"));
        assert_eq!(keys(&file), [(2, FIRST.to_string(), "ci bot".to_string()), (3, SECOND.to_string(), "staging, eu".to_string())]);
        // A header later in the file is a bad line like any other.
        let late = read(&format!("{FIRST}\nkey,description\n"));
        assert_eq!(bad(&late), [(2, "not an sk- key".to_string())]);
    }

    #[test]
    fn bad_lines_are_named_with_their_numbers_and_never_the_key() {
        let secure = expose(&crate::keys::generate_key(crate::keys::KeyFormat::Secure).plaintext).to_string();
        let text = format!("{FIRST}\nsk-bad key\n{secure}\n{FIRST},again\n{SECOND},a,b\n{SECOND},\"open\n{SECOND},{}\n", "x".repeat(201));
        let file = read(&text);
        assert_eq!(keys(&file), [(1, FIRST.to_string(), String::new())]);
        assert_eq!(
            bad(&file),
            [
                (2, "not a key keygate can import (sk- and 8-200 characters A-Z, a-z, 0-9, '-' or '_')".to_string()),
                (3, "sk-ws- and sk-sp- keys are issued by keygate and cannot be imported".to_string()),
                (4, "sk-0123****cdef repeats line 1".to_string()),
                (5, "expected key or key,description, found 3 fields (quote a description that has commas)".to_string()),
                (6, "a quoted field is not closed".to_string()),
                (7, "the description has 201 characters; at most 200".to_string()),
            ]
        );
        let reasons = format!("{:?}", bad(&file));
        assert!(!reasons.contains(FIRST) && !reasons.contains(&secure) && !reasons.contains(SECOND), "{reasons}");
    }

    #[test]
    fn a_byte_order_mark_and_a_missing_final_newline_are_fine() {
        let file = read(&format!("\u{feff}{FIRST}\n{SECOND}"));
        assert_eq!(file.entries.len(), 2);
        assert_eq!(file.lines, 2);
        assert!(read("").entries.is_empty());
        assert_eq!(read("").lines, 0);
    }
}
