//! keygate's own API (`/keygate/v1/...`) end to end: RAM users, workspace membership,
//! applications, AccessKeys, the catalog, regions, the audit log and the OpenAPI document,
//! checked the way a user would notice them.

use keygate_core::access::Role;
use keygate_store::AuditContext;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Answer, Client, Credentials, TestApp, USER_PASSWORD};

const REGION: &str = "ap-southeast-1";

/// Sends a JSON request (`body` None: no body) with the client's credentials.
async fn call(client: &Client, method: &str, path: &str, body: Option<Value>) -> Answer {
    let text = body.map(|body| body.to_string()).unwrap_or_default();
    let Credentials::Session(token) = &client.credentials else {
        // Signed requests go through the helper, which signs the exact body bytes.
        return client.send(method, path, &text).await;
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, format!("{}{}", client.base, path)).header("x-acs-bearer-token", token);
    if !text.is_empty() {
        request = request.header("content-type", "application/json").body(text);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    Answer { status, body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}")) }
}

/// The error envelope a caller should see (the request id is checked apart).
pub(crate) fn error(status: u16, code: &str, message: &str) -> Value {
    json!({"requestId": "", "code": code, "message": message, "httpStatusCode": status, "success": false})
}

/// The whole body of an error answer, its request id checked and blanked.
pub(crate) fn error_body(answer: &Answer) -> Value {
    let mut body = answer.body.clone();
    assert!(body["requestId"].as_str().is_some_and(|id| id.len() == 36), "no request id: {body}");
    body["requestId"] = json!("");
    body
}

fn assert_ok(answer: &Answer) {
    assert_eq!((answer.status, &answer.body["success"]), (200, &json!(true)), "{}", answer.body);
}

/// Logs in with an explicit password; returns the raw answer.
async fn login_with(app: &TestApp, user: &str, password: &str) -> Answer {
    let response = app
        .http
        .post(format!("http://{}/keygate/v1/sessions", app.address))
        .json(&json!({"account": "root", "user": user, "password": password}))
        .send()
        .await
        .unwrap();
    Answer { status: response.status().as_u16(), body: response.json().await.unwrap() }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[field].as_str().unwrap_or("").to_string())
        .collect()
}

/// Every audit entry of the root account, newest first.
async fn audit_entries(root: &Client) -> Vec<Value> {
    let answer = call(root, "GET", "/keygate/v1/audit?limit=500", None).await;
    assert_ok(&answer);
    answer.body["entries"].as_array().unwrap().clone()
}

fn has_entry(entries: &[Value], action: &str, target: &str) -> bool {
    entries.iter().any(|entry| entry["action"] == action && entry["target"] == target)
}

#[tokio::test]
async fn a_key_manager_cannot_create_users_and_nothing_is_created() {
    let app = spawn_app().await;
    app.create_user("kim", Role::KeyManager).await;
    let kim = app.login(Some("kim")).await;
    let refused =
        call(&kim, "POST", "/keygate/v1/users", Some(json!({"name": "eve", "role": "admin", "password": "eve-password-1"}))).await;
    assert_eq!(refused.status, 403);
    assert_eq!(error_body(&refused), error(403, "Forbidden", "only the account or an admin RAM user may do this"));
    for (method, path) in [
        ("GET", "/keygate/v1/users"),
        ("GET", "/keygate/v1/audit"),
        ("POST", "/keygate/v1/users/kim/disable"),
        ("DELETE", "/keygate/v1/users/kim"),
    ] {
        let answer = call(&kim, method, path, None).await;
        assert_eq!((answer.status, answer.code()), (403, "Forbidden"), "{method} {path}");
    }

    let root = app.login(None).await;
    let users = call(&root, "GET", "/keygate/v1/users", None).await;
    assert_ok(&users);
    assert_eq!(names(&users.body["users"], "name"), ["kim"]);
    assert_eq!(users.body["users"][0]["status"], "active");
}

