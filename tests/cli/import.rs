//! `keygate keys import` against a real server whose region allows 1,000 keys (a
//! `[[regions]]` override in its settings file): a file with one bad line imports nothing
//! and names the line; a 1,000-line CSV file imports with every key working at the
//! gateway; one key more would pass the limit and imports nothing; the owner sees a
//! plaintext again with `keys get`; and neither the output nor the SQLite files hold any
//! plaintext.

use std::collections::HashSet;

use keygate_core::keys::{expose, generate_key, KeyFormat};
use serde_json::Value;

use crate::harness::{chat_status, files_under, TestEnv};

/// Keys of "another deployment": classic `sk-` + 32 hex and other `sk-` shapes.
fn old_keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            let classic = expose(&generate_key(KeyFormat::Classic).plaintext).to_string();
            if index.is_multiple_of(3) {
                format!("sk-old_{index}-{}", &classic[3..])
            } else {
                classic
            }
        })
        .collect()
}

/// Every file under `directory` that holds the first 16 characters of a key's body (after
/// `sk-`), as `(file, key index)`.
fn plaintexts_in_files(directory: &std::path::Path, keys: &[String]) -> Vec<(String, usize)> {
    const WINDOW: usize = 16;
    let fragments: Vec<&[u8]> = keys.iter().map(|key| &key.as_bytes()[3..3 + WINDOW]).collect();
    let wanted: HashSet<&[u8]> = fragments.iter().copied().collect();
    let mut found = Vec::new();
    for path in files_under(directory) {
        let bytes = std::fs::read(&path).expect("read a data file");
        for window in bytes.windows(WINDOW) {
            if wanted.contains(window) {
                let index = fragments.iter().position(|fragment| *fragment == window).unwrap_or(usize::MAX);
                found.push((path.display().to_string(), index));
            }
        }
    }
    found
}

#[track_caller]
fn assert_no_plaintext_printed(environment: &TestEnv, outputs: &[&crate::harness::CliOutput], keys: &[String]) {
    let everything: String =
        outputs.iter().map(|output| format!("{}\n{}\n", output.stdout, output.stderr)).chain([environment.server_log()]).collect();
    for key in keys {
        assert!(!everything.contains(key.as_str()), "a plaintext was printed or logged");
    }
}

#[test]
fn a_thousand_keys_import_and_work_and_a_bad_line_imports_nothing() {
    let mut environment = TestEnv::new();
    let settings = environment.logs_dir.path().join("keygate.toml");
    std::fs::write(&settings, "[[regions]]\nid = \"ap-southeast-1\"\nkey_limit = 1000\n").expect("write the settings file");
    environment.start_server(&[("KEYGATE_CONFIG", settings.to_str().expect("utf-8 path"))]);
    environment.login_root();
    let workspace = environment.run(&["workspaces", "create", "imported", "--json"]).success().json();
    let workspace_id = workspace["workspace"]["workspaceId"].as_str().expect("workspaceId").to_string();
    environment.run(&["workspaces", "grant", &workspace_id, "demo-echo"]).success();
    let keys = old_keys(1000);
    let import = |file: &std::path::Path, extra: &[&str]| {
        let file = file.to_str().expect("utf-8 path");
        let mut arguments = vec!["keys", "import", "--region", "ap-southeast-1", "--workspace", &workspace_id, "--file", file];
        arguments.extend_from_slice(extra);
        environment.run(&arguments)
    };

    // One bad line (line 5 of the file): nothing is imported, and the line is named.
    let bad_file = environment.logs_dir.path().join("bad.txt");
    std::fs::write(&bad_file, format!("# from the old gateway\n{}\n{}\n\nsk-not a key\n{}\n", keys[0], keys[1], keys[2])).unwrap();
    let refused = import(&bad_file, &[]).failure();
    assert!(refused.stderr.contains("line 5: not a key keygate can import"), "{}", refused.stderr);
    assert!(refused.stderr.contains("error: nothing was imported: 1 bad line in "), "{}", refused.stderr);
    assert_eq!(chat_status(&environment, &keys[0]), 401, "nothing was imported");

    // 1,000 keys, CSV with a header, quoted descriptions and a comment.
    let mut csv = String::from("key,description\n# exported from the old gateway\n");
    for (index, key) in keys.iter().enumerate() {
        csv.push_str(&format!("{key},\"team {}, bot {index}\"\n", index % 7));
    }
    let file = environment.logs_dir.path().join("keys.csv");
    std::fs::write(&file, csv).unwrap();
    let imported = import(&file, &[]).success();
    assert!(
        imported.stdout.contains(&format!("Imported 1000 API keys into workspace {workspace_id} in region ap-southeast-1")),
        "{}",
        imported.stdout
    );
    assert!(imported.stderr.contains("checked 1002 lines of "), "{}", imported.stderr);
    assert!(imported.stderr.contains("importing 1000 keys… done"), "{}", imported.stderr);
    for index in [0, 1, 2, 499, 998, 999] {
        assert_eq!(chat_status(&environment, &keys[index]), 200, "key {index} works at the gateway");
    }

    // The owner sees a plaintext again; the list shows masked keys.
    let listed = environment.run(&["keys", "list", "--json"]).success().json();
    assert_eq!(listed["totalCount"], 1000);
    let newest = &listed["apiKeys"][0];
    assert_eq!(newest["replaceAdvised"], true);
    let key_id = newest["apiKeyId"].as_i64().expect("id").to_string();
    let shown = environment.run(&["keys", "get", &key_id]).success();
    assert_eq!(shown.labelled("Plaintext (legacy)"), keys[999]);
    assert_eq!(shown.labelled("Description"), "team 5, bot 999");

    // One key more would pass the limit: nothing is imported, and the output says so.
    let more = old_keys(1);
    let one_more = environment.logs_dir.path().join("one-more.txt");
    std::fs::write(&one_more, format!("{}\n", more[0])).unwrap();
    let over = import(&one_more, &["--json"]).failure();
    assert!(
        over.stderr.contains(
            "error: QuotaExceeded.ApiKey: Nothing was imported: importing 1 key would exceed the API key limit of this region (1000) by 1"
        ),
        "{}",
        over.stderr
    );
    assert_eq!(over.json()["code"], "QuotaExceeded.ApiKey");
    assert_eq!(chat_status(&environment, &more[0]), 401);

    // The same file again: every line is a key already in keygate.
    let again = import(&file, &["--skip-bad", "--json"]).failure();
    let answer: Value = again.json();
    assert_eq!(answer["badLines"].as_array().map(Vec::len), Some(1000), "{}", again.stdout);
    assert!(answer["badLines"][0]["reason"].as_str().unwrap_or("").ends_with(" is already in keygate"), "{}", again.stdout);

    let everything: Vec<String> = keys.iter().chain(&more).cloned().collect();
    assert_no_plaintext_printed(&environment, &[&refused, &imported, &listed_output(&environment), &over, &again], &everything);
    assert_eq!(plaintexts_in_files(environment.data_dir.path(), &everything), [], "the database holds no plaintext");
    environment.stop_server();
    assert_eq!(plaintexts_in_files(environment.data_dir.path(), &everything), [], "nor after the WAL is checkpointed");
    // The search finds what is there: the files imported from.
    assert_eq!(plaintexts_in_files(environment.logs_dir.path(), &everything).len(), 1000 + 3 + 1);
}

/// The key list as printed for a person, for the plaintext check.
fn listed_output(environment: &TestEnv) -> crate::harness::CliOutput {
    environment.run(&["keys", "list", "--all"]).success()
}
