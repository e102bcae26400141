//! Revocation through the gateway (docs/CONTRACT.md#revocation-bound): a key disabled, reset or
//! deleted through the management API, or whose RAM user is disabled, is refused by the
//! very next model call, in every protocol shape, with nothing to wait for.

use keygate_core::access::{Role, UserStatus};

use crate::gateway_calls::{
    assert_refused_in_every_shape, assert_served_in_every_shape, create_key, key_operation, Call, CREATOR_NOT_ACTIVE, INVALID_API_KEY,
    INVALID_KEY, KEY_DISABLED,
};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_disabled_key_is_refused_by_the_next_call_and_served_again_once_enabled() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (key_id, key) = create_key(&root, "", "").await;
    let call = Call::echo(app.address, &key);
    assert_served_in_every_shape(&app.http, &call).await;

    key_operation(&root, key_id, "disable").await;
    assert_refused_in_every_shape(&app.http, &call, INVALID_API_KEY, KEY_DISABLED).await;

    key_operation(&root, key_id, "enable").await;
    assert_served_in_every_shape(&app.http, &call).await;
}

#[tokio::test]
async fn after_a_reset_the_old_secret_is_refused_and_the_new_one_served() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (key_id, old_secret) = create_key(&root, "", "").await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &old_secret)).await;

    let reset = key_operation(&root, key_id, "reset").await;
    let new_secret = reset.body["apiKey"]["apiKeyValue"].as_str().expect("the new secret, shown once").to_string();
    assert_ne!(new_secret, old_secret);
    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &old_secret), INVALID_API_KEY, INVALID_KEY).await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &new_secret)).await;
}

#[tokio::test]
async fn a_deleted_key_is_refused_by_the_next_call() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (key_id, key) = create_key(&root, "", "").await;
    let (_, other_key) = create_key(&root, "", "").await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &key)).await;

    key_operation(&root, key_id, "delete").await;
    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &key), INVALID_API_KEY, INVALID_KEY).await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &other_key)).await;
}

#[tokio::test]
async fn keys_of_a_disabled_ram_user_are_refused_until_it_is_enabled_and_gone_once_it_is_deleted() {
    let app = spawn_app().await;
    app.create_user("kim", Role::KeyManager).await;
    let (_, kims_key) = create_key(&app.login(Some("kim")).await, "", "").await;
    let (_, roots_key) = create_key(&app.login(None).await, "", "").await;
    let kims_call = Call::echo(app.address, &kims_key);
    assert_served_in_every_shape(&app.http, &kims_call).await;

    let store = app.state.store();
    store.set_user_status(&app.root_audit(), "kim", UserStatus::Disabled).await.unwrap();
    assert_refused_in_every_shape(&app.http, &kims_call, INVALID_API_KEY, CREATOR_NOT_ACTIVE).await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &roots_key)).await;

    store.set_user_status(&app.root_audit(), "kim", UserStatus::Active).await.unwrap();
    assert_served_in_every_shape(&app.http, &kims_call).await;

    store.delete_user(&app.root_audit(), "kim").await.unwrap();
    assert_refused_in_every_shape(&app.http, &kims_call, INVALID_API_KEY, INVALID_KEY).await;
}