#[tokio::test]
async fn the_account_manages_a_user_through_its_whole_life() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let created =
        call(&root, "POST", "/keygate/v1/users", Some(json!({"name": "alice", "role": "member", "password": "alice-password-1"}))).await;
    assert_ok(&created);
    let user = &created.body["user"];
    assert!(user["userId"].is_i64() && user["gmtCreate"].is_i64(), "{user}");
    assert_eq!(
        (&user["name"], &user["role"], &user["status"], &user["workspaces"]),
        (&json!("alice"), &json!("member"), &json!("active"), &json!([]))
    );
    let text = created.body.to_string();
    assert!(!text.contains("alice-password-1") && !text.contains("argon2"), "{text}");

    // Refusals say what is wrong, and leave nothing behind.
    let duplicate = call(&root, "POST", "/keygate/v1/users", Some(json!({"name": "alice", "role": "admin"}))).await;
    assert_eq!(error_body(&duplicate), error(409, "Conflict", "a RAM user named 'alice' already exists"));
    let bad_role = call(&root, "POST", "/keygate/v1/users", Some(json!({"name": "bob", "role": "owner"}))).await;
    assert_eq!(error_body(&bad_role), error(400, "InvalidParameter", "role must be admin, key-manager or member, got 'owner'."));
    let short_password =
        call(&root, "POST", "/keygate/v1/users", Some(json!({"name": "bob", "role": "member", "password": "short"}))).await;
    assert_eq!(error_body(&short_password), error(400, "InvalidParameter", "password must have 8 to 256 characters, got 5."));
    for body in [
        json!({"name": "bob smith", "role": "member"}),
        json!({"name": "bob", "role": "member", "passwd": "bob-password-1"}),
        json!(["bob"]),
    ] {
        let refused = call(&root, "POST", "/keygate/v1/users", Some(body.clone())).await;
        assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{body}");
    }
    let not_json = root.send("POST", "/keygate/v1/users", "{\"name\": ").await;
    assert_eq!((not_json.status, not_json.code()), (400, "InvalidParameter"));
    assert!(
        not_json.body["message"]
            .as_str()
            .unwrap()
            .starts_with("The request body is not the expected JSON {\"name\", \"role\", \"password\"?}"),
        "{}",
        not_json.body
    );
    let missing = call(&root, "GET", "/keygate/v1/users/bob", None).await;
    assert_eq!(error_body(&missing), error(404, "User.NotFound", "The RAM user does not exist."));

    // The user logs in, reads itself but nobody else, and changes its own password.
    app.create_user("kim", Role::KeyManager).await;
    assert_eq!(login_with(&app, "alice", "alice-password-1").await.status, 200);
    let mut alice = root.clone();
    alice.credentials =
        Credentials::Session(login_with(&app, "alice", "alice-password-1").await.body["token"].as_str().unwrap().to_string());
    assert_ok(&call(&alice, "GET", "/keygate/v1/users/alice", None).await);
    assert_eq!(call(&alice, "GET", "/keygate/v1/users/kim", None).await.code(), "Forbidden");
    assert_eq!(call(&alice, "PUT", "/keygate/v1/users/kim/password", Some(json!({"password": "taken-over-1"}))).await.code(), "Forbidden");
    let own = call(&alice, "PUT", "/keygate/v1/users/alice/password", Some(json!({"password": "alice-password-2"}))).await;
    assert_eq!(own.code(), "Forbidden", "setting one's own password needs the current one: {}", own.body);
    let change = json!({"currentPassword": "alice-password-1", "newPassword": "alice-password-2"});
    assert_ok(&call(&alice, "PUT", "/keygate/v1/password", Some(change)).await);
    assert_eq!(login_with(&app, "alice", "alice-password-1").await.status, 401);
    assert_eq!(login_with(&app, "alice", "alice-password-2").await.status, 200);
    assert_eq!(login_with(&app, "kim", USER_PASSWORD).await.status, 200, "kim's password is unchanged");

    // Role, disable, enable: each answer shows the user as it now is.
    let promoted = call(&root, "PUT", "/keygate/v1/users/alice/role", Some(json!({"role": "key-manager"}))).await;
    assert_eq!(promoted.body["user"]["role"], "key-manager");
    assert_eq!(call(&alice, "GET", "/keygate/v1/sessions/current", None).await.body["role"], "key-manager");
    let disabled = call(&root, "POST", "/keygate/v1/users/alice/disable", None).await;
    assert_eq!(disabled.body["user"]["status"], "disabled");
    let locked_out = call(&alice, "GET", "/keygate/v1/users/alice", None).await;
    assert_eq!(error_body(&locked_out), error(403, "Forbidden", "This RAM user is disabled."));
    assert_eq!(login_with(&app, "alice", "alice-password-2").await.status, 401);
    let enabled = call(&root, "POST", "/keygate/v1/users/alice/enable", None).await;
    assert_eq!(enabled.body["user"]["status"], "active");
    assert_ok(&call(&alice, "GET", "/keygate/v1/users/alice", None).await);

    let deleted = call(&root, "DELETE", "/keygate/v1/users/alice", None).await;
    assert_ok(&deleted);
    assert_eq!(deleted.body["deleted"], true);
    assert_eq!(call(&root, "GET", "/keygate/v1/users/alice", None).await.code(), "User.NotFound");
    assert_eq!(call(&root, "DELETE", "/keygate/v1/users/alice", None).await.code(), "User.NotFound");

    let entries = audit_entries(&root).await;
    for action in ["User.Create", "User.ChangePassword", "User.SetRole", "User.Disable", "User.Enable", "User.Delete"] {
        assert!(has_entry(&entries, action, "user:alice"), "no {action} entry");
    }
    let created_entries = entries.iter().filter(|entry| entry["action"] == "User.Create" && entry["actor"] == "root").count();
    assert_eq!(created_entries, 1, "refused requests are not audited as changes");
    let audit_text = serde_json::to_string(&entries).unwrap();
    assert!(!audit_text.contains("alice-password") && !audit_text.contains("argon2"), "{audit_text}");
}

