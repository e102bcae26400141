//! `keygate keys import`: reads a file of existing `sk-` keys (one a line, or CSV
//! `key,description`), checks every line here first with the server's own rules
//! ([`keygate_core::key_import`]), then sends the good ones to
//! `POST /keygate/v1/keys/import` in one request, which imports all of them or nothing.
//!
//! A key is never an argument and never printed: bad lines are named by number and, for a
//! well-formed key, its masked form. Progress goes to stderr: a live count on a terminal,
//! one line per phase elsewhere.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use keygate_core::key_import::{check_entry, BadLine, LineProblem, SeenKeys, MAX_KEYS_PER_IMPORT};
use keygate_core::keys::expose;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::commands::client::{print_json, ApiError, Client};

/// Bad lines printed on stderr; `--json` lists them all.
const BAD_LINES_PRINTED: usize = 50;
/// Lines between two updates of the live count on a terminal.
const PROGRESS_EVERY_LINES: u64 = 1000;

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

/// Progress on stderr: a count rewritten in place on a terminal; elsewhere only the lines
/// that end each phase.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress { terminal: std::io::stderr().is_terminal() }
    }

    fn checking(&self, line: u64) {
        if self.terminal && line.is_multiple_of(PROGRESS_EVERY_LINES) {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[Kchecking: {line} lines");
            let _ = stderr.flush();
        }
    }

    /// Ends a phase with one line (clearing the live count first).
    fn line(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal { writeln!(stderr, "\r\x1b[K{text}") } else { writeln!(stderr, "{text}") };
    }

    fn start(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{text}");
        let _ = stderr.flush();
    }
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).context("reading the keys from stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    String::from_utf8(bytes)
        .map_err(|error| anyhow::anyhow!("{} is not UTF-8 text (byte {})", path.display(), error.utf8_error().valid_up_to()))
}

/// `1 key`, `2 keys`.
fn counted(count: impl Into<u64>, noun: &str) -> String {
    match count.into() {
        1 => format!("1 {noun}"),
        count => format!("{count} {noun}s"),
    }
}

fn lines_word(count: usize) -> String {
    counted(count as u64, "bad line")
}

/// How the input is named in messages.
fn input_name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

/// Prints bad lines on stderr, at most [`BAD_LINES_PRINTED`] of them.
fn print_bad_lines(bad_lines: &[BadLine]) {
    for bad in bad_lines.iter().take(BAD_LINES_PRINTED) {
        eprintln!("line {}: {}", bad.line, bad.problem);
    }
    if bad_lines.len() > BAD_LINES_PRINTED {
        eprintln!("... and {} more bad lines (--json lists them all)", bad_lines.len() - BAD_LINES_PRINTED);
    }
}

fn bad_lines_json(bad_lines: &[BadLine]) -> Value {
    Value::Array(bad_lines.iter().map(|bad| json!({"line": bad.line, "reason": bad.problem.to_string()})).collect())
}

