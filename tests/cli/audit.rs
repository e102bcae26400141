//! `keygate audit` names the credential of every change: the session the CLI logged in
//! with, and `-` for a change made on the database directly (`keygate admin`).

use keygate_server::secrets::{session_label, session_token_digest};
use serde_json::Value;

use crate::harness::{column, create_key, TestEnv, ROOT_PASSWORD};

#[test]
fn the_audit_listing_shows_the_credential_of_each_change() {
    let mut env = TestEnv::new();
    env.run_with(
        &["admin", "create-user", "--init", "--account", "root", "--name", "alice", "--role", "member"],
        "",
        &[("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)],
    )
    .success();
    env.start_server(&[]);
    env.login_root();
    let token = env.session()["token"].as_str().expect("the session's token").to_string();
    let session = format!("session:{}", session_label(&session_token_digest(&token)));
    let (key_id, _) = create_key(&env);

    let listing = env.run(&["audit"]).success().stdout;
    let actions = column(&listing, "ACTION");
    let credentials = column(&listing, "CREDENTIAL");
    let credential_of = |action: &str| {
        let row = actions.iter().position(|each| each == action).unwrap_or_else(|| panic!("no {action} row in:\n{listing}"));
        credentials[row].clone()
    };
    assert_eq!(credential_of("ApiKey.Create"), session, "{listing}");
    assert_eq!(credential_of("Session.Login"), session, "{listing}");
    assert_eq!(credential_of("User.Create"), "-", "{listing}");

    let entries = env.run(&["audit", "--json"]).success().json();
    let entries = entries["entries"].as_array().expect("entries");
    let created = entries.iter().find(|entry| entry["target"] == Value::String(format!("apiKey:{key_id}"))).expect("the key's row");
    assert_eq!((&created["actor"], &created["credential"]), (&Value::from("root"), &Value::from(session.as_str())));
    assert!(!listing.contains(&token), "the session token itself is never shown");
}