#[tokio::test]
async fn a_disabled_users_keys_pause_and_a_deleted_users_keys_stop_for_good() {
    let app = spawn_app().await;
    app.create_user("kim", Role::KeyManager).await;
    let kim = app.login(Some("kim")).await;
    let (_, plaintext) = kim.create_all_key().await;
    let registry = app.state.store().registry().clone();
    assert!(registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_ok());

    let root = app.login(None).await;
    assert_ok(&call(&root, "POST", "/keygate/v1/users/kim/disable", None).await);
    assert!(
        registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_err(),
        "a disabled user's key still authenticates"
    );
    assert_ok(&call(&root, "POST", "/keygate/v1/users/kim/enable", None).await);
    assert!(registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_ok());

    let deleted = call(&root, "DELETE", "/keygate/v1/users/kim", None).await;
    assert_eq!(deleted.body["deleted"], true, "{}", deleted.body);
    assert!(
        registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_err(),
        "a deleted user's key still authenticates"
    );
    let whole_account = keygate_store::ListKeysQuery {
        search: None,
        account_id: 1,
        region: REGION.into(),
        visibility: keygate_core::access::KeyVisibility::WholeAccount,
        api_key_id: None,
        description: None,
        workspace_id: None,
        order_by: keygate_store::KeyOrder::ApiKeyId,
        descending: true,
        offset: 0,
        limit: 100,
    };
    assert_eq!(app.state.store().list_api_keys(&whole_account).await.unwrap().1, 0, "the key row is gone");
    let session = call(&kim, "GET", "/keygate/v1/sessions/current", None).await;
    assert_eq!((session.status, session.code()), (401, "InvalidBearerToken"));
    let entries = audit_entries(&root).await;
    assert!(entries.iter().any(|entry| entry["action"] == "User.Delete" && entry["detail"] == "deleted_keys=1"));
    assert!(!serde_json::to_string(&entries).unwrap().contains(&plaintext));
}

