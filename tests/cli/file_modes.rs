//! The data directory at rest: whatever the umask, `keygate serve` keeps the directory
//! 0700 and the database, its WAL and shared-memory files and the master key 0600 (they
//! hold every key digest, AccessKey ciphertext and password hash, and the key to the
//! ciphertexts), and tightens looser modes it finds at start.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{file_mode, files_under, TestEnv};

const PRIVATE_FILES: [&str; 4] = ["keygate.db", "keygate.db-wal", "keygate.db-shm", "master.key"];

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The directory is 0700, and every file in it (the four named ones at least) 0600.
#[track_caller]
fn assert_private(data_dir: &Path) {
    assert_eq!(format!("{:o}", file_mode(data_dir)), "700", "{}", data_dir.display());
    let files = files_under(data_dir);
    for name in PRIVATE_FILES {
        assert!(files.contains(&data_dir.join(name)), "no {name} in {files:?}");
    }
    let modes: Vec<(String, String)> = files.iter().map(|file| (file.display().to_string(), format!("{:o}", file_mode(file)))).collect();
    assert!(modes.iter().all(|(_, mode)| mode == "600"), "files readable by others: {modes:?}");
}

#[test]
fn a_fresh_data_directory_is_private_under_umask_022() {
    let mut env = TestEnv::new();
    let data_dir = env.data_dir.path().join("fresh");
    env.start_server_with_umask(&data_dir, "022");
    // A login writes (its session and audit row), so the WAL holds frames.
    env.login_root();
    assert_private(&data_dir);
}

#[test]
fn looser_modes_found_at_start_are_tightened() {
    let mut env = TestEnv::new();
    let data_dir = env.data_dir.path().join("restored");
    env.start_server_with_umask(&data_dir, "022");
    env.login_root();
    env.stop_server();
    // As a careless restore from a backup (or `cp` under umask 022) would leave them.
    set_mode(&data_dir, 0o755);
    for file in files_under(&data_dir) {
        set_mode(&file, 0o644);
    }
    env.start_server_with_umask(&data_dir, "022");
    env.login_root();
    assert_private(&data_dir);
}

#[test]
fn a_master_key_put_in_place_by_hand_is_tightened() {
    let mut env = TestEnv::new();
    let data_dir = env.data_dir.path().join("prepared");
    std::fs::create_dir(&data_dir).unwrap();
    set_mode(&data_dir, 0o755);
    let master_key = data_dir.join("master.key");
    std::fs::write(&master_key, "ab".repeat(32)).unwrap();
    set_mode(&master_key, 0o644);
    env.start_server_with_umask(&data_dir, "022");
    env.login_root();
    assert_private(&data_dir);
    assert_eq!(std::fs::read_to_string(&master_key).unwrap(), "ab".repeat(32), "the master key is kept");
}
