//! `keygate keys` with an expiry and a reset's grace period against a real server
//! (docs/CONTRACT.md#expiry-and-grace-periods): `create --expires-at`, `edit --expires-at`
//! (a time or `never`), the EXPIRES column and the `get` fields, `reset --grace-seconds`
//! (both secrets work), `end-grace` (the old one stops), and the server's 400s.

use crate::harness::{chat_status, column, TestEnv};

#[test]
fn keys_get_an_expiry_and_a_grace_period_through_the_cli() {
    let mut env = TestEnv::new();
    env.start_server(&[]);
    env.login_root();
    let created = env.run(&["keys", "create", "--expires-at", "2099-01-31T00:00:00Z", "--json"]).success().json();
    assert_eq!(created["apiKey"]["keygateExpiresAt"], 4_073_500_800_000_i64, "{created}");
    let (key_id, old) = (created["apiKey"]["apiKeyId"].to_string(), created["apiKey"]["apiKeyValue"].as_str().unwrap().to_string());
    assert_eq!(env.run(&["keys", "get", &key_id]).success().labelled("Expires"), "2099-01-31T00:00:00Z");
    let table = env.run(&["keys", "list"]).success().stdout;
    assert_eq!(column(&table, "EXPIRES"), ["2099-01-31T00:00:00Z"]);
    assert_eq!(column(&table, "STATUS"), ["enabled"]);

    let past = env.run(&["keys", "edit", &key_id, "--expires-at", "2001-01-01T00:00:00Z"]).failure();
    assert!(past.stderr.contains("InvalidParameter: keygateExpiresAt must be a time in the future"), "{}", past.stderr);
    env.run(&["keys", "edit", &key_id, "--expires-at", "never"]).success();
    assert_eq!(env.run(&["keys", "get", &key_id]).success().labelled("Expires"), "never");

    let reset = env.run(&["keys", "reset", &key_id, "--grace-seconds", "600", "--yes", "--json"]).success().json();
    let new = reset["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    assert_eq!((chat_status(&env, &old), chat_status(&env, &new)), (200, 200), "both secrets work during the grace period");
    assert_ne!(env.run(&["keys", "get", &key_id]).success().labelled("Old secret until"), "-");
    let ended = env.run(&["keys", "end-grace", &key_id]).success();
    assert!(ended.stdout.contains(&format!("ended the grace period of API key {key_id}")), "{}", ended.stdout);
    assert_eq!((chat_status(&env, &old), chat_status(&env, &new)), (401, 200));
    let again = env.run(&["keys", "end-grace", &key_id]).failure();
    assert!(again.stderr.contains("has no old secret in a grace period"), "{}", again.stderr);
}