#[tokio::test]
async fn an_access_key_secret_is_shown_once_and_signs_until_disabled() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let created = call(&root, "POST", "/keygate/v1/access-keys", None).await;
    assert_ok(&created);
    let id = created.body["accessKeyId"].as_str().unwrap().to_string();
    let secret = created.body["accessKeySecret"].as_str().unwrap().to_string();
    assert!(id.starts_with("LTAI") && id.len() == 24, "{id}");
    assert!(secret.len() == 30 && secret.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    assert_eq!((&created.body["user"], &created.body["status"]), (&Value::Null, &json!("active")));

    let listed = call(&root, "GET", "/keygate/v1/access-keys", None).await;
    assert_ok(&listed);
    assert_eq!(names(&listed.body["accessKeys"], "accessKeyId"), [id.as_str()]);
    assert_eq!(listed.body["accessKeys"][0]["user"], Value::Null);
    assert!(!listed.body.to_string().contains(&secret), "the list shows the secret");

    // The secret signs requests, JSON bodies included.
    let mut signed = root.clone();
    signed.credentials = Credentials::AccessKey { id: id.clone(), secret: secret.clone() };
    assert_eq!(call(&signed, "GET", "/keygate/v1/sessions/current", None).await.body["role"], "account");
    let made = call(&signed, "POST", "/keygate/v1/users", Some(json!({"name": "sig", "role": "member"}))).await;
    assert_eq!(made.body["user"]["name"], "sig", "{}", made.body);

    let disabled = call(&root, "POST", &format!("/keygate/v1/access-keys/{id}/disable"), None).await;
    assert_eq!(
        disabled.body["accessKey"],
        json!({"accessKeyId": id, "user": null, "status": "disabled", "gmtCreate": created.body["gmtCreate"], "lastUsedAt": null})
    );
    let inactive = call(&signed, "GET", "/keygate/v1/sessions/current", None).await;
    assert_eq!((inactive.status, inactive.code()), (400, "InvalidAccessKeyId.Inactive"));
    let enabled = call(&root, "POST", &format!("/keygate/v1/access-keys/{id}/enable"), None).await;
    assert_eq!(enabled.body["accessKey"]["status"], "active");
    assert_ok(&call(&signed, "GET", "/keygate/v1/sessions/current", None).await);
    let deleted = call(&root, "DELETE", &format!("/keygate/v1/access-keys/{id}"), None).await;
    assert_eq!(deleted.body["deleted"], true);
    let gone = call(&signed, "GET", "/keygate/v1/sessions/current", None).await;
    assert_eq!((gone.status, gone.code()), (404, "InvalidAccessKeyId.NotFound"));
    assert_eq!(call(&root, "GET", "/keygate/v1/access-keys", None).await.body["accessKeys"], json!([]));

    let entries = audit_entries(&root).await;
    for action in ["AccessKey.Create", "AccessKey.Disable", "AccessKey.Enable", "AccessKey.Delete"] {
        assert!(has_entry(&entries, action, &format!("accessKey:{id}")), "no {action} entry");
    }
    assert!(has_entry(&entries, "User.Create", "user:sig"));
    assert!(!serde_json::to_string(&entries).unwrap().contains(&secret), "the audit log holds the secret");
}

#[tokio::test]
async fn access_keys_follow_the_owner_rule() {
    let app = spawn_app().await;
    app.create_user("adam", Role::Admin).await;
    app.create_user("kim", Role::KeyManager).await;
    app.create_user("mia", Role::Member).await;
    let (root, adam, kim, mia) =
        (app.login(None).await, app.login(Some("adam")).await, app.login(Some("kim")).await, app.login(Some("mia")).await);

    let own = call(&mia, "POST", "/keygate/v1/access-keys", Some(json!({"user": null}))).await;
    assert_eq!(own.body["user"], "mia", "{}", own.body);
    let mia_key = own.body["accessKeyId"].as_str().unwrap().to_string();
    let refusal = error(403, "Forbidden", "you may manage only your own AccessKeys");
    for other in ["kim", "ghost"] {
        let answer = call(&mia, "POST", "/keygate/v1/access-keys", Some(json!({"user": other}))).await;
        assert_eq!(error_body(&answer), refusal, "creating for {other}");
        let answer = call(&mia, "GET", &format!("/keygate/v1/access-keys?user={other}"), None).await;
        assert_eq!(error_body(&answer), refusal, "listing {other}'s");
    }

    let for_kim = call(&adam, "POST", "/keygate/v1/access-keys", Some(json!({"user": "kim"}))).await;
    assert_eq!(for_kim.body["user"], "kim", "{}", for_kim.body);
    let kim_key = for_kim.body["accessKeyId"].as_str().unwrap().to_string();
    let account_key =
        call(&root, "POST", "/keygate/v1/access-keys", Some(json!({}))).await.body["accessKeyId"].as_str().unwrap().to_string();

    let mut seen_by_adam = names(&call(&adam, "GET", "/keygate/v1/access-keys", None).await.body["accessKeys"], "accessKeyId");
    seen_by_adam.sort();
    let mut expected = vec![kim_key.clone(), mia_key.clone()];
    expected.sort();
    assert_eq!(seen_by_adam, expected, "an admin manages RAM users' keys, not the account's");
    assert_eq!(names(&call(&mia, "GET", "/keygate/v1/access-keys", None).await.body["accessKeys"], "accessKeyId"), [mia_key.as_str()]);
    assert_eq!(names(&call(&root, "GET", "/keygate/v1/access-keys?user=mia", None).await.body["accessKeys"], "user"), ["mia"]);
    assert_eq!(names(&call(&root, "GET", "/keygate/v1/access-keys", None).await.body["accessKeys"], "accessKeyId").len(), 3);
    assert_eq!(
        error_body(&call(&root, "GET", "/keygate/v1/access-keys?user=ghost", None).await),
        error(404, "User.NotFound", "The RAM user does not exist.")
    );

    assert_eq!(error_body(&call(&adam, "POST", &format!("/keygate/v1/access-keys/{account_key}/disable"), None).await), refusal);
    assert_eq!(error_body(&call(&kim, "DELETE", &format!("/keygate/v1/access-keys/{mia_key}"), None).await), refusal);
    assert_eq!(
        call(&adam, "POST", &format!("/keygate/v1/access-keys/{mia_key}/disable"), None).await.body["accessKey"]["status"],
        "disabled"
    );

    // Another account's AccessKey, and a malformed id, do not exist for this caller.
    let now = app.state.shared.clock.now_milliseconds();
    let (other, _) = app.state.store().ensure_account("other", "not-a-real-hash", now).await.unwrap();
    let other_context = AuditContext {
        account_id: other.account_id,
        actor: "other".into(),
        client_address: "test".into(),
        region: REGION.into(),
        credential: String::new(),
        at: now,
    };
    let foreign = keygate_core::ids::AccessKeyId::generate();
    app.state.store().create_access_key(&other_context, foreign.as_str(), None, &app.state.shared.master_key.encrypt("x")).await.unwrap();
    let not_found = error(404, "AccessKey.NotFound", "The AccessKey does not exist.");
    for (method, path) in [
        ("POST", format!("/keygate/v1/access-keys/{}/disable", foreign.as_str())),
        ("DELETE", format!("/keygate/v1/access-keys/{}", foreign.as_str())),
        ("POST", "/keygate/v1/access-keys/nope/enable".to_string()),
    ] {
        assert_eq!(error_body(&call(&root, method, &path, None).await), not_found, "{method} {path}");
    }
    assert!(
        app.state.store().find_access_key(foreign.as_str()).await.unwrap().is_some_and(|record| record.active),
        "the other account's key is untouched"
    );
}

