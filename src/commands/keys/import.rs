//! `keygate keys import`: reads a file of existing `sk-` keys (one a line, or CSV
//! `key,description`) and checks every line here first with the server's own rules (both
//! in [`keygate_core::key_import`], where they are fuzzed), then sends the good ones to
//! `POST /keygate/v1/keys/import` in one request, which imports all of them or nothing.
//!
//! A key is never an argument and never printed: bad lines are named by number and, for a
//! well-formed key, its masked form. Progress goes to stderr: a live count on a terminal,
//! one line per phase elsewhere.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use keygate_core::key_import::{read_import_file, BadLine, LineProblem, MAX_KEYS_PER_IMPORT};
use keygate_core::keys::expose;
use keygate_wire::keygate_api::{KeyImportRequest, KeyImportResponse, KeyToImport};
use reqwest::Method;
use serde_json::{json, Value};

use crate::commands::client::{self, print_json, ApiError, Client, RequestBody};

/// Bad lines printed on stderr; `--json` lists them all.
const BAD_LINES_PRINTED: usize = 50;
/// Lines between two updates of the live count on a terminal.
const PROGRESS_EVERY_LINES: u64 = 1000;

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
fn server_bad_lines(bad_lines: &[keygate_wire::keygate_api::BadLine]) -> Vec<BadLine> {
    bad_lines.iter().map(|bad| BadLine { line: bad.line, problem: LineProblem::Unreadable(bad.reason.clone()) }).collect()
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
    let keys = file
        .entries
        .iter()
        .map(|entry| KeyToImport { line: Some(entry.line), key: expose(&entry.key).to_string(), description: entry.description.clone() })
        .collect();
    let body = KeyImportRequest {
        region: request.region.map(str::to_string),
        workspace_id: request.workspace.map(str::to_string),
        keys,
        skip_bad: request.skip_bad,
    };
    let body = RequestBody::json(&body)?;
    progress.start(&format!("importing {}… ", counted(file.entries.len() as u64, "key")));
    let answer = client.call::<KeyImportResponse, _>(Method::POST, &["keygate", "v1", "keys", "import"], &[], body).await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            progress.line("refused");
            let Some(api_error) = error.downcast_ref::<ApiError>() else { return Err(error) };
            let mut bad_lines = file.bad_lines;
            bad_lines.extend(server_bad_lines(
                api_error.envelope.as_ref().and_then(|envelope| envelope.bad_lines.as_deref()).unwrap_or_default(),
            ));
            bad_lines.sort_by_key(|bad| bad.line);
            if request.json_output {
                if let Some(envelope) = &api_error.envelope {
                    print_json(&serde_json::to_value(envelope)?)?;
                }
            }
            print_bad_lines(&bad_lines);
            eprintln!("error: {api_error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    progress.line("done");
    let mut bad_lines = file.bad_lines;
    bad_lines.extend(server_bad_lines(&answer.body.bad_lines));
    bad_lines.sort_by_key(|bad| bad.line);
    let imported = answer.body.imported_count;
    if request.json_output {
        let mut output = answer.json.clone();
        output["badLines"] = bad_lines_json(&bad_lines);
        output["skippedCount"] = json!(bad_lines.len());
        print_json(&output)?;
    } else {
        print_bad_lines(&bad_lines);
        let ids: Vec<i64> = answer.body.keys.iter().map(|key| key.api_key_id).collect();
        let id_range = match (ids.iter().min(), ids.iter().max()) {
            (Some(first), Some(last)) if first != last => format!(" (API key ids {first}-{last})"),
            (Some(only), _) => format!(" (API key id {only})"),
            _ => String::new(),
        };
        println!(
            "Imported {} into workspace {} in region {}{id_range}.",
            counted(imported, "API key"),
            client::text(&answer.body.workspace_id),
            client::text(&answer.body.region)
        );
        if !bad_lines.is_empty() {
            println!("Skipped {}.", lines_word(bad_lines.len()));
        }
    }
    eprintln!("Imported keys are legacy keys: they keep working, their owner may view them again (`keygate keys get ID`), and they should be replaced by new keys.");
    Ok(if imported > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
