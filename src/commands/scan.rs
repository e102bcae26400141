//! `keygate scan`: finds keygate keys in files and, with `--git`, in every blob of a
//! repository's history; prints where, with the key masked (never the plaintext); and with
//! `--revoke` reports the confirmed keys to the server's leak endpoint, which disables the
//! live ones of the logged-in account. The matching itself is
//! [`keygate_core::leak_scan`]; this module walks, reads, prints and reports.
//!
//! Exit status: 0 when nothing was found, 1 when keys were found, 2 on an error.

mod files;
mod git_history;
mod progress;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use keygate_core::keys::{mask_key, KeyFormat};
use keygate_core::leak_scan::{find_leaked_keys, LeakConfidence};
use keygate_wire::keygate_api::{LeakReport, LeakReportResponse, LeakResult};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use self::progress::Progress;
use super::client::{optional, print_json, text, Client, ClientOptions, RequestBody, Table};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan [default: the current directory].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also scan every blob in the history of the git repositories the PATHs are in.
    #[arg(long)]
    pub git: bool,
    /// Disable the confirmed keys that are live (needs `keygate login` as the account or an admin).
    #[arg(long)]
    pub revoke: bool,
    /// Scan binary files too (by default a file with a NUL byte in its first 8 KiB is skipped).
    #[arg(long)]
    pub include_binary: bool,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Print the findings (and with --revoke the server's answers) as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --revoke: the keygate server, which must be the saved session's [default: the session's].
    #[arg(long, env = "KEYGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
}

/// Where a key was found.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    GitBlob { repository: PathBuf, blob: String, path: String, commit: Option<String> },
}

/// One key found: where, masked, and (for `--revoke` only) the plaintext.
pub struct Finding {
    pub location: Location,
    pub line: usize,
    pub column: usize,
    pub masked: String,
    pub format: KeyFormat,
    pub confidence: LeakConfidence,
    key: SecretString,
}

