//! `keygate keys` with per-key limits against a real server (docs/CONTRACT.md#per-key-limits):
//! `create` with limit flags, `edit` laying flags over the key's limits and
//! `--clear-limits`, the `Limits` and `Budget` lines of `get`, the warning line of `list`
//! for a key that expires within 7 days, and the server's 400 naming the field.

use crate::harness::TestEnv;

#[test]
fn keys_get_limits_and_warnings_through_the_cli() {
    let mut env = TestEnv::new();
    env.start_server(&[]);
    env.login_root();
    let created = env
        .run(&["keys", "create", "--rpm", "60", "--max-in-flight", "4", "--budget-tokens", "5000", "--budget-period", "day", "--json"])
        .success()
        .json();
    let limits = &created["apiKey"]["keygateLimits"];
    assert_eq!(
        limits,
        &serde_json::json!({"requestsPerMinute": 60, "maxInFlight": 4, "budget": {"period": "day", "tokens": 5000}}),
        "{created}"
    );
    let key_id = created["apiKey"]["apiKeyId"].to_string();
    let shown = env.run(&["keys", "get", &key_id]).success();
    assert_eq!(shown.labelled("Limits"), "60 rpm, 4 in flight, budget per day: 5000 tokens");
    assert!(shown.labelled("Budget").starts_with("0 tokens and 0.00 USD used this day"), "{}", shown.stdout);

    // Flags are laid over the key's limits; --clear-limits starts from none.
    env.run(&["keys", "edit", &key_id, "--tpm", "1000", "--budget-cost", "2.5"]).success();
    let shown = env.run(&["keys", "get", &key_id]).success();
    assert_eq!(shown.labelled("Limits"), "60 rpm, 1000 tpm, 4 in flight, budget per day: 5000 tokens, 2.50");
    env.run(&["keys", "edit", &key_id, "--clear-limits", "--rpm", "5"]).success();
    assert_eq!(env.run(&["keys", "get", &key_id]).success().labelled("Limits"), "5 rpm");
    env.run(&["keys", "edit", &key_id, "--clear-limits"]).success();
    assert_eq!(env.run(&["keys", "get", &key_id]).success().labelled("Limits"), "none");

    let refused = env.run(&["keys", "edit", &key_id, "--rpm", "0"]).failure();
    assert!(refused.stderr.contains("InvalidParameter: keygateLimits.requestsPerMinute must be an integer from 1"), "{}", refused.stderr);

    // A key that expires within 7 days gets a warning line under the table.
    let soon = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3 * 86_400).to_string();
    env.run(&["keys", "edit", &key_id, "--expires-at", &soon]).success();
    let listed = env.run(&["keys", "list"]).success().stdout;
    assert!(listed.contains(&format!("warning: API key {key_id} (")) && listed.contains("it expires at"), "{listed}");
}
