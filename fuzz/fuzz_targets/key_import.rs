//! The file of `keygate keys import`: one key a line or CSV `key,description`, with
//! comments, blank lines and a header, read by `keygate_core::key_import`.
//!
//! Invariants:
//! - every line is counted, and each is either skipped (blank, comment, the header on the
//!   first line that splits into fields), accepted or refused, never two of these, in line
//!   order;
//! - an accepted key may be imported, its description is valid, and no key is accepted
//!   twice;
//! - no refusal, one by one or summarised, carries a key of the file: only masked forms;
//! - the accepted entries written back as CSV read back as the same keys and descriptions
//!   with nothing refused.

#![no_main]

use keygate_core::ids::Description;
use keygate_core::key_import::{read_import_file, summarize, LineProblem};
use keygate_core::keys::{expose, parse_importable_key, KeyFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut reported = 0u64;
    let file = read_import_file(text, |line| {
        reported += 1;
        assert_eq!(line, reported, "lines are reported in order, each once");
    });
    let lines: Vec<&str> = text.strip_prefix('\u{feff}').unwrap_or(text).lines().collect();
    assert_eq!(file.lines, lines.len() as u64);
    assert_eq!(reported, file.lines);

    let accepted: Vec<u64> = file.entries.iter().map(|entry| entry.line).collect();
    let refused: Vec<u64> = file.bad_lines.iter().map(|bad| bad.line).collect();
    assert!(accepted.windows(2).all(|pair| pair[0] < pair[1]) && refused.windows(2).all(|pair| pair[0] < pair[1]));
    let unsplittable: Vec<u64> = file
        .bad_lines
        .iter()
        .filter(|bad| {
            matches!(&bad.problem, LineProblem::Unreadable(why) if ["a quoted field is not closed", "text follows a closing quote"].contains(&why.as_str()))
        })
        .map(|bad| bad.line)
        .collect();
    let mut first_record = true;
    for (index, raw) in lines.iter().enumerate() {
        let line = index as u64 + 1;
        let taken = accepted.binary_search(&line).is_ok();
        let bad = refused.binary_search(&line).is_ok();
        assert!(!(taken && bad), "line {line} both accepted and refused");
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            assert!(!taken && !bad, "line {line} is blank or a comment");
        } else if !taken && !bad {
            assert!(std::mem::take(&mut first_record), "line {line} was skipped but is not the header");
            assert!(trimmed.to_ascii_lowercase().starts_with("key") || trimmed.starts_with('"'), "line {line} is no header: {raw:?}");
        } else if !(bad && unsplittable.binary_search(&line).is_ok()) {
            // A line that cannot be split into fields is no record: the header may follow
            // it (fuzz/corpus/key_import/header_after_unreadable_line).
            first_record = false;
        }
    }

    let mut digests = Vec::new();
    for entry in &file.entries {
        let key = expose(&entry.key);
        let parsed = parse_importable_key(key).unwrap_or_else(|error| panic!("line {}: {key:?} accepted: {error}", entry.line));
        assert_eq!(parsed.format, KeyFormat::Legacy);
        assert!(Description::parse(&entry.description).is_ok(), "line {}", entry.line);
        digests.push(*parsed.digest.as_bytes());
    }
    digests.sort_unstable();
    assert!(digests.windows(2).all(|pair| pair[0] != pair[1]), "a key was accepted twice");

    // A key of the file: `sk-` and at least 8 characters a key may have.
    let keys_in_file: Vec<&str> = text
        .split(|character: char| !(character.is_ascii_alphanumeric() || character == '-' || character == '_'))
        .flat_map(|word| word.match_indices("sk-").map(move |(start, _)| &word[start..]))
        .filter(|word| word.len() >= "sk-".len() + 8)
        .collect();
    let mut reasons: Vec<String> = file.bad_lines.iter().map(|bad| bad.problem.to_string()).collect();
    reasons.push(summarize(&file.bad_lines, 5));
    for reason in &reasons {
        for key in &keys_in_file {
            assert!(!reason.contains(key), "a refusal carries the key {key:?}: {reason:?}");
        }
    }

    let written: String =
        file.entries.iter().map(|entry| format!("{},\"{}\"\n", expose(&entry.key), entry.description.replace('"', "\"\""))).collect();
    let again = read_import_file(&written, |_| {});
    assert!(again.bad_lines.is_empty(), "{:?}", again.bad_lines);
    let pairs = |file: &keygate_core::key_import::ImportFile| -> Vec<(String, String)> {
        file.entries.iter().map(|entry| (expose(&entry.key).to_string(), entry.description.clone())).collect()
    };
    assert_eq!(pairs(&again), pairs(&file));
});
