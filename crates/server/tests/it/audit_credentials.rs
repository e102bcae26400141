//! What each audit row says about the credential a change was made through, on both
//! stores: the AccessKey id for a signed request (so that an admin acting through an
//! AccessKey it made for someone else can be traced), the session for a login and for
//! everything done in that session (API and console); and that `GET /keygate/v1/audit`,
//! its OpenAPI document and the console's audit page all show it.

use keygate_core::access::Role;
use keygate_server::secrets::{session_label, session_token_digest};
use serde_json::{json, Value};

use crate::console::sign_in;
use crate::helpers::{Client, Credentials};

/// `session:<label>` of a session token, as the audit log names it.
fn session_credential(token: &str) -> String {
    format!("session:{}", session_label(&session_token_digest(token)))
}

fn token_of(client: &Client) -> &str {
    let Credentials::Session(token) = &client.credentials else { panic!("a session client") };
    token
}

/// Every audit entry of the account through `GET /keygate/v1/audit`, newest first.
async fn audit_entries(root: &Client) -> Vec<Value> {
    let answer = root.get("/keygate/v1/audit?limit=500").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["entries"].as_array().expect("entries").clone()
}

/// The one entry with this action and target.
#[track_caller]
fn entry<'a>(entries: &'a [Value], action: &str, target: &str) -> &'a Value {
    let matching: Vec<&Value> = entries.iter().filter(|entry| entry["action"] == action && entry["target"] == target).collect();
    assert_eq!(matching.len(), 1, "{action} {target} in {entries:#?}");
    matching[0]
}

/// (actor, credential) of an entry.
fn who(entry: &Value) -> (&str, &str) {
    (entry["actor"].as_str().unwrap_or("<none>"), entry["credential"].as_str().unwrap_or("<none>"))
}

on_both_stores! {
    async fn an_admin_acting_through_an_access_key_it_made_for_another_user_is_audited_as_that_user_with_the_access_key(app: TestApp) {
        app.create_user("ada", Role::Admin).await;
        app.create_user("kim", Role::KeyManager).await;
        let root = app.login(None).await;
        let ada = app.login(Some("ada")).await;

        let made = ada.send_json("POST", "/keygate/v1/access-keys", &json!({"user": "kim"})).await;
        assert_eq!(made.status, 200, "{}", made.body);
        let access_key_id = made.body["accessKeyId"].as_str().unwrap().to_string();
        let secret = made.body["accessKeySecret"].as_str().unwrap().to_string();
        // ada keeps the secret and signs with it.
        let mut through = ada.clone();
        through.credentials = Credentials::AccessKey { id: access_key_id.clone(), secret };
        let (key_id, _) = through.create_all_key().await;

        let entries = audit_entries(&root).await;
        let creation = entry(&entries, "ApiKey.Create", &format!("apiKey:{key_id}"));
        assert_eq!(who(creation), ("kim@root", format!("accessKey:{access_key_id}").as_str()), "{creation}");
        // ... and the AccessKey's own row says who made it, in which session.
        let made_row = entry(&entries, "AccessKey.Create", &format!("accessKey:{access_key_id}"));
        assert_eq!(who(made_row), ("ada@root", session_credential(token_of(&ada)).as_str()), "{made_row}");
        let kim_id = app.state.store().find_user(1, "kim").await.unwrap().user_id;
        assert_eq!(made_row["detail"], format!("user_id={kim_id}"), "{made_row}");
        // Every entry has the field; those written through `TestApp::root_audit` (directly on
        // the store) have it empty.
        assert!(entries.iter().all(|entry| entry["credential"].is_string()), "{entries:#?}");
        let direct = entry(&entries, "User.Create", "user:kim");
        assert_eq!(who(direct), ("test", ""));
    }

    async fn logins_and_what_each_session_does_carry_that_session(app: TestApp) {
        app.create_user("kim", Role::KeyManager).await;
        let root = app.login(None).await;
        let kim = app.login(Some("kim")).await;
        let (key_id, _) = kim.create_all_key().await;
        let (console, _) = sign_in(&app, Some("kim")).await;
        let fields = [("permission", "All"), ("description", "from the console")];
        let created = console.submit("/console/keys?region=ap-southeast-1", &fields).await;
        assert_eq!(created.status(), 200);

        let entries = audit_entries(&root).await;
        let kim_api = session_credential(token_of(&kim));
        let kim_console = session_credential(&console.cookie);
        let root_api = session_credential(token_of(&root));
        let logins: Vec<(&str, &str)> = entries.iter().filter(|entry| entry["action"] == "Session.Login").map(who).rev().collect();
        assert_eq!(logins, [("root", root_api.as_str()), ("kim@root", kim_api.as_str()), ("kim@root", kim_console.as_str())]);
        assert_eq!(who(entry(&entries, "ApiKey.Create", &format!("apiKey:{key_id}"))), ("kim@root", kim_api.as_str()));
        let console_key = entries
            .iter()
            .find(|entry| entry["action"] == "ApiKey.Create" && entry["target"] != json!(format!("apiKey:{key_id}")))
            .expect("the console's key");
        assert_eq!(who(console_key), ("kim@root", kim_console.as_str()));
    }

    async fn the_credential_is_in_the_openapi_document_and_on_the_consoles_audit_page(app: TestApp) {
        let document = app.http.get(format!("http://{}/keygate/v1/openapi.json", app.address)).send().await.unwrap();
        let document: Value = document.json().await.unwrap();
        let schema = &document["components"]["schemas"]["AuditEntry"];
        assert!(schema["required"].as_array().unwrap().contains(&json!("credential")), "{schema}");
        assert_eq!(schema["properties"]["credential"]["type"], "string", "{schema}");

        let signed = app.access_key_client_at(app.address, None).await;
        let Credentials::AccessKey { id, .. } = &signed.credentials else { unreachable!() };
        signed.create_all_key().await;
        let (console, _) = sign_in(&app, None).await;
        let page = console.get("/console/audit?region=ap-southeast-1").await.text().await.unwrap();
        assert!(page.contains("<th scope=\"col\">Credential</th>"), "no Credential column");
        let signed_cell = format!("<td class=\"credential\" data-label=\"Credential\"><span class=\"word\">accessKey:{id}</span></td>");
        assert!(page.contains(&signed_cell), "the signed change's credential is not shown");
        let login = session_credential(&console.cookie);
        assert!(page.contains(&format!("<td class=\"credential\" data-label=\"Credential\"><span class=\"word\">{login}</span></td>")), "the console login's credential is not shown");
    }
}
