//! `keygate password`: the account and a RAM user change their own password from the
//! command line, non-interactively (stdin and the environment), on SQLite and on
//! PostgreSQL (with `KEYGATE_TEST_DATABASE_URL`; announced as skipped without it). The
//! saved session stays; another session of the same principal ends; a wrong current
//! password and a short new one are refused in keygate's error shape; the audit log names
//! each change's actor as `user@account`, like the RAM user's login.

use std::io::Write;

use serde_json::Value;

use crate::harness::{ServerProcess, TestEnv, ALICE_PASSWORD, ROOT_PASSWORD};
use crate::multinode::{random_hex, PostgresSchema};

const ROOT_NEW_PASSWORD: &str = "root-new-password-cli-5Rt";
const ALICE_NEW_PASSWORD: &str = "alice-new-password-cli-3Kp";

/// `keygate serve` on `environment`'s port, on the environment's SQLite data directory or,
/// given a schema, on PostgreSQL.
fn start(environment: &mut TestEnv, schema: Option<&PostgresSchema>) -> Option<ServerProcess> {
    let Some(schema) = schema else {
        environment.start_server(&[]);
        return None;
    };
    let listen = format!("127.0.0.1:{}=ap-southeast-1", environment.port);
    let master_key = random_hex(32);
    let database_url = schema.url_for_node("kg-cli-password");
    let arguments = ["--database-url", database_url.as_str(), "--listen", listen.as_str()];
    Some(environment.spawn_server(environment.port, "serve-postgres.log", &arguments, &[("KEYGATE_MASTER_KEY", &master_key)]))
}

fn own_password_changes_end_other_sessions(schema: Option<&PostgresSchema>) {
    let mut environment = TestEnv::new();
    let _postgres_server = start(&mut environment, schema);
    let elsewhere = tempfile::tempdir().expect("a second configuration directory");
    let elsewhere_dir = elsewhere.path().to_str().expect("utf-8 path");
    let from_elsewhere = [("KEYGATE_CONFIG_DIR", elsewhere_dir)];

    environment.login_root();
    environment
        .run_with(&["users", "create", "alice", "--role", "member", "--password-stdin"], &format!("{ALICE_PASSWORD}\n"), &[])
        .success();
    // A second session of the account, in another configuration directory.
    environment.run_with(&["login", "--account", "root"], &format!("{ROOT_PASSWORD}\n"), &from_elsewhere).success();

    // Refusals: nothing changes, and both sessions still work.
    let wrong = environment.run_with(&["password"], &format!("not-the-password\n{ROOT_NEW_PASSWORD}\n"), &[]).failure();
    assert!(
        wrong.stderr.contains("error: IncorrectPassword: The current password is wrong; the password was not changed."),
        "{}",
        wrong.stderr
    );
    let short = environment.run_with(&["password"], &format!("{ROOT_PASSWORD}\nshort\n"), &[]).failure();
    assert!(short.stderr.contains("error: InvalidParameter: password must have 8 to 256 characters, got 5."), "{}", short.stderr);
    environment.run_with(&["users", "list"], "", &from_elsewhere).success();

    // The change, with both passwords on stdin: the saved session stays, the other ends.
    let changed = environment.run_with(&["password"], &format!("{ROOT_PASSWORD}\n{ROOT_NEW_PASSWORD}\n"), &[]).success();
    assert_eq!(changed.stdout.trim(), "password of root changed; 1 other session signed out, this one stays");
    environment.run(&["users", "list"]).success();
    let ended = environment.run_with(&["users", "list"], "", &from_elsewhere).failure();
    assert!(ended.stderr.contains("InvalidBearerToken"), "{}", ended.stderr);
    let old = environment.run_with(&["login", "--account", "root"], &format!("{ROOT_PASSWORD}\n"), &from_elsewhere).failure();
    assert!(old.stderr.contains("InvalidCredentials"), "{}", old.stderr);

    // A RAM user, from the environment, with --json; it may not set its own password
    // through the administrators' command, which needs no current password.
    environment.run_with(&["login", "--account", "root", "--user", "alice"], &format!("{ALICE_PASSWORD}\n"), &from_elsewhere).success();
    let variables = [("KEYGATE_CONFIG_DIR", elsewhere_dir), ("KEYGATE_USER_PASSWORD", "alice-takeover-password")];
    let refused = environment.run_with(&["users", "set-password", "alice"], "", &variables).failure();
    assert!(refused.stderr.contains("Forbidden") && refused.stderr.contains("keygate password"), "{}", refused.stderr);
    let variables =
        [("KEYGATE_CONFIG_DIR", elsewhere_dir), ("KEYGATE_PASSWORD", ALICE_PASSWORD), ("KEYGATE_NEW_PASSWORD", ALICE_NEW_PASSWORD)];
    let answer = environment.run_with(&["password", "--json"], "", &variables).success().json();
    assert_eq!((&answer["changed"], &answer["sessionsEnded"]), (&Value::from(true), &Value::from(0)), "{answer}");
    environment.run_with(&["login", "--account", "root", "--user", "alice"], &format!("{ALICE_NEW_PASSWORD}\n"), &from_elsewhere).success();

    // The audit log: who changed which password, as `user@account` for the RAM user, like
    // its login; never a password.
    environment.run_with(&["login", "--account", "root"], &format!("{ROOT_NEW_PASSWORD}\n"), &[]).success();
    let listing = environment.run(&["audit", "--json"]).success();
    let entries = listing.json()["entries"].as_array().expect("entries").clone();
    let row = |action: &str, target: &str| {
        entries
            .iter()
            .find(|entry| entry["action"] == action && entry["target"] == target)
            .unwrap_or_else(|| panic!("no {action} row for {target}: {entries:#?}"))
            .clone()
    };
    assert_eq!(row("Account.ChangePassword", "account:root")["actor"], "root");
    assert_eq!(row("Account.ChangePassword", "account:root")["detail"], "sessions_ended=1");
    assert_eq!(row("User.ChangePassword", "user:alice")["actor"], "alice@root");
    let alice_logins = entries.iter().filter(|entry| entry["action"] == "Session.Login" && entry["actor"] == "alice@root").count();
    assert_eq!(alice_logins, 2, "a RAM user's logins name it as user@account: {entries:#?}");
    for secret in [ROOT_PASSWORD, ROOT_NEW_PASSWORD, ALICE_PASSWORD, ALICE_NEW_PASSWORD, "alice-takeover-password"] {
        assert!(!listing.stdout.contains(secret), "the audit listing shows a password");
    }
}

#[test]
fn own_password_changes_end_other_sessions_on_sqlite() {
    own_password_changes_end_other_sessions(None);
}

#[test]
fn own_password_changes_end_other_sessions_on_postgres() {
    let Some(schema) = PostgresSchema::create() else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: own_password_changes_end_other_sessions_on_postgres. Set KEYGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run it. ***\n"
        );
        return;
    };
    own_password_changes_end_other_sessions(Some(&schema));
}