/// Creates a sub-workspace through the Model Studio API; returns its id.
async fn create_workspace(client: &Client, name: &str) -> String {
    let answer = client.send("POST", &format!("/modelstudio/workspaces?workspaceName={name}"), "").await;
    assert_ok(&answer);
    answer.body["workspace"]["workspaceId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn workspace_membership_changes_take_effect_and_refusals_change_nothing() {
    let app = spawn_app().await;
    app.create_user("kim", Role::KeyManager).await;
    let (root, kim) = (app.login(None).await, app.login(Some("kim")).await);
    let team = create_workspace(&root, "team").await;
    let members_path = format!("/keygate/v1/workspaces/{team}/members");

    assert_eq!(call(&root, "GET", &members_path, None).await.body["members"], json!([]));
    assert_eq!(call(&root, "POST", &members_path, Some(json!({"user": "kim"}))).await.body["added"], true);
    assert_eq!(
        call(&root, "GET", &members_path, None).await.body["members"],
        json!([{"name": "kim", "role": "key-manager", "status": "active"}])
    );
    assert_eq!(call(&root, "GET", "/keygate/v1/users/kim", None).await.body["user"]["workspaces"], json!([team]));

    let default = app.state.store().default_workspace(1, REGION).await.unwrap().workspace_id;
    let refused = call(&root, "POST", &format!("/keygate/v1/workspaces/{default}/members"), Some(json!({"user": "kim"}))).await;
    assert_eq!(
        error_body(&refused),
        error(400, "OperationDenied", "every user is a member of the default workspace; its membership cannot change")
    );
    let refused = call(&root, "DELETE", &format!("/keygate/v1/workspaces/{default}/members/kim"), None).await;
    assert_eq!(refused.code(), "OperationDenied");
    assert_eq!(
        names(&call(&root, "GET", &format!("/keygate/v1/workspaces/{default}/members"), None).await.body["members"], "name"),
        ["kim"]
    );
    assert_eq!(
        error_body(&call(&root, "POST", &members_path, Some(json!({"user": "ghost"}))).await),
        error(404, "User.NotFound", "The RAM user does not exist.")
    );

    let workspace_not_found = error(404, "Workspace.NotFound", "The workspace does not exist in this region.");
    let us_default = app.state.store().default_workspace(1, "us-east-1").await.unwrap().workspace_id;
    for unknown in ["llm-0000000000000000", "not-a-workspace", us_default.as_str()] {
        let answer = call(&root, "POST", &format!("/keygate/v1/workspaces/{unknown}/members"), Some(json!({"user": "kim"}))).await;
        assert_eq!(error_body(&answer), workspace_not_found, "{unknown}");
    }
    assert_eq!(call(&kim, "POST", &members_path, Some(json!({"user": "kim"}))).await.code(), "Forbidden");

    // Removing a member stops its keys in that workspace.
    let created = kim.create_key(&format!("workspaceId={team}"), "").await;
    assert_ok(&created);
    let plaintext = created.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    let registry = app.state.store().registry().clone();
    assert!(registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_ok());
    assert_eq!(call(&root, "DELETE", &format!("{members_path}/kim"), None).await.body["removed"], true);
    assert!(
        registry.authenticate(&plaintext, REGION, app.state.shared.clock.now_seconds()).is_err(),
        "a removed member's key still authenticates"
    );
    assert_eq!(call(&root, "GET", &members_path, None).await.body["members"], json!([]));

    let entries = audit_entries(&root).await;
    assert!(has_entry(&entries, "Workspace.AddMember", &format!("workspace:{team}")));
    assert!(has_entry(&entries, "Workspace.RemoveMember", &format!("workspace:{team}")));
    assert!(!has_entry(&entries, "Workspace.AddMember", &format!("workspace:{default}")), "a refused change was audited");
}

#[tokio::test]
async fn applications_are_created_by_admins_and_listed_by_members() {
    let app = spawn_app().await;
    app.create_user("kim", Role::KeyManager).await;
    let (root, kim) = (app.login(None).await, app.login(Some("kim")).await);
    let team = create_workspace(&root, "apps").await;
    let path = format!("/keygate/v1/workspaces/{team}/applications");

    let created = call(&root, "POST", &path, Some(json!({"name": "  Support bot "}))).await;
    assert_ok(&created);
    let application = created.body["application"].clone();
    let app_id = application["appId"].as_str().unwrap();
    assert!(app_id.len() == 32 && app_id.bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()), "{app_id}");
    assert_eq!((&application["name"], &application["workspaceId"]), (&json!("Support bot"), &json!(team)));
    assert_eq!(call(&root, "GET", &path, None).await.body["applications"], json!([application]));

    assert_eq!(error_body(&call(&kim, "GET", &path, None).await), error(403, "Forbidden", "You are not a member of this workspace."));
    assert_ok(&call(&root, "POST", &format!("/keygate/v1/workspaces/{team}/members"), Some(json!({"user": "kim"}))).await);
    assert_eq!(call(&kim, "GET", &path, None).await.body["applications"], json!([application]));
    assert_eq!(call(&kim, "POST", &path, Some(json!({"name": "mine"}))).await.code(), "Forbidden");

    for body in [json!({"name": ""}), json!({"title": "x"}), json!("x")] {
        assert_eq!(call(&root, "POST", &path, Some(body.clone())).await.code(), "InvalidParameter", "{body}");
    }
    assert_eq!(call(&root, "GET", &path, None).await.body["applications"].as_array().unwrap().len(), 1, "refusals created nothing");
    assert_eq!(call(&root, "GET", "/keygate/v1/workspaces/llm-0000000000000000/applications", None).await.code(), "Workspace.NotFound");
    assert!(has_entry(&audit_entries(&root).await, "Application.Create", &format!("app:{app_id}")));
}

