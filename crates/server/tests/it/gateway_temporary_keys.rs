//! Temporary keys through the gateway (docs/CONTRACT.md#temporary-keys, docs/CONTRACT.md#data-plane):
//! `POST /api/v1/tokens?expire_in_seconds=N` answers `{token, expires_at}` (default 60,
//! 1 to 1800); the token works in every shape until it expires (the test clock is
//! advanced, never slept through), dies with its parent's disable, reset or delete, cannot
//! mint another, and carries its parent's model scope, workspace and IP whitelist.

use keygate_core::access::{Role, UserStatus};

use crate::gateway_calls::{
    assert_refused, assert_refused_in_every_shape, assert_served_in_every_shape, create_key, create_workspace, key_operation, mint,
    mint_token, model_not_granted, model_not_in_key_scope, Call, Shape, ACCESS_DENIED, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED,
    BAD_LIFETIME, BAD_REQUEST, CREATOR_NOT_ACTIVE, INVALID_API_KEY, INVALID_KEY, KEY_DISABLED, MODEL_NOT_ALLOWED, NO_KEY,
    TEMPORARY_CANNOT_MINT, TEMPORARY_KEY_EXPIRED,
};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn minting_answers_a_token_and_its_expiry_sixty_seconds_by_default() {
    let app = spawn_app().await;
    let (key_id, key) = create_key(&app.login(None).await, "", "").await;
    let clock = &app.state.shared.clock;
    // Start at the beginning of a minute, so that the four mints share one.
    clock.advance_seconds(61 - clock.now_seconds().rem_euclid(60));

    for (query, lifetime) in [("", 60), ("expire_in_seconds=1", 1), ("expire_in_seconds=1800", 1800), ("expire_in_seconds=300", 300)] {
        let before = clock.now_seconds();
        let reply = mint(&app.http, app.address, &key, query, &[]).await;
        let after = clock.now_seconds();
        assert_eq!(reply.status, 200, "'{query}': {}", reply.text);
        let token = reply.body["token"].as_str().expect("token");
        assert!(token.starts_with("st-") && !token.contains(&key), "'{query}': {token}");
        let expires_at = reply.body["expires_at"].as_i64().expect("expires_at in Unix seconds");
        assert!(
            (before + lifetime..=after + lifetime).contains(&expires_at),
            "'{query}': expires_at {expires_at}, minted between {before} and {after}"
        );
    }

    // Minting is audited in aggregate, never with the token: the first of the minute at
    // once, the count of the minute when it is over.
    let audit = app.state.store().list_audit(1, 100, None).await.unwrap();
    let minted: Vec<_> = audit.iter().filter(|record| record.action == "ApiKey.MintTemporary").collect();
    assert_eq!(minted.len(), 1, "{audit:?}");
    assert!(minted.iter().all(|record| record.target == format!("apiKey:{key_id}") && !record.detail.contains("st-")), "{minted:?}");
    clock.advance_seconds(60);
    app.state.shared.temporary_key_mints.write_summaries(app.state.store(), clock.now_seconds(), false).await;
    let audit = app.state.store().list_audit(1, 100, None).await.unwrap();
    let summaries: Vec<_> = audit.iter().filter(|record| record.action == "ApiKey.MintTemporary.Summary").collect();
    assert_eq!(summaries.len(), 1, "{audit:?}");
    assert!(summaries[0].detail.starts_with("minted=4 "), "{:?}", summaries[0]);
    assert_eq!(summaries[0].target, format!("apiKey:{key_id}"));
}

#[tokio::test]
async fn one_key_may_mint_only_so_many_temporary_keys_a_minute() {
    let app = spawn_app_with(|settings| settings.temporary_keys_per_minute = 3).await;
    let session = app.login(None).await;
    let (_, key) = create_key(&session, "", "").await;
    let (_, other_key) = create_key(&session, "", "").await;
    let clock = &app.state.shared.clock;
    clock.advance_seconds(61 - clock.now_seconds().rem_euclid(60));
    for _ in 0..3 {
        mint_token(&app.http, app.address, &key, "").await;
    }
    let refused = mint(&app.http, app.address, &key, "", &[]).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.body["code"], "Throttling");
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(refused.body["message"].as_str().unwrap().contains("temporary keys"), "{}", refused.text);
    // Another key is not held back, and the next minute this one may mint again.
    mint_token(&app.http, app.address, &other_key, "").await;
    clock.advance_seconds(60);
    mint_token(&app.http, app.address, &key, "").await;
}

#[tokio::test]
async fn lifetimes_outside_one_to_1800_seconds_are_refused_with_400() {
    let app = spawn_app().await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    for query in ["expire_in_seconds=0", "expire_in_seconds=1801", "expire_in_seconds=-5", "expire_in_seconds=sixty", "expire_in_seconds="]
    {
        assert_refused(&mint(&app.http, app.address, &key, query, &[]).await, Shape::Native, BAD_REQUEST, BAD_LIFETIME);
    }
    assert_refused(&mint(&app.http, app.address, "", "", &[]).await, Shape::Native, INVALID_API_KEY, NO_KEY);
}

