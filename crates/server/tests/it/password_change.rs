//! Changing one's own password (`PUT /keygate/v1/password` and the console's Password
//! page), for the account and a RAM user, on both stores: the current password is
//! required and a wrong one is refused like a failed login and counted as one; the new one
//! follows the rules of creation; every other session of the caller ends (API session
//! tokens and console cookies), the one that made the change stays; the audit row names
//! the caller and never a password.

use keygate_core::access::Role;
use keygate_server::settings::Settings;
use reqwest::header::LOCATION;
use serde_json::{json, Value};

use crate::console::sign_in;
use crate::helpers::{Answer, Client, TestApp, ROOT_PASSWORD, USER_PASSWORD};
use crate::keygate_api::{error, error_body};

const PASSWORD_PATH: &str = "/keygate/v1/password";

async fn change(client: &Client, current: &str, new: &str) -> Answer {
    client.send_json("PUT", PASSWORD_PATH, &json!({"currentPassword": current, "newPassword": new})).await
}

/// The status `GET /keygate/v1/sessions/current` answers the client's credentials.
async fn whoami_status(client: &Client) -> u16 {
    client.send("GET", "/keygate/v1/sessions/current", "").await.status
}

async fn login_status(app: &TestApp, user: Option<&str>, password: &str) -> u16 {
    let body = json!({"account": "root", "user": user, "password": password});
    app.http.post(format!("http://{}/keygate/v1/sessions", app.address)).json(&body).send().await.unwrap().status().as_u16()
}

