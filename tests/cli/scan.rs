//! `keygate scan`: planted keys are found in a tree (masked, with file and line) and in an
//! earlier commit of a git repository; 10,000 strings of the same shape with wrong
//! checksums give nothing; `--revoke` disables the live keys, which the gateway then
//! refuses.

use std::path::Path;
use std::process::Command;

use keygate_core::keys::{checksum_of, mask_key};
use keygate_core::random::random_string_from;
use serde_json::Value;

use crate::harness::{chat_status, create_key, keygate_binary, run_command, unknown_secure_key, user_command, CliOutput, TestEnv};

fn scan(directory: &Path, arguments: &[&str]) -> CliOutput {
    let mut command = user_command(keygate_binary(), directory, &[]);
    command.arg("scan").args(arguments).current_dir(directory);
    run_command(command, &format!("keygate scan {}", arguments.join(" ")), "")
}

fn findings(output: &CliOutput) -> Vec<Value> {
    output.json()["findings"].as_array().expect("findings").clone()
}

#[track_caller]
fn assert_no_plaintext(output: &CliOutput, keys: &[&str]) {
    for key in keys {
        assert!(
            !output.stdout.contains(key) && !output.stderr.contains(key),
            "a plaintext key was printed:\n{}\n{}",
            output.stdout,
            output.stderr
        );
    }
}

#[test]
fn planted_keys_are_found_masked_with_file_and_line_and_skips_are_honoured() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let (secure, in_git_directory, in_binary, in_large) =
        (unknown_secure_key(), unknown_secure_key(), unknown_secure_key(), unknown_secure_key());
    let classic = "sk-0123456789abcdef0123456789abcdef";
    std::fs::create_dir_all(root.join("app/settings")).unwrap();
    std::fs::write(root.join("app/settings/prod.py"), format!("import os\n\nAPI_KEY = \"{secure}\"\n")).unwrap();
    std::fs::write(root.join("notes.md"), format!("old key: {classic}\n")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), &in_git_directory).unwrap();
    std::fs::write(root.join("image.bin"), [b"\x89PNG\0\0".as_slice(), in_binary.as_bytes()].concat()).unwrap();
    let mut large = vec![b'x'; 10 * 1024 * 1024 + 1];
    large[..in_large.len()].copy_from_slice(in_large.as_bytes());
    std::fs::write(root.join("dump.sql"), large).unwrap();

    let output = scan(root, &["--json"]);
    assert_eq!(output.code, Some(1), "keys found: exit 1\n{}", output.stderr);
    let found = findings(&output);
    assert_eq!(found.len(), 2, "{}", output.stdout);
    assert_eq!(found[0]["path"], "./app/settings/prod.py");
    assert_eq!((found[0]["line"].as_u64(), found[0]["column"].as_u64()), (Some(3), Some(12)));
    assert_eq!((found[0]["maskedKey"].as_str(), found[0]["confirmed"].as_bool()), (Some(mask_key(&secure).as_str()), Some(true)));
    assert_eq!(
        (found[1]["path"].as_str(), found[1]["format"].as_str(), found[1]["confirmed"].as_bool()),
        (Some("./notes.md"), Some("classic"), Some(false))
    );
    assert_eq!(output.json()["skipped"], serde_json::json!({"binary": 1, "tooLarge": 1, "unreadable": 0}));
    assert_no_plaintext(&output, &[&secure, classic, &in_git_directory, &in_binary, &in_large]);

    let with_binary = scan(root, &["--json", "--include-binary"]);
    assert_eq!(findings(&with_binary).len(), 3);

    let table = scan(root, &["app"]);
    assert_eq!(table.code, Some(1));
    assert!(
        table.stdout.contains("app/settings/prod.py  3:12  ") && table.stdout.contains("secure key, checksum holds"),
        "{}",
        table.stdout
    );
    assert_no_plaintext(&table, &[&secure]);
}

#[test]
fn ten_thousand_strings_of_the_key_shape_with_wrong_checksums_are_not_reported() {
    let tree = tempfile::tempdir().unwrap();
    let alphabet = keygate_core::base62::ALPHABET;
    let mut text = String::new();
    for index in 0..10_000 {
        let random_part = random_string_from(alphabet, 32);
        let correct = checksum_of(&random_part);
        let checksum = loop {
            let candidate = random_string_from(alphabet, 6);
            if candidate != correct {
                break candidate;
            }
        };
        let prefix = if index % 2 == 0 { "sk-ws-" } else { "sk-sp-" };
        text.push_str(&format!("token_{index} = \"{prefix}{random_part}{checksum}\"\n"));
    }
    std::fs::write(tree.path().join("fixtures.py"), text).unwrap();
    let output = scan(tree.path(), &["--json"]);
    assert_eq!(output.code, Some(0), "{}\n{}", output.stdout, output.stderr);
    assert_eq!(findings(&output), Vec::<Value>::new());
}