#[tokio::test]
async fn a_token_is_served_until_it_expires_and_refused_after() {
    let app = spawn_app().await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let (token, expires_at) = mint_token(&app.http, app.address, &key, "expire_in_seconds=120").await;
    let call = Call::echo(app.address, &token);
    assert_served_in_every_shape(&app.http, &call).await;
    // Only in its parent's region.
    assert_refused_in_every_shape(&app.http, &Call::echo(app.us_address, &token), INVALID_API_KEY, INVALID_KEY).await;

    let clock = &app.state.shared.clock;
    let to_expiry = expires_at - clock.now_seconds();
    clock.advance_seconds(to_expiry - 5);
    assert_served_in_every_shape(&app.http, &call).await;
    clock.advance_seconds(5);
    assert_refused_in_every_shape(&app.http, &call, INVALID_API_KEY, TEMPORARY_KEY_EXPIRED).await;
    // The parent lives on.
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &key)).await;
}

#[tokio::test]
async fn a_token_is_refused_once_its_parent_is_disabled_reset_or_deleted() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let http = &app.http;
    let token_of = |key: String| async move { mint_token(http, app.address, &key, "expire_in_seconds=600").await.0 };

    let (disabled_id, disabled_parent) = create_key(&root, "", "").await;
    let of_disabled = Call::echo(app.address, &token_of(disabled_parent).await);
    key_operation(&root, disabled_id, "disable").await;
    assert_refused_in_every_shape(http, &of_disabled, INVALID_API_KEY, KEY_DISABLED).await;
    key_operation(&root, disabled_id, "enable").await;
    assert_served_in_every_shape(http, &of_disabled).await;

    let (reset_id, reset_parent) = create_key(&root, "", "").await;
    let of_old_secret = Call::echo(app.address, &token_of(reset_parent).await);
    assert_served_in_every_shape(http, &of_old_secret).await;
    let reset = key_operation(&root, reset_id, "reset").await;
    assert_refused_in_every_shape(http, &of_old_secret, INVALID_API_KEY, INVALID_KEY).await;
    let new_secret = reset.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    assert_served_in_every_shape(http, &Call::echo(app.address, &token_of(new_secret).await)).await;

    let (deleted_id, deleted_parent) = create_key(&root, "", "").await;
    let of_deleted = Call::echo(app.address, &token_of(deleted_parent).await);
    key_operation(&root, deleted_id, "delete").await;
    assert_refused_in_every_shape(http, &of_deleted, INVALID_API_KEY, INVALID_KEY).await;

    app.create_user("kim", Role::KeyManager).await;
    let (_, kims_key) = create_key(&app.login(Some("kim")).await, "", "").await;
    let of_kim = Call::echo(app.address, &token_of(kims_key).await);
    app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Disabled).await.unwrap();
    assert_refused_in_every_shape(http, &of_kim, INVALID_API_KEY, CREATOR_NOT_ACTIVE).await;
}

#[tokio::test]
async fn a_temporary_key_cannot_mint_another() {
    let app = spawn_app().await;
    let (_, key) = create_key(&app.login(None).await, "", "").await;
    let (token, _) = mint_token(&app.http, app.address, &key, "").await;
    for query in ["", "expire_in_seconds=60"] {
        assert_refused(&mint(&app.http, app.address, &token, query, &[]).await, Shape::Native, ACCESS_DENIED, TEMPORARY_CANNOT_MINT);
    }
}

#[tokio::test]
async fn a_token_inherits_its_parents_model_scope_workspace_and_ip_whitelist() {
    let app = spawn_app_with(|settings| settings.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let (http, here) = (&app.http, app.address);
    let root = app.login(None).await;
    let restricted = "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-embed";
    let (_, parent) = create_key(&root, "", restricted).await;

    // Minting is itself a call with the parent: from outside the whitelist it is refused.
    assert_refused(&mint(http, here, &parent, "", &[]).await, Shape::Native, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED);
    let inside = [("X-Forwarded-For", "10.1.2.3")];
    let minted = mint(http, here, &parent, "expire_in_seconds=600", &inside).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap();

    let embed = Call::model(here, token, "demo-embed");
    assert_served_in_every_shape(http, &embed.clone().with_header("X-Forwarded-For", "10.1.2.3")).await;
    assert_refused_in_every_shape(http, &embed, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED).await;
    assert_refused_in_every_shape(
        http,
        &embed.clone().with_header("X-Forwarded-For", "192.0.2.1"),
        ADDRESS_NOT_ALLOWED,
        ADDRESS_NOT_WHITELISTED,
    )
    .await;
    let echo = Call::echo(here, token).with_header("X-Forwarded-For", "10.1.2.3");
    assert_refused_in_every_shape(http, &echo, MODEL_NOT_ALLOWED, &model_not_in_key_scope("demo-echo")).await;

    // A key of a sub-workspace without grants: its token may call no model either.
    let workspace = create_workspace(&root, "no-grants").await;
    let (_, in_workspace) = create_key(&root, &format!("workspaceId={workspace}"), "").await;
    let (workspace_token, _) = mint_token(http, here, &in_workspace, "").await;
    let not_granted = model_not_granted("demo-echo", &workspace);
    assert_refused_in_every_shape(http, &Call::echo(here, &workspace_token), MODEL_NOT_ALLOWED, &not_granted).await;
}
