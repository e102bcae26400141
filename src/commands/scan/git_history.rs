//! `keygate scan --git`: every blob reachable from any ref of a repository
//! (`git rev-list --all --objects`), read once each through `git cat-file --batch`, and for
//! each blob that holds a key the commit that first added it (`git log --find-object`).
//! A key deleted in a later commit is still in the history, and still leaked.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::files::{scan_bytes, MAX_FILE_BYTES};
use super::progress::Progress;
use super::{Finding, Location, ScanStatistics};

fn git(repository: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(repository).env("GIT_TERMINAL_PROMPT", "0");
    command
}

/// Runs a git command and returns its stdout.
fn git_output(repository: &Path, arguments: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = git(repository).args(arguments).stdin(Stdio::null()).output().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("git is not installed (needed by --git)"),
        _ => anyhow::Error::new(error).context("running git"),
    })?;
    if !output.status.success() {
        bail!("git {} in {} failed: {}", arguments.join(" "), repository.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(output.stdout)
}

/// The repository's top directory (or git directory, when bare), to scan each one once.
pub fn repository_root(path: &Path) -> anyhow::Result<PathBuf> {
    let directory =
        if path.is_dir() { path } else { path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new(".")) };
    let output = git_output(directory, &["rev-parse", "--absolute-git-dir", "--show-toplevel"])
        .with_context(|| format!("{} is not in a git repository (--git scans a repository's history)", path.display()))?;
    let text = String::from_utf8_lossy(&output);
    let mut lines = text.lines();
    let git_directory = lines.next().context("git rev-parse printed nothing")?;
    Ok(PathBuf::from(lines.next().filter(|top| !top.is_empty()).unwrap_or(git_directory)))
}

/// Every object reachable from any ref, with the first path it was seen under.
fn reachable_objects(repository: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let output = git_output(repository, &["rev-list", "--all", "--objects"])?;
    let mut seen = HashSet::new();
    let mut objects = Vec::new();
    for line in String::from_utf8_lossy(&output).lines() {
        let (object, path) = line.split_once(' ').unwrap_or((line, ""));
        if !path.is_empty() && seen.insert(object.to_string()) {
            objects.push((object.to_string(), path.to_string()));
        }
    }
    Ok(objects)
}

/// Feeds object names to a `git cat-file` batch on its own thread (so that a full output
/// pipe cannot block the writer) and hands its stdout to `read`.
fn cat_file_batch<T>(
    repository: &Path,
    mode: &str,
    objects: Vec<String>,
    read: impl FnOnce(&mut BufReader<std::process::ChildStdout>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut child = git(repository)
        .args(["cat-file", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running git cat-file")?;
    let mut stdin = child.stdin.take().context("git cat-file stdin")?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buffered = std::io::BufWriter::new(&mut stdin);
        for object in objects {
            writeln!(buffered, "{object}")?;
        }
        buffered.flush()
    });
    let mut stdout = BufReader::new(child.stdout.take().context("git cat-file stdout")?);
    let result = read(&mut stdout);
    drop(stdout);
    let written = writer.join().map_err(|_| anyhow::anyhow!("the git cat-file writer panicked"))?;
    let status = child.wait()?;
    let value = result?;
    written.context("writing to git cat-file")?;
    if !status.success() {
        bail!("git cat-file {mode} failed in {}", repository.display());
    }
    Ok(value)
}

/// One `<object> <type> <size>` header line; `None` at the end.
fn read_header(reader: &mut impl BufRead) -> anyhow::Result<Option<(String, String, u64)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut fields = line.split_whitespace();
    let object = fields.next().unwrap_or("").to_string();
    let kind = fields.next().unwrap_or("").to_string();
    let size = fields.next().and_then(|size| size.parse().ok()).unwrap_or(0);
    Ok(Some((object, kind, size)))
}

/// The commit that first added `blob` (oldest first, across all refs).
fn introducing_commit(repository: &Path, blob: &str) -> Option<String> {
    let output = git_output(repository, &["log", "--all", "--reverse", "--format=%H", &format!("--find-object={blob}")]).ok()?;
    String::from_utf8_lossy(&output).lines().next().map(str::to_string)
}

/// Scans every blob of the repository at `repository`.
pub fn scan_history(
    repository: &Path,
    include_binary: bool,
    statistics: &mut ScanStatistics,
    progress: &mut Progress,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let objects = reachable_objects(repository)?;
    let path_of: HashMap<String, String> = objects.iter().cloned().collect();
    let names: Vec<String> = objects.into_iter().map(|(object, _)| object).collect();
    let blobs: Vec<String> = cat_file_batch(repository, "--batch-check", names, |reader| {
        let mut blobs = Vec::new();
        while let Some((object, kind, size)) = read_header(reader)? {
            if kind != "blob" {
                continue;
            }
            if size > MAX_FILE_BYTES {
                statistics.skipped_large += 1;
            } else {
                blobs.push(object);
            }
        }
        Ok(blobs)
    })?;
    let mut found_here: Vec<Finding> = Vec::new();
    cat_file_batch(repository, "--batch", blobs, |reader| {
        let mut content = Vec::new();
        while let Some((object, kind, size)) = read_header(reader)? {
            if kind == "missing" {
                continue;
            }
            content.clear();
            reader.by_ref().take(size + 1).read_to_end(&mut content)?;
            content.truncate(size as usize);
            let path = path_of.get(&object).cloned().unwrap_or_default();
            let location =
                || Location::GitBlob { repository: repository.to_path_buf(), blob: object.clone(), path: path.clone(), commit: None };
            if let Some(found) = scan_bytes(&content, include_binary, statistics, location) {
                statistics.blobs_scanned += 1;
                found_here.extend(found);
            }
            progress.update(statistics.files_scanned, statistics.blobs_scanned, findings.len() + found_here.len());
        }
        Ok(())
    })?;
    let mut commits: HashMap<String, Option<String>> = HashMap::new();
    for finding in &mut found_here {
        if let Location::GitBlob { blob, commit, .. } = &mut finding.location {
            *commit = commits.entry(blob.clone()).or_insert_with(|| introducing_commit(repository, blob)).clone();
        }
    }
    findings.extend(found_here);
    Ok(())
}