fn git(repository: &Path, arguments: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=keygate test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(arguments)
        .current_dir(repository)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_key_removed_in_a_later_commit_is_found_in_the_history() {
    let repository = tempfile::tempdir().unwrap();
    let root = repository.path();
    let key = unknown_secure_key();
    git(root, &["init", "-q"]);
    std::fs::create_dir(root.join("deploy")).unwrap();
    std::fs::write(root.join("deploy/env"), format!("PORT=8000\nDASHSCOPE_API_KEY={key}\n")).unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "deploy settings"]);
    let leaking_commit = git(root, &["rev-parse", "HEAD"]);
    std::fs::write(root.join("deploy/env"), "PORT=8000\n").unwrap();
    git(root, &["commit", "-q", "-am", "remove the key"]);

    let working_tree = scan(root, &["--json"]);
    assert_eq!((working_tree.code, findings(&working_tree).len()), (Some(0), 0), "{}", working_tree.stdout);

    let history = scan(root, &["--git", "--json"]);
    assert_eq!(history.code, Some(1), "{}", history.stderr);
    let found = findings(&history);
    assert_eq!(found.len(), 1, "{}", history.stdout);
    assert_eq!(found[0]["source"], "git");
    assert_eq!(found[0]["commit"], leaking_commit.as_str());
    assert_eq!(found[0]["path"], "deploy/env");
    assert_eq!((found[0]["line"].as_u64(), found[0]["maskedKey"].as_str()), (Some(2), Some(mask_key(&key).as_str())));
    assert_no_plaintext(&history, &[&key]);

    let table = scan(root, &["--git"]);
    assert!(table.stdout.contains(&format!("{}:deploy/env", &leaking_commit[..10])), "{}", table.stdout);
    assert!(table.stderr.contains("git history"), "{}", table.stderr);
}

#[test]
fn revoke_disables_the_live_keys_which_the_gateway_then_refuses() {
    let mut environment = TestEnv::new();
    environment.start_server(&[]);
    let tree = tempfile::tempdir().unwrap();

    let not_logged_in = environment.run(&["scan", "--revoke", tree.path().to_str().unwrap()]);
    assert_eq!(not_logged_in.code, Some(2), "{}", not_logged_in.stderr);
    assert!(not_logged_in.stderr.contains("not logged in"), "{}", not_logged_in.stderr);

    environment.login_root();
    let (first_id, first) = create_key(&environment);
    let (_, second) = create_key(&environment);
    let (_, untouched) = create_key(&environment);
    let unknown = unknown_secure_key();
    assert_eq!((chat_status(&environment, &first), chat_status(&environment, &second)), (200, 200));
    std::fs::write(tree.path().join("a.env"), format!("KEY={first}\nOTHER={unknown}\n")).unwrap();
    std::fs::write(tree.path().join("b.yaml"), format!("key: {second}\nagain: {first}\n")).unwrap();

    let output = environment.run(&["scan", "--revoke", "--json", tree.path().to_str().unwrap()]);
    assert_eq!(output.code, Some(1), "{}", output.stderr);
    let revocation = output.json()["revocation"].as_array().expect("revocation results").clone();
    let statuses: Vec<(String, String)> = revocation
        .iter()
        .map(|result| (result["maskedKey"].as_str().unwrap_or("").to_string(), result["status"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        statuses,
        [
            (mask_key(&first), "disabled".to_string()),
            (mask_key(&unknown), "not_found".to_string()),
            (mask_key(&second), "disabled".to_string())
        ],
        "each key once, in the order found"
    );
    assert_eq!(revocation[0]["apiKeyId"].to_string(), first_id);
    assert_no_plaintext(&output, &[&first, &second, &unknown]);

    assert_eq!(chat_status(&environment, &first), 401);
    assert_eq!(chat_status(&environment, &second), 401);
    assert_eq!(chat_status(&environment, &untouched), 200);

    let again = environment.run(&["scan", "--revoke", tree.path().to_str().unwrap()]);
    assert!(again.stdout.contains("already_disabled"), "{}", again.stdout);
    let audit = environment.run(&["audit", "--json"]).success().stdout;
    assert!(audit.contains("ApiKey.LeakReport"), "{audit}");
}

#[test]
fn progress_is_shown_when_asked_and_a_missing_path_is_an_error() {
    let tree = tempfile::tempdir().unwrap();
    for index in 0..1000 {
        std::fs::write(tree.path().join(format!("file-{index:04}.txt")), "nothing here\n").unwrap();
    }
    let output = scan(tree.path(), &["--progress"]);
    assert_eq!(output.code, Some(0));
    assert!(output.stderr.contains("scanning: 1000 files, 0 keys found"), "{}", output.stderr);
    let quiet = scan(tree.path(), &[]);
    assert!(!quiet.stderr.contains("scanning:"), "no progress without a terminal: {}", quiet.stderr);
    let missing = scan(tree.path(), &["does-not-exist"]);
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.contains("does-not-exist does not exist"), "{}", missing.stderr);
}
