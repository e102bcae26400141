//! Users, workspaces, AccessKeys and the audit log from the command line, as the account
//! administers them.

use crate::harness::TestEnv;

const BOB_PASSWORD: &str = "bob-password-cli-tests-3Rt";

#[test]
fn users_workspaces_access_keys_and_audit_through_the_cli() {
    let mut env = TestEnv::new();
    env.start_server(&[]);
    env.login_root();

    // Users.
    let created =
        env.run_with(&["users", "create", "bob", "--role", "member", "--password-stdin"], &format!("{BOB_PASSWORD}\n"), &[]).success();
    assert!(created.stdout.contains("bob"), "{}", created.stdout);
    assert!(!created.stdout.contains(BOB_PASSWORD) && !created.stderr.contains(BOB_PASSWORD));
    let no_password = env.run(&["users", "create", "carol", "--role", "key-manager"]).success();
    assert!(no_password.stderr.contains("cannot log in"), "{}", no_password.stderr);
    let bad_role = env.run(&["users", "create", "dave", "--role", "owner"]);
    assert_eq!(bad_role.code, Some(2), "clap refuses an unknown role: {}", bad_role.stderr);

    let list = env.run(&["users", "list"]).success();
    let header = list.stdout.lines().next().unwrap_or("");
    assert!(header.starts_with("NAME") && header.contains("ROLE") && header.contains("STATUS"), "{}", list.stdout);
    assert!(
        list.stdout.lines().any(|line| line.starts_with("bob ") && line.contains("member") && line.contains("active")),
        "{}",
        list.stdout
    );
    let users = env.run(&["users", "list", "--json"]).success().json();
    let names: Vec<&str> = users["users"].as_array().expect("users").iter().filter_map(|user| user["name"].as_str()).collect();
    assert!(names.contains(&"bob") && names.contains(&"carol"), "{names:?}");

    env.run(&["users", "set-role", "bob", "key-manager"]).success();
    let bob = env.run(&["users", "get", "bob", "--json"]).success().json();
    assert_eq!(bob["user"]["role"], "key-manager");
    assert_eq!(env.run(&["users", "get", "bob"]).success().labelled("Role"), "key-manager");
    env.run(&["users", "disable", "bob"]).success();
    assert_eq!(env.run(&["users", "get", "bob", "--json"]).success().json()["user"]["status"], "disabled");
    env.run(&["users", "enable", "bob"]).success();
    assert_eq!(env.run(&["users", "get", "bob", "--json"]).success().json()["user"]["status"], "active");
    let missing = env.run(&["users", "get", "nobody"]).failure();
    assert!(missing.stderr.starts_with("error: User.NotFound: "), "{}", missing.stderr);

    // Workspaces, members and model grants.
    let workspace = env.run(&["workspaces", "create", "team-search", "--json"]).success().json();
    let workspace_id = workspace["workspace"]["workspaceId"].as_str().expect("workspaceId").to_string();
    assert!(workspace_id.starts_with("llm-"), "{workspace_id}");
    let workspaces = env.run(&["workspaces", "list"]).success();
    assert!(workspaces.stdout.lines().any(|line| line.starts_with(&workspace_id) && line.contains("team-search")), "{}", workspaces.stdout);
    env.run(&["workspaces", "add-member", &workspace_id, "bob"]).success();
    let members = env.run(&["workspaces", "members", &workspace_id]).success();
    assert!(members.stdout.lines().any(|line| line.starts_with("bob ")), "{}", members.stdout);
    env.run(&["workspaces", "grant", &workspace_id, "demo-echo"]).success();
    let models = env.run(&["workspaces", "models", &workspace_id, "--json"]).success().json();
    let demo_echo = models["list"].as_array().expect("list").iter().find(|model| model["model"] == "demo-echo").expect("demo-echo listed");
    assert_eq!(demo_echo["permissions"]["inference"], true);
    let unknown_model = env.run(&["workspaces", "grant", &workspace_id, "no-such-model"]).failure();
    assert!(unknown_model.stderr.starts_with("error: InvalidParameter: "), "{}", unknown_model.stderr);

    // bob, a member now, makes a key in the workspace; then leaves it.
    env.login_user("bob", BOB_PASSWORD);
    let bob_key = env.run(&["keys", "create", "--workspace", &workspace_id, "--description", "bob's"]).success();
    let bob_key_id = bob_key.labelled("API key id");
    assert_eq!(bob_key.labelled("Workspace"), workspace_id);
    let denied = env.run(&["workspaces", "create", "not-allowed"]).failure();
    assert!(denied.stderr.starts_with("error: Forbidden: "), "{}", denied.stderr);
    env.login_root();
    env.run(&["workspaces", "remove-member", &workspace_id, "bob"]).success();
    assert!(!env.run(&["workspaces", "members", &workspace_id]).success().stdout.lines().any(|line| line.starts_with("bob ")));

    // A workspace that still has keys is not deleted; without them it is.
    let refused = env.run(&["workspaces", "delete", &workspace_id, "--yes"]).failure();
    assert!(refused.stderr.contains("was not deleted") && refused.stderr.contains("API key"), "{}", refused.stderr);
    env.run(&["keys", "delete", &bob_key_id, "--yes"]).success();
    env.run(&["workspaces", "delete", &workspace_id, "--yes"]).success();
    assert!(!env.run(&["workspaces", "list"]).success().stdout.contains(&workspace_id));
    let unconfirmed = env.run(&["workspaces", "delete", "llm-0000000000000000"]).failure();
    assert!(unconfirmed.stderr.contains("--yes"), "{}", unconfirmed.stderr);

    // AccessKeys: the secret once, never in lists.
    let access_key = env.run(&["users", "access-keys", "create", "--user", "bob"]).success();
    let access_key_id = access_key.labelled("AccessKey id");
    let secret = access_key.labelled("AccessKey secret");
    assert!(access_key_id.starts_with("LTAI") && secret.len() == 30, "{access_key_id} {secret}");
    assert!(access_key.stderr.contains("only time"), "{}", access_key.stderr);
    let own = env.run(&["users", "access-keys", "create", "--json"]).success().json();
    assert!(own["accessKeySecret"].as_str().is_some_and(|secret| secret.len() == 30), "{own}");
    let listed = env.run(&["users", "access-keys", "list"]).success();
    assert!(listed.stdout.contains(&access_key_id) && !listed.stdout.contains(&secret), "{}", listed.stdout);
    let bob_only = env.run(&["users", "access-keys", "list", "--user", "bob", "--json"]).success().json();
    let bob_ids: Vec<&str> =
        bob_only["accessKeys"].as_array().expect("accessKeys").iter().filter_map(|key| key["accessKeyId"].as_str()).collect();
    assert_eq!(bob_ids, [access_key_id.as_str()]);
    env.run(&["users", "access-keys", "disable", &access_key_id]).success();
    assert!(env
        .run(&["users", "access-keys", "list"])
        .success()
        .stdout
        .lines()
        .any(|line| line.starts_with(&access_key_id) && line.contains("disabled")));
    env.run(&["users", "access-keys", "enable", &access_key_id]).success();
    assert!(env.run(&["users", "access-keys", "delete", &access_key_id]).failure().stderr.contains("--yes"));
    env.run(&["users", "access-keys", "delete", &access_key_id, "--yes"]).success();
    assert!(!env.run(&["users", "access-keys", "list"]).success().stdout.contains(&access_key_id));

    // Deleting a user is final.
    assert!(env.run(&["users", "delete", "carol"]).failure().stderr.contains("--yes"));
    env.run(&["users", "delete", "carol", "--yes"]).success();
    assert!(env.run(&["users", "get", "carol"]).failure().stderr.starts_with("error: User.NotFound: "));

    // The audit log shows all of it, newest first, never a secret.
    let audit = env.run(&["audit", "--limit", "100"]).success();
    assert!(audit.stdout.lines().next().unwrap_or("").starts_with("ID "), "{}", audit.stdout);
    assert!(!audit.stdout.contains(&secret) && !audit.stdout.contains(BOB_PASSWORD));
    let entries = env.run(&["audit", "--limit", "100", "--json"]).success().json();
    let entries = entries["entries"].as_array().expect("entries");
    assert!(entries.len() >= 10, "{entries:?}");
    assert!(entries.iter().any(|entry| entry["actor"] == "root"), "{entries:?}");
    let ids: Vec<i64> = entries.iter().filter_map(|entry| entry["auditId"].as_i64()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "newest first: {ids:?}");
    let page = env.run(&["audit", "--limit", "2", "--json"]).success().json();
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2));
}