#[tokio::test]
async fn models_and_regions_describe_the_deployment() {
    let app = spawn_app().await;
    app.create_user("mia", Role::Member).await;
    let mia = app.login(Some("mia")).await;
    let models = call(&mia, "GET", "/keygate/v1/models", None).await;
    assert_ok(&models);
    let models = models.body["models"].as_array().unwrap().clone();
    assert!(models.contains(&json!({"model": "qwen-plus", "name": "Qwen-Plus", "demo": false})));
    assert!(models.iter().any(|model| model["model"] == "demo-echo" && model["demo"] == true));

    let regions = call(&mia, "GET", "/keygate/v1/regions", None).await;
    assert_ok(&regions);
    let regions = regions.body["regions"].as_array().unwrap().clone();
    assert_eq!(regions.len(), 6);
    let find = |id: &str| regions.iter().find(|region| region["regionId"] == id).cloned().unwrap();
    assert_eq!(
        find("us-east-1"),
        json!({"regionId": "us-east-1", "name": "US (Virginia)", "keyLimit": 20, "limitScope": "creator", "customPermissions": false, "disableAndReset": false, "newKeyFormat": "classic", "workspaceLimit": 20, "served": true})
    );
    assert_eq!((&find(REGION)["limitScope"], &find(REGION)["served"]), (&json!("account"), &json!(true)));
    assert_eq!(find("cn-beijing")["served"], false);
}