impl std::fmt::Debug for Finding {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Finding")
            .field("location", &self.location)
            .field("line", &self.line)
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

/// What was scanned and skipped.
#[derive(Debug, Default)]
pub struct ScanStatistics {
    pub files_scanned: u64,
    pub blobs_scanned: u64,
    pub skipped_binary: u64,
    pub skipped_large: u64,
    pub unreadable: u64,
}

/// The findings in one file's or blob's bytes.
pub fn findings_in(bytes: &[u8], location: impl Fn() -> Location) -> Vec<Finding> {
    find_leaked_keys(bytes)
        .into_iter()
        .map(|candidate| {
            let key = candidate.key_in(bytes);
            Finding {
                location: location(),
                line: candidate.line,
                column: candidate.column,
                masked: mask_key(key),
                format: candidate.format,
                confidence: candidate.confidence,
                key: SecretString::from(key.to_string()),
            }
        })
        .collect()
}

fn kind_text(finding: &Finding) -> String {
    match (finding.confidence, finding.format) {
        (LeakConfidence::Confirmed, format) => format!("{} key, checksum holds", format.as_str()),
        (LeakConfidence::Possible, format) => format!("possible {} key (no checksum)", format.as_str()),
    }
}

fn location_text(location: &Location, several_repositories: bool) -> String {
    match location {
        Location::File(path) => path.display().to_string(),
        Location::GitBlob { repository, blob, path, commit } => {
            let revision = commit.as_deref().unwrap_or(blob);
            let short = &revision[..revision.len().min(10)];
            if several_repositories {
                format!("{}: {short}:{path}", repository.display())
            } else {
                format!("{short}:{path}")
            }
        }
    }
}

fn finding_json(finding: &Finding) -> Value {
    let mut value = json!({
        "line": finding.line,
        "column": finding.column,
        "maskedKey": finding.masked,
        "format": finding.format.as_str(),
        "confirmed": finding.confidence == LeakConfidence::Confirmed,
    });
    match &finding.location {
        Location::File(path) => {
            value["source"] = json!("file");
            value["path"] = json!(path.display().to_string());
        }
        Location::GitBlob { repository, blob, path, commit } => {
            value["source"] = json!("git");
            value["repository"] = json!(repository.display().to_string());
            value["commit"] = json!(commit);
            value["blob"] = json!(blob);
            value["path"] = json!(path);
        }
    }
    value
}

/// Sends the confirmed keys (each once) to `POST /keygate/v1/leaks`, 1000 at a time.
async fn report_leaks(client: &Client, findings: &[Finding]) -> anyhow::Result<Vec<LeakResult>> {
    let mut seen = HashSet::new();
    let keys: Vec<&SecretString> = findings
        .iter()
        .filter(|finding| finding.confidence == LeakConfidence::Confirmed)
        .filter(|finding| seen.insert(finding.key.expose_secret().to_string()))
        .map(|finding| &finding.key)
        .collect();
    let mut results = Vec::new();
    for chunk in keys.chunks(1000) {
        let report = LeakReport { keys: chunk.iter().map(|key| key.expose_secret().to_string()).collect() };
        let answer =
            client.call::<LeakReportResponse, _>(Method::POST, &["keygate", "v1", "leaks"], &[], RequestBody::json(&report)?).await?;
        results.extend(answer.body.results);
    }
    Ok(results)
}

fn print_revocation(results: &[LeakResult]) {
    if results.is_empty() {
        println!("\nNo confirmed key to revoke.");
        return;
    }
    println!("\nRevocation:");
    let mut table = Table::new(&["KEY", "STATUS", "KEY ID", "REGION"]);
    for result in results {
        table.row(vec![text(&result.masked_key), text(&result.status), optional(result.api_key_id), optional(result.region.as_deref())]);
    }
    table.print();
}

fn summary(statistics: &ScanStatistics, findings: &[Finding]) -> String {
    let confirmed = findings.iter().filter(|finding| finding.confidence == LeakConfidence::Confirmed).count();
    let history =
        if statistics.blobs_scanned > 0 { format!(" and {} blobs of git history", statistics.blobs_scanned) } else { String::new() };
    let keys = match findings.len() {
        1 => "1 key".to_string(),
        count => format!("{count} keys"),
    };
    format!(
        "Scanned {} files{history} (skipped: {} binary, {} over 10 MiB, {} unreadable): {keys} found ({confirmed} confirmed, {} possible).",
        statistics.files_scanned,
        statistics.skipped_binary,
        statistics.skipped_large,
        statistics.unreadable,
        findings.len() - confirmed
    )
}

async fn scan(arguments: ScanArgs) -> anyhow::Result<ExitCode> {
    // Fail before a long scan, not after it.
    let client = if arguments.revoke {
        let options = ClientOptions { server: arguments.server.clone(), json: arguments.json };
        Some(Client::from_session(&options)?.0)
    } else {
        None
    };
    let roots = if arguments.paths.is_empty() { vec![PathBuf::from(".")] } else { arguments.paths.clone() };
    if let Some(missing) = roots.iter().find(|root| !root.exists()) {
        anyhow::bail!("{} does not exist", missing.display());
    }
    let mut repositories: Vec<PathBuf> = Vec::new();
    if arguments.git {
        for root in &roots {
            let repository = git_history::repository_root(root)?;
            if !repositories.contains(&repository) {
                repositories.push(repository);
            }
        }
    }
    let mut statistics = ScanStatistics::default();
    let mut progress = Progress::new(arguments.progress);
    let mut findings = Vec::new();
    files::scan_paths(&roots, arguments.include_binary, &mut statistics, &mut progress, &mut findings);
    for repository in &repositories {
        git_history::scan_history(repository, arguments.include_binary, &mut statistics, &mut progress, &mut findings)?;
    }
    progress.finish();
    let revocation = match &client {
        Some(client) => Some(report_leaks(client, &findings).await?),
        None => None,
    };
    if arguments.json {
        print_json(&json!({
            "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
            "filesScanned": statistics.files_scanned,
            "blobsScanned": statistics.blobs_scanned,
            "skipped": {"binary": statistics.skipped_binary, "tooLarge": statistics.skipped_large, "unreadable": statistics.unreadable},
            "revocation": revocation,
        }))?;
    } else {
        if !findings.is_empty() {
            let mut table = Table::new(&["WHERE", "LINE", "KEY", "FOUND"]);
            for finding in &findings {
                let place = format!("{}:{}", finding.line, finding.column);
                table.row(vec![
                    location_text(&finding.location, repositories.len() > 1),
                    place,
                    finding.masked.clone(),
                    kind_text(finding),
                ]);
            }
            table.print();
        }
        if let Some(results) = &revocation {
            print_revocation(results);
        }
    }
    eprintln!("{}", summary(&statistics, &findings));
    if !findings.is_empty() && revocation.is_none() {
        eprintln!("Treat every key found as leaked: disable and replace it. `keygate scan --revoke` disables the confirmed ones that are live (after `keygate login`).");
    }
    if findings.iter().any(|finding| matches!(finding.location, Location::GitBlob { .. })) {
        eprintln!("A key in git history stays readable by anyone with a clone even after the file is changed: revoke it rather than rewrite history.");
    }
    Ok(if findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn run(arguments: ScanArgs) -> anyhow::Result<ExitCode> {
    match scan(arguments).await {
        Ok(code) => Ok(code),
        Err(error) => {
            // 1 means "keys found": an error is 2, as for grep.
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::keys::{expose, generate_key};

    #[test]
    fn findings_carry_the_masked_key_and_print_without_the_plaintext() {
        let key = expose(&generate_key(KeyFormat::Secure).plaintext).to_string();
        let text = format!("# settings\nAPI_KEY = \"{key}\"\n");
        let found = findings_in(text.as_bytes(), || Location::File(PathBuf::from("settings.py")));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column, found[0].masked.clone()), (2, 12, mask_key(&key)));
        let printed = format!("{:?} {}", found[0], finding_json(&found[0]));
        assert!(!printed.contains(&key), "{printed}");
        assert_eq!(kind_text(&found[0]), "secure key, checksum holds");
    }

    #[test]
    fn git_locations_read_like_git_revisions() {
        let location = Location::GitBlob {
            repository: PathBuf::from("/r"),
            blob: "b".repeat(40),
            path: "config.py".into(),
            commit: Some("a".repeat(40)),
        };
        assert_eq!(location_text(&location, false), format!("{}:config.py", "a".repeat(10)));
        assert_eq!(location_text(&location, true), format!("/r: {}:config.py", "a".repeat(10)));
    }
}
