//! The API-key life cycle from the command line: bootstrap a RAM user with `admin`, log in,
//! create, list, get, edit, disable, enable, reset and delete keys, and check what a RAM
//! user may see.

use crate::harness::{file_mode, masked_form, TestEnv, ALICE_PASSWORD, ROOT_PASSWORD};

#[test]
fn key_life_cycle_through_the_cli() {
    let mut env = TestEnv::new();

    // Bootstrap on the database directly, before the server runs.
    let created = env
        .run_with(
            &["admin", "create-user", "--init", "--account", "root", "--name", "alice", "--role", "key-manager", "--json"],
            "",
            &[("KEYGATE_USER_PASSWORD", ALICE_PASSWORD), ("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)],
        )
        .success()
        .json();
    assert_eq!((created["name"].as_str(), created["role"].as_str()), (Some("alice"), Some("key-manager")));

    env.start_server(&[]);

    // Not logged in yet: a clear refusal.
    let refused = env.run(&["keys", "list"]).failure();
    assert!(refused.stderr.contains("not logged in"), "{}", refused.stderr);

    // A wrong password is refused with the server's code.
    let wrong = env.run_with(&["login"], "not-the-password\n", &[]).failure();
    assert!(wrong.stderr.starts_with("error: InvalidCredentials: "), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("(request id "), "{}", wrong.stderr);

    let login = env.login_root();
    assert!(login.stdout.contains("root"), "{}", login.stdout);
    assert!(!login.stdout.contains(ROOT_PASSWORD) && !login.stderr.contains(ROOT_PASSWORD));
    let session = env.session();
    assert_eq!(session["server"], env.server_url());
    assert_eq!(session["account"], "root");
    let token = session["token"].as_str().expect("token").to_string();
    assert!(!login.stdout.contains(&token), "login printed the session token");
    assert_eq!(file_mode(&env.session_path()), 0o600);

    // Create: the plaintext once, with a warning.
    let create = env.run(&["keys", "create", "--description", "root scenario key"]).success();
    let plaintext = create.labelled("API key");
    assert!(plaintext.starts_with("sk-ws-") && plaintext.len() == 6 + 38, "{plaintext}");
    assert!(create.stderr.contains("only time"), "{}", create.stderr);
    assert!(!create.stderr.contains(&plaintext));
    let key_id = create.labelled("API key id");
    let masked = masked_form(&plaintext);

    // List and get: only the masked form.
    let list = env.run(&["keys", "list"]).success();
    assert!(list.stdout.contains(&masked), "{}", list.stdout);
    assert!(!list.stdout.contains(&plaintext));
    assert!(list.stdout.lines().next().unwrap_or("").starts_with("ID "), "a table with a header:\n{}", list.stdout);
    let list_json = env.run(&["keys", "list", "--json"]).success().json();
    let listed = list_json["apiKeys"].as_array().expect("apiKeys");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["apiKeyValue"], masked);
    assert_eq!(listed[0]["apiKeyId"].to_string(), key_id);

    let get = env.run(&["keys", "get", &key_id]).success();
    assert!(get.stdout.contains(&masked) && get.stdout.contains("root scenario key"), "{}", get.stdout);
    assert!(!get.stdout.contains(&plaintext));
    assert_eq!(get.labelled("Permission"), "All");

    // Edit: description and custom permissions, then back to All.
    env.run(&["keys", "edit", &key_id, "--description", "edited", "--custom", "--ip", "10.0.0.0/8", "--model", "demo-echo"]).success();
    let edited = env.run(&["keys", "get", &key_id, "--json"]).success().json();
    assert_eq!(edited["apiKey"]["description"], "edited");
    assert_eq!(edited["apiKey"]["auth"]["type"], "Custom");
    assert_eq!(edited["apiKey"]["auth"]["accessIps"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(edited["apiKey"]["auth"]["modelAccessScope"]["accessibleModels"], serde_json::json!(["demo-echo"]));
    assert_eq!(edited["apiKey"]["auth"]["modelAccessScope"]["allowAllModels"], false);
    env.run(&["keys", "edit", &key_id, "--all"]).success();
    let all = env.run(&["keys", "get", &key_id, "--json"]).success().json();
    assert_eq!(all["apiKey"]["auth"]["type"], "All");
    let nothing = env.run(&["keys", "edit", &key_id]).failure();
    assert!(nothing.stderr.contains("nothing to change"), "{}", nothing.stderr);
    let bad_model = env.run(&["keys", "edit", &key_id, "--custom", "--model", "no-such-model"]).failure();
    assert!(bad_model.stderr.starts_with("error: InvalidParameter: "), "{}", bad_model.stderr);

    // Disable and enable.
    let disabled = env.run(&["keys", "disable", &key_id]).success();
    assert!(disabled.stdout.contains("disabled"), "{}", disabled.stdout);
    assert_eq!(env.run(&["keys", "get", &key_id, "--json"]).success().json()["apiKey"]["disabled"], 1);
    assert!(env.run(&["keys", "list"]).success().stdout.contains("disabled"));
    env.run(&["keys", "enable", &key_id]).success();
    assert_eq!(env.run(&["keys", "get", &key_id, "--json"]).success().json()["apiKey"]["disabled"], 0);

    // Reset asks first: without a terminal and without --yes it refuses and changes nothing.
    let unconfirmed = env.run(&["keys", "reset", &key_id]).failure();
    assert!(unconfirmed.stderr.contains("reset API key") && unconfirmed.stderr.contains("add --yes"), "{}", unconfirmed.stderr);
    assert!(unconfirmed.stdout.is_empty(), "{}", unconfirmed.stdout);
    assert!(env.run(&["keys", "list"]).success().stdout.contains(&masked_form(&plaintext)), "the key keeps its secret");

    // Reset: a new plaintext for the same id, shown once.
    let reset = env.run(&["keys", "reset", &key_id, "--yes"]).success();
    let new_plaintext = reset.labelled("API key");
    assert!(new_plaintext.starts_with("sk-ws-") && new_plaintext != plaintext);
    assert_eq!(reset.labelled("API key id"), key_id);
    assert!(reset.stderr.contains("only time"), "{}", reset.stderr);
    let after_reset = env.run(&["keys", "list"]).success();
    assert!(after_reset.stdout.contains(&masked_form(&new_plaintext)));
    assert!(!after_reset.stdout.contains(&new_plaintext) && !after_reset.stdout.contains(&plaintext));

    // --json create and reset: the envelope with the plaintext.
    let second = env.run(&["keys", "create", "--description", "second", "--json"]).success().json();
    assert_eq!(second["success"], true);
    let second_id = second["apiKey"]["apiKeyId"].to_string();
    assert!(second["apiKey"]["apiKeyValue"].as_str().is_some_and(|value| value.starts_with("sk-ws-")));
    let second_reset = env.run(&["keys", "reset", &second_id, "--yes", "--json"]).success().json();
    assert!(second_reset["apiKey"]["apiKeyValue"].as_str().is_some_and(|value| value.starts_with("sk-ws-")));
    assert!(env.run(&["keys", "list", "--description", "second", "--json"]).success().json()["apiKeys"]
        .as_array()
        .is_some_and(|keys| keys.len() == 1));

    // Delete: refused without --yes when nobody can be asked.
    let unconfirmed = env.run(&["keys", "delete", &second_id]).failure();
    assert!(unconfirmed.stderr.contains("--yes") && unconfirmed.stderr.contains("not a terminal"), "{}", unconfirmed.stderr);
    env.run(&["keys", "get", &second_id]).success();
    env.run(&["keys", "delete", &second_id, "--yes"]).success();
    let gone = env.run(&["keys", "get", &second_id]).failure();
    assert!(gone.stderr.starts_with("error: ApiKey.NotFound: "), "{}", gone.stderr);

    // A RAM user sees only its own keys; root's key answers NotFound, not Forbidden.
    env.login_user("alice", ALICE_PASSWORD);
    assert_eq!(env.session()["user"], "alice");
    assert_eq!(file_mode(&env.session_path()), 0o600);
    let alice_list = env.run(&["keys", "list", "--json"]).success().json();
    assert!(alice_list["apiKeys"].as_array().is_some_and(Vec::is_empty), "{alice_list}");
    let alice_table = env.run(&["keys", "list"]).success();
    assert!(!alice_table.stdout.contains(&masked_form(&new_plaintext)), "{}", alice_table.stdout);
    let alice_key = env.run(&["keys", "create", "--description", "alice key"]).success();
    let alice_key_id = alice_key.labelled("API key id");
    let alice_list = env.run(&["keys", "list", "--json"]).success().json();
    let alice_ids: Vec<String> = alice_list["apiKeys"].as_array().expect("apiKeys").iter().map(|key| key["apiKeyId"].to_string()).collect();
    assert_eq!(alice_ids, [alice_key_id]);
    let hidden = env.run(&["keys", "get", &key_id]).failure();
    assert!(hidden.stderr.starts_with("error: ApiKey.NotFound: "), "{}", hidden.stderr);
    assert!(hidden.stderr.contains("(request id "), "{}", hidden.stderr);
    assert!(hidden.stdout.is_empty());

    // The token is only sent to the server that issued it.
    let elsewhere = env.run(&["keys", "list", "--server", "http://127.0.0.1:9"]).failure();
    assert!(elsewhere.stderr.contains("saved session is for"), "{}", elsewhere.stderr);

    // Logout ends the session on the server and locally.
    let alice_token = env.session()["token"].as_str().expect("token").to_string();
    env.run(&["logout"]).success();
    assert!(!env.session_path().exists());
    assert!(env.run(&["keys", "list"]).failure().stderr.contains("not logged in"));
    // The old token no longer works: put it back and try.
    std::fs::write(
        env.session_path(),
        serde_json::json!({"server": env.server_url(), "token": alice_token, "account": "root", "user": "alice"}).to_string(),
    )
    .expect("write");
    let expired = env.run(&["keys", "list"]).failure();
    // (The rewritten file has the default mode, which earns a warning first.)
    assert!(expired.stderr.contains("error: InvalidBearerToken: "), "{}", expired.stderr);
}