/// The audit rows of `action`, newest first, as the account reads them.
async fn audit_rows(root: &Client, action: &str) -> Vec<Value> {
    let answer = root.send("GET", "/keygate/v1/audit?limit=500", "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let entries = answer.body["entries"].as_array().unwrap();
    let text = serde_json::to_string(entries).unwrap();
    for secret in [ROOT_PASSWORD, USER_PASSWORD, "root-new-password", "alice-new-password", "argon2"] {
        assert!(!text.contains(secret), "the audit log holds {secret}");
    }
    entries.iter().filter(|entry| entry["action"] == action).cloned().collect()
}

fn few_failed_logins(settings: &mut Settings) {
    settings.failed_logins_per_minute = 3;
}

on_both_stores! {
    async fn the_account_changes_its_own_password_and_its_other_sessions_end(app: TestApp) {
        app.create_user("alice", Role::Admin).await;
        let (root, other_root, alice) = (app.login(None).await, app.login(None).await, app.login(Some("alice")).await);
        let (console, _) = sign_in(&app, None).await;

        // Refusals change nothing and say what is wrong, in keygate's envelope.
        let wrong = change(&root, "not-the-password", "root-new-password").await;
        assert_eq!(error_body(&wrong), error(403, "IncorrectPassword", "The current password is wrong; the password was not changed."));
        let short = change(&root, ROOT_PASSWORD, "short").await;
        assert_eq!(error_body(&short), error(400, "InvalidParameter", "password must have 8 to 256 characters, got 5."));
        let unknown_field = root.send_json("PUT", PASSWORD_PATH, &json!({"currentPassword": ROOT_PASSWORD, "password": "x"})).await;
        assert_eq!((unknown_field.status, unknown_field.code()), (400, "InvalidParameter"), "{}", unknown_field.body);
        assert_eq!(whoami_status(&other_root).await, 200);

        // The change: the session that made it stays; the account's other API session and
        // its console cookie end; a RAM user's session is not the account's.
        let changed = change(&root, ROOT_PASSWORD, "root-new-password").await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert_eq!((&changed.body["changed"], &changed.body["sessionsEnded"]), (&json!(true), &json!(2)), "{}", changed.body);
        assert_eq!(whoami_status(&root).await, 200);
        assert_eq!(whoami_status(&other_root).await, 401, "a session from before the change outlived it");
        let page = console.get("/console/keys").await;
        assert_eq!((page.status().as_u16(), page.headers().get(LOCATION).unwrap().to_str().unwrap()), (303, "/console/login"));
        assert_eq!(whoami_status(&alice).await, 200);

        assert_eq!(login_status(&app, None, ROOT_PASSWORD).await, 401);
        assert_eq!(login_status(&app, None, "root-new-password").await, 200);
        let rows = audit_rows(&root, "Account.ChangePassword").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((&rows[0]["actor"], &rows[0]["target"], &rows[0]["detail"]), (&json!("root"), &json!("account:root"), &json!("sessions_ended=2")));
    }

    async fn a_ram_user_changes_its_own_password_in_the_console_and_its_other_sessions_end(app: TestApp) {
        app.create_user("alice", Role::Member).await;
        let (console, _) = sign_in(&app, Some("alice")).await;
        let (other_console, _) = sign_in(&app, Some("alice")).await;
        let api = app.login(Some("alice")).await;

        // Every page links to the Password page, for a member too.
        let keys_page = console.get("/console/keys?region=ap-southeast-1").await.text().await.unwrap();
        assert!(keys_page.contains(r#"href="/console/password?region=ap-southeast-1""#), "{keys_page}");
        let form = console.get("/console/password?region=ap-southeast-1").await;
        assert_eq!(form.status(), 200);
        assert!(form.text().await.unwrap().contains(r#"name="current_password""#));

        let fields = |current: &'static str, new: &'static str, repeat: &'static str| {
            [("current_password", current), ("new_password", new), ("repeat_password", repeat)]
        };
        let wrong = console.submit("/console/password", &fields("wrong-password", "alice-new-password", "alice-new-password")).await;
        assert_eq!(wrong.status(), 403);
        assert!(wrong.text().await.unwrap().contains("The current password is wrong; the password was not changed."));
        let differ = console.submit("/console/password", &fields(USER_PASSWORD, "alice-new-password", "alice-new-passw0rd")).await;
        assert_eq!(differ.status(), 400);
        assert!(differ.text().await.unwrap().contains("The two new passwords differ."));
        let short = console.submit("/console/password", &fields(USER_PASSWORD, "short", "short")).await;
        assert_eq!(short.status(), 400);
        assert!(short.text().await.unwrap().contains("Password must have 8 to 256 characters, got 5."));
        assert_eq!(whoami_status(&api).await, 200, "a refused change ends nothing");

        let changed = console.submit("/console/password", &fields(USER_PASSWORD, "alice-new-password", "alice-new-password")).await;
        assert_eq!(changed.status(), 303);
        let location = changed.headers().get(LOCATION).unwrap().to_str().unwrap().to_string();
        assert_eq!(location, "/console/password?region=ap-southeast-1&done=changed");
        let notice = console.get(&location).await.text().await.unwrap();
        assert!(notice.contains("Your password was changed."), "{notice}");

        assert_eq!(whoami_status(&api).await, 401, "the API session from before the change outlived it");
        let refused = other_console.get("/console/keys").await;
        assert_eq!((refused.status().as_u16(), refused.headers().get(LOCATION).unwrap().to_str().unwrap()), (303, "/console/login"));
        assert_eq!(login_status(&app, Some("alice"), USER_PASSWORD).await, 401);
        assert_eq!(login_status(&app, Some("alice"), "alice-new-password").await, 200);

        let rows = audit_rows(&app.login(None).await, "User.ChangePassword").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (&rows[0]["actor"], &rows[0]["target"], &rows[0]["detail"]),
            (&json!("alice@root"), &json!("user:alice"), &json!("sessions_ended=2"))
        );
    }
}

on_both_stores! {
    settings: few_failed_logins;

    async fn a_wrong_current_password_counts_as_a_failed_login(app: TestApp) {
        // Failures are counted in fixed one-minute windows: a stopped clock keeps the three
        // failures and the throttled attempt in one (the test failed now and then when a
        // minute ended between them).
        app.state.shared.clock.freeze();
        app.create_user("alice", Role::KeyManager).await;
        let alice = app.login(Some("alice")).await;
        for _ in 0..3 {
            assert_eq!(change(&alice, "a-wrong-guess", "alice-new-password").await.code(), "IncorrectPassword");
        }
        // The address is now throttled, for a password change with the right password and
        // for a login alike, and nothing changed.
        let throttled = change(&alice, USER_PASSWORD, "alice-new-password").await;
        assert_eq!((throttled.status, throttled.code()), (429, "Throttling"), "{}", throttled.body);
        assert_eq!(login_status(&app, Some("alice"), USER_PASSWORD).await, 429);
        assert_eq!(whoami_status(&alice).await, 200);
        assert!(audit_rows(&app.access_key_client_at(app.address, None).await, "User.ChangePassword").await.is_empty());
    }
}
