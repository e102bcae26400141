//! `keygate admin` acts on an existing database only: run where no database is, it says
//! which one it looked for and creates nothing, unless `--init` asks it to.

use std::process::Stdio;

use crate::harness::{TestEnv, ROOT_PASSWORD};

#[test]
fn admin_where_no_database_is_names_the_one_it_looked_for_and_creates_nothing() {
    let env = TestEnv::new();
    let elsewhere = tempfile::tempdir().expect("another working directory");

    // The default data directory is relative: run from another directory, as the user did.
    let output = env
        .command()
        .env_remove("KEYGATE_DATA_DIR")
        .env("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)
        .current_dir(elsewhere.path())
        .args(["admin", "create-access-key", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run keygate admin");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stdout: {}\nstderr: {stderr}", String::from_utf8_lossy(&output.stdout));
    let looked_for = elsewhere.path().canonicalize().expect("canonical").join("keygate-data");
    assert!(stderr.contains(&format!("no data directory at {}", looked_for.display())), "{stderr}");
    assert!(stderr.contains("--init"), "the refusal says how to create one: {stderr}");
    assert!(output.stdout.is_empty(), "no AccessKey is printed: {}", String::from_utf8_lossy(&output.stdout));
    assert!(!looked_for.exists(), "no data directory was created");

    // A data directory that exists but holds no database: named, and left empty.
    let refused = env.run_with(&["admin", "create-user", "--name", "alice"], "", &[("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)]).failure();
    let database = env.data_dir.path().join("keygate.db");
    assert!(refused.stderr.contains(&format!("no database at {}", database.display())), "{}", refused.stderr);
    assert_eq!(std::fs::read_dir(env.data_dir.path()).expect("read the data dir").count(), 0, "the data directory stays empty");

    // --init creates it (and root), after which admin works without it, and serve uses that database.
    let created = env
        .run_with(&["admin", "create-user", "--init", "--name", "alice", "--json"], "", &[("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)])
        .success()
        .json();
    assert_eq!(created["name"], "alice");
    assert!(database.is_file());
    env.run_with(&["admin", "create-access-key", "--user", "alice", "--json"], "", &[]).success();
}
