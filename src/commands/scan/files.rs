//! Walking files and directories for `keygate scan`: `.git` directories and symbolic links
//! are skipped (history is `--git`'s job; links could loop or leave the tree), so are files
//! over 10 MiB and, unless asked, binary files (a NUL byte in the first 8 KiB).

use std::path::{Path, PathBuf};

use super::progress::Progress;
use super::{findings_in, Finding, Location, ScanStatistics};

/// Files larger than this are skipped (and counted).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// How much of a file decides whether it is binary.
const BINARY_PROBE_BYTES: usize = 8 * 1024;

/// A NUL byte in the first 8 KiB, as git and grep decide.
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE_BYTES)].contains(&0)
}

/// The findings in one file's or blob's bytes; `None` for a binary one that is skipped
/// (and counted).
pub fn scan_bytes(
    bytes: &[u8],
    include_binary: bool,
    statistics: &mut ScanStatistics,
    location: impl Fn() -> Location,
) -> Option<Vec<Finding>> {
    if !include_binary && looks_binary(bytes) {
        statistics.skipped_binary += 1;
        return None;
    }
    Some(findings_in(bytes, location))
}

fn scan_file(path: &Path, include_binary: bool, statistics: &mut ScanStatistics, findings: &mut Vec<Finding>) {
    let size = std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        statistics.skipped_large += 1;
        return;
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            if let Some(found) = scan_bytes(&bytes, include_binary, statistics, || Location::File(path.to_path_buf())) {
                statistics.files_scanned += 1;
                findings.extend(found);
            }
        }
        Err(error) => {
            statistics.unreadable += 1;
            eprintln!("warning: cannot read {}: {error}", path.display());
        }
    }
}

/// Scans `roots` (files or directories), depth first in name order.
pub fn scan_paths(
    roots: &[PathBuf],
    include_binary: bool,
    statistics: &mut ScanStatistics,
    progress: &mut Progress,
    findings: &mut Vec<Finding>,
) {
    let mut pending: Vec<PathBuf> = roots.iter().rev().cloned().collect();
    while let Some(path) = pending.pop() {
        // The paths given are followed even when they are links; those found inside are not.
        let is_root = roots.contains(&path);
        let metadata = if is_root { std::fs::metadata(&path) } else { std::fs::symlink_metadata(&path) };
        let metadata = match metadata {
            Ok(metadata) => metadata,
            Err(error) => {
                statistics.unreadable += 1;
                eprintln!("warning: cannot read {}: {error}", path.display());
                continue;
            }
        };
        if metadata.is_dir() {
            if !is_root && path.file_name().is_some_and(|name| name == ".git") {
                continue;
            }
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(error) => {
                    statistics.unreadable += 1;
                    eprintln!("warning: cannot read {}: {error}", path.display());
                    continue;
                }
            };
            let mut children: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
            children.sort();
            pending.extend(children.into_iter().rev());
        } else if metadata.is_file() {
            scan_file(&path, include_binary, statistics, findings);
            progress.update(statistics.files_scanned, statistics.blobs_scanned, findings.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_means_a_nul_byte_early_on() {
        assert!(!looks_binary(b"plain text\n"));
        assert!(looks_binary(b"PK\x03\x04\0\0"));
        let mut late = vec![b'a'; BINARY_PROBE_BYTES];
        late.push(0);
        assert!(!looks_binary(&late));
        assert!(!looks_binary(b""));
    }
}