#[tokio::test]
async fn the_audit_log_pages_backwards_and_holds_no_secrets() {
    let app = spawn_app().await;
    app.create_user("adam", Role::Admin).await;
    app.create_user("mia", Role::Member).await;
    let (root, adam, mia) = (app.login(None).await, app.login(Some("adam")).await, app.login(Some("mia")).await);
    let canary_password = "canary-password-5f2b9";
    for name in ["u1", "u2", "u3"] {
        assert_ok(
            &call(&adam, "POST", "/keygate/v1/users", Some(json!({"name": name, "role": "member", "password": canary_password}))).await,
        );
    }
    let secret = call(&root, "POST", "/keygate/v1/access-keys", None).await.body["accessKeySecret"].as_str().unwrap().to_string();

    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            None => "/keygate/v1/audit?limit=2".to_string(),
            Some(id) => format!("/keygate/v1/audit?limit=2&before={id}"),
        };
        let page = call(&root, "GET", &path, None).await;
        assert_ok(&page);
        let text = page.body.to_string();
        assert!(!text.contains(canary_password) && !text.contains(&secret), "{text}");
        let entries = page.body["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().cloned());
        match page.body["nextBefore"].as_i64() {
            Some(next) => {
                assert_eq!(Some(next), entries.last().and_then(|entry| entry["auditId"].as_i64()));
                before = Some(next);
            }
            None => break,
        }
    }
    let ids: Vec<i64> = seen.iter().map(|entry| entry["auditId"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "not newest first without repeats: {ids:?}");
    assert_eq!(seen.len(), audit_entries(&root).await.len(), "paging saw every entry");
    let creation = seen.iter().find(|entry| entry["target"] == "user:u2").unwrap();
    assert_eq!(
        (&creation["action"], &creation["actor"], &creation["detail"]),
        (&json!("User.Create"), &json!("adam@root"), &json!("role=member"))
    );
    assert_eq!((&creation["clientAddress"], &creation["region"]), (&json!("127.0.0.1"), &json!(REGION)));
    assert!(seen.iter().any(|entry| entry["action"] == "AccessKey.Create" && entry["actor"] == "root"));

    assert_eq!(
        error_body(&call(&root, "GET", "/keygate/v1/audit?limit=0", None).await),
        error(400, "InvalidParameter", "limit must be an integer from 1 to 500, got '0'.")
    );
    assert_eq!(call(&mia, "GET", "/keygate/v1/audit", None).await.code(), "Forbidden");
}

#[tokio::test]
async fn the_openapi_document_is_public_and_everything_else_needs_credentials() {
    let app = spawn_app().await;
    let response = app.http.get(format!("http://{}/keygate/v1/openapi.json", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    assert!(document["paths"]["/keygate/v1/access-keys"]["post"].is_object());
    assert!(document["components"]["securitySchemes"]["sessionToken"]["name"] == "x-acs-bearer-token");

    let response = app.http.get(format!("http://{}/keygate/v1/users", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "MissingAuthorization");
}

#[tokio::test]
async fn an_administrators_new_password_for_a_user_ends_every_session_of_that_user() {
    let app = spawn_app().await;
    app.create_user("alice", Role::KeyManager).await;
    let root = app.login(None).await;
    let first = app.login(Some("alice")).await;
    let second = app.login(Some("alice")).await;
    let current = |client: &Client| {
        let client = client.clone();
        async move { call(&client, "GET", "/keygate/v1/sessions/current", None).await.status }
    };

    // The account sets it: every session of Alice ends; the account's own stays.
    assert_ok(&call(&root, "PUT", "/keygate/v1/users/alice/password", Some(json!({"password": "alice-newer-password"}))).await);
    assert_eq!((current(&first).await, current(&second).await), (401, 401));
    assert_eq!(current(&root).await, 200);
}
