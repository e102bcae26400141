//! docs/CONTRACT.md#revocation-bound on one node: a management change is reflected in the registry's
//! `authenticate` as soon as the call that makes it returns, with no cache to wait for.

use keygate_core::access::{Role, UserStatus};
use keygate_core::verification::AuthenticationFailure;

use crate::expectations::{assert_success, authenticate};
use crate::helpers::{Client, TestApp};

const SINGAPORE: &str = "ap-southeast-1";

/// The app, a session client of the account, and one key of the account that works.
async fn app_with_a_working_key(app: TestApp) -> (TestApp, Client, i64, String) {
    let root = app.login(None).await;
    let (key_id, plaintext) = root.create_all_key().await;
    assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Ok(key_id));
    (app, root, key_id, plaintext)
}

/// A key-manager `kim` and one working key it created.
async fn app_with_a_ram_users_key(app: TestApp) -> (TestApp, String, i64) {
    app.create_user("kim", Role::KeyManager).await;
    let (key_id, plaintext) = app.login(Some("kim")).await.create_all_key().await;
    assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Ok(key_id));
    (app, plaintext, key_id)
}

on_both_stores! {
    async fn disabling_a_key_refuses_it_as_soon_as_the_call_returns(app: TestApp) {
        let (app, root, key_id, plaintext) = app_with_a_working_key(app).await;
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/disable"), "").await);
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::Disabled));
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/enable"), "").await);
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Ok(key_id));
    }

    async fn deleting_a_key_refuses_it_as_soon_as_the_call_returns(app: TestApp) {
        let (app, root, key_id, plaintext) = app_with_a_working_key(app).await;
        assert_success(&root.send("DELETE", &format!("/modelstudio/apikeys/{key_id}"), "").await);
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(app.state.store().registry().lookup_by_id(key_id).is_none());
    }

    async fn resetting_a_key_refuses_the_old_secret_as_soon_as_the_call_returns(app: TestApp) {
        let (app, root, key_id, old_plaintext) = app_with_a_working_key(app).await;
        let reset = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/reset"), "").await;
        assert_success(&reset);
        let new_plaintext = reset.body["apiKey"]["apiKeyValue"].as_str().expect("new plaintext");
        assert_eq!(authenticate(&app, &old_plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert_eq!(authenticate(&app, new_plaintext, SINGAPORE), Ok(key_id));
    }

    async fn disabling_its_ram_user_refuses_the_key_as_soon_as_the_call_returns(app: TestApp) {
        let (app, plaintext, key_id) = app_with_a_ram_users_key(app).await;
        app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Disabled).await.unwrap();
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::CreatorNotActive));
        app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Active).await.unwrap();
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Ok(key_id));
    }

    async fn deleting_its_ram_user_refuses_the_key_as_soon_as_the_call_returns(app: TestApp) {
        let (app, plaintext, key_id) = app_with_a_ram_users_key(app).await;
        app.state.store().delete_user(&app.root_audit(), "kim").await.unwrap();
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(app.state.store().registry().lookup_by_id(key_id).is_none());
    }
}