/// Bad lines as the server reports them (`badLines`), in the CLI's form.
fn server_bad_lines(body: &Value) -> Vec<BadLine> {
    body.get("badLines")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .map(|bad| BadLine {
                    line: bad.get("line").and_then(Value::as_u64).unwrap_or(0),
                    problem: LineProblem::Unreadable(bad.get("reason").and_then(Value::as_str).unwrap_or("refused").to_string()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the caller asked for.
pub struct ImportRequest<'a> {
    pub file: &'a Path,
    pub region: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub skip_bad: bool,
    pub json_output: bool,
}

/// Runs `keygate keys import`.
pub async fn run_import(client: &Client, request: ImportRequest<'_>) -> anyhow::Result<ExitCode> {
    let progress = Progress::new();
    let text = read_input(request.file)?;
    let file = read_import_file(&text, |line| progress.checking(line));
    drop(text);
    let bad_count = file.bad_lines.len();
    let name = input_name(request.file);
    progress.line(&format!(
        "checked {} of {name}: {} to import, {}",
        counted(file.lines, "line"),
        counted(file.entries.len() as u64, "key"),
        lines_word(bad_count)
    ));
    let refuse = |bad_lines: &[BadLine], why: &str| -> anyhow::Result<ExitCode> {
        if request.json_output {
            print_json(&json!({"importedCount": 0, "badLines": bad_lines_json(bad_lines)}))?;
        }
        print_bad_lines(bad_lines);
        eprintln!("error: nothing was imported: {why}");
        Ok(ExitCode::FAILURE)
    };
    if bad_count > 0 && !request.skip_bad {
        let why = format!("{} in {name}; fix them, or pass --skip-bad to import the other lines", lines_word(bad_count));
        return refuse(&file.bad_lines, &why);
    }
    if file.entries.is_empty() {
        return refuse(&file.bad_lines, &format!("{name} has no key to import"));
    }
    if file.entries.len() > MAX_KEYS_PER_IMPORT {
        anyhow::bail!(
            "{name} has {} keys; one import takes at most {MAX_KEYS_PER_IMPORT} (it is all or nothing): split the file",
            file.entries.len()
        );
    }
    let keys: Vec<Value> =
        file.entries.iter().map(|entry| json!({"line": entry.line, "key": expose(&entry.key), "description": entry.description})).collect();
    let mut body = json!({"keys": keys, "skipBad": request.skip_bad});
    if let Some(region) = request.region {
        body["region"] = json!(region);
    }
    if let Some(workspace) = request.workspace {
        body["workspaceId"] = json!(workspace);
    }
    progress.start(&format!("importing {}… ", counted(file.entries.len() as u64, "key")));
    let answer = client.keygate(Method::POST, &["keygate", "v1", "keys", "import"], &[], Some(&body)).await;
    drop(body);
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            progress.line("refused");
            let Some(api_error) = error.downcast_ref::<ApiError>() else { return Err(error) };
            let mut bad_lines = file.bad_lines;
            bad_lines.extend(api_error.envelope.as_ref().map(server_bad_lines).unwrap_or_default());
            bad_lines.sort_by_key(|bad| bad.line);
            if request.json_output {
                if let Some(envelope) = &api_error.envelope {
                    print_json(envelope)?;
                }
            }
            print_bad_lines(&bad_lines);
            eprintln!("error: {api_error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    progress.line("done");
    let mut bad_lines = file.bad_lines;
    bad_lines.extend(server_bad_lines(&answer));
    bad_lines.sort_by_key(|bad| bad.line);
    let imported = answer.get("importedCount").and_then(Value::as_u64).unwrap_or(0);
    if request.json_output {
        let mut output = answer.clone();
        output["badLines"] = bad_lines_json(&bad_lines);
        output["skippedCount"] = json!(bad_lines.len());
        print_json(&output)?;
    } else {
        print_bad_lines(&bad_lines);
        let ids: Vec<u64> =
            answer.get("keys").and_then(Value::as_array).into_iter().flatten().filter_map(|key| key["apiKeyId"].as_u64()).collect();
        let id_range = match (ids.iter().min(), ids.iter().max()) {
            (Some(first), Some(last)) if first != last => format!(" (API key ids {first}-{last})"),
            (Some(only), _) => format!(" (API key id {only})"),
            _ => String::new(),
        };
        let text = |name: &str| answer.get(name).and_then(Value::as_str).unwrap_or("-").to_string();
        println!(
            "Imported {} into workspace {} in region {}{id_range}.",
            counted(imported, "API key"),
            text("workspaceId"),
            text("region")
        );
        if !bad_lines.is_empty() {
            println!("Skipped {}.", lines_word(bad_lines.len()));
        }
    }
    eprintln!("Imported keys are legacy keys: they keep working, their owner may view them again (`keygate keys get ID`), and they should be replaced by new keys.");
    Ok(if imported > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let secure = expose(&keygate_core::keys::generate_key(keygate_core::keys::KeyFormat::Secure).plaintext).to_string();
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
