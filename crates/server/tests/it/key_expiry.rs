//! docs/CONTRACT.md#expiry-and-grace-periods through the APIs and the gateway, on both
//! stores, with the test clock (advanced, never slept through): a key's expiry set at create
//! and changed at edit, shown by GetApiKey and ListApiKeys, refused in every protocol and at
//! `/auth/verify` once past; temporary keys capped by their parent's expiry; a reset's grace
//! period, in which the old secret works beside the new one, ended by the clock or on
//! demand; the audit rows; and the 400s.

use keygate_core::civil_time::format_utc_timestamp;
use serde_json::Value;

use crate::expectations::{assert_error, key_count};
use crate::gateway_calls::{
    assert_management_success, assert_refused, assert_refused_in_every_shape, assert_served_in_every_shape, create_key, mint, mint_token,
    Call, Reply, Shape, INVALID_API_KEY, INVALID_KEY, KEY_EXPIRED, TEMPORARY_KEY_EXPIRED,
};
use crate::helpers::{Client, TestApp};
use keygate_server::settings::Settings;

const HOUR: i64 = 3600;

fn now(app: &TestApp) -> i64 {
    app.state.shared.clock.now_seconds()
}

async fn get_key(client: &Client, key_id: i64) -> Value {
    let answer = client.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    assert_management_success(&answer);
    answer.body["apiKey"].clone()
}

async fn listed_key(client: &Client, key_id: i64) -> Value {
    let answer = client.get(&format!("/modelstudio/apikeys?apiKeyId={key_id}")).await;
    assert_management_success(&answer);
    answer.body["apiKeys"][0].clone()
}

/// `/auth/verify` with `key`.
async fn verify(app: &TestApp, key: &str) -> Reply {
    Reply::read(app.http.get(format!("http://{}/auth/verify", app.address)).bearer_auth(key).send().await.unwrap()).await
}

async fn audit_details(app: &TestApp, action: &str) -> Vec<String> {
    let audit = app.state.store().list_audit(1, 100, None).await.unwrap();
    audit.into_iter().filter(|record| record.action == action).map(|record| record.detail).collect()
}

async fn reset(client: &Client, key_id: i64, grace_seconds: i64) -> String {
    let answer = client.send("PUT", &format!("/modelstudio/apikeys/{key_id}/reset?keygateGraceSeconds={grace_seconds}"), "").await;
    assert_management_success(&answer);
    answer.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string()
}

/// The test clock jumps hours ahead, past `max_staleness_seconds`: a PostgreSQL node would
/// fail closed (its feed last confirmed "hours ago"), so these tests allow a long while.
fn patient_feed(settings: &mut Settings) {
    settings.max_staleness_seconds = 7 * 24 * HOUR as u64;
}

on_both_stores! {
    settings: patient_feed;
    async fn an_expired_key_is_refused_in_every_protocol_and_at_verify_by_the_clock_alone(app: TestApp) {
        let root = app.login(None).await;
        let expires_at = now(&app) + HOUR;
        let created = root.create_key(&format!("keygateExpiresAt={expires_at}"), "").await;
        assert_management_success(&created);
        assert_eq!(created.body["apiKey"]["keygateExpiresAt"], expires_at * 1000, "{}", created.body);
        let (key_id, key) = (created.body["apiKey"]["apiKeyId"].as_i64().unwrap(), created.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string());
        let viewed = get_key(&root, key_id).await;
        assert_eq!((&viewed["keygateExpiresAt"], &viewed["keygateExpired"]), (&Value::from(expires_at * 1000), &Value::from(false)));
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &key)).await;
        assert_eq!(verify(&app, &key).await.status, 200);
        let feed_version = app.state.store().registry().applied_version();

        app.state.shared.clock.advance_seconds(HOUR);
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &key), INVALID_API_KEY, KEY_EXPIRED).await;
        assert_refused(&verify(&app, &key).await, Shape::Native, INVALID_API_KEY, KEY_EXPIRED);
        assert_refused(&mint(&app.http, app.address, &key, "", &[]).await, Shape::Native, INVALID_API_KEY, KEY_EXPIRED);
        assert_eq!(app.state.store().registry().applied_version(), feed_version, "no change-feed event was needed");
        assert_eq!(get_key(&root, key_id).await["keygateExpired"], true);
        assert_eq!(listed_key(&root, key_id).await["keygateExpired"], true);
        assert!(audit_details(&app, "ApiKey.Create").await[0].ends_with(&format!(" expires_at={expires_at}")));
    }

    async fn an_expiry_is_changed_or_removed_at_edit_and_a_key_without_one_never_expires(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, key) = create_key(&root, "", "").await;
        assert_eq!(get_key(&root, key_id).await["keygateExpiresAt"], Value::Null);
        let expires_at = now(&app) + 2 * HOUR;
        let edited = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?keygateExpiresAt={}", format_utc_timestamp(expires_at)), "").await;
        assert_management_success(&edited);
        assert_eq!(get_key(&root, key_id).await["keygateExpiresAt"], expires_at * 1000);
        // A description-only edit keeps it.
        assert_management_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=renamed"), "").await);
        assert_eq!(listed_key(&root, key_id).await["keygateExpiresAt"], expires_at * 1000);
        app.state.shared.clock.advance_seconds(2 * HOUR);
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &key), INVALID_API_KEY, KEY_EXPIRED).await;
        // `never` brings an expired key back.
        assert_management_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?keygateExpiresAt=never"), "").await);
        let viewed = get_key(&root, key_id).await;
        assert_eq!((&viewed["keygateExpiresAt"], &viewed["keygateExpired"]), (&Value::Null, &Value::from(false)));
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &key)).await;
        let details = audit_details(&app, "ApiKey.Update").await;
        assert_eq!(details, ["auth=All expires_at=never".to_string(), "auth=All".into(), format!("auth=All expires_at={expires_at}")]);
    }

    async fn past_or_malformed_expiries_and_grace_periods_are_refused_with_400(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, _) = create_key(&root, "", "").await;
        let past = now(&app);
        let in_the_past = format!("keygateExpiresAt must be a time in the future, got '{past}'.");
        assert_error(&root.create_key(&format!("keygateExpiresAt={past}"), "").await, 400, "InvalidParameter", &in_the_past);
        let malformed = "keygateExpiresAt must be an RFC 3339 time (2027-01-31T00:00:00Z), Unix seconds, or never, got 'tomorrow'.";
        assert_error(&root.create_key("keygateExpiresAt=tomorrow", "").await, 400, "InvalidParameter", malformed);
        let edit = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?keygateExpiresAt={past}"), "").await;
        assert_error(&edit, 400, "InvalidParameter", &in_the_past);
        for grace in ["86401", "-1", "soon"] {
            let answer = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}/reset?keygateGraceSeconds={grace}"), "").await;
            assert_error(&answer, 400, "InvalidParameter", &format!("keygateGraceSeconds must be an integer from 0 to 86400, got '{grace}'."));
        }
        let no_grace = root.send("POST", &format!("/keygate/v1/keys/{key_id}/end-grace"), "").await;
        assert_error(&no_grace, 400, "InvalidParameter", &format!("API key {key_id} has no old secret in a grace period."));
        // A key the caller may not see is 404 before its input is judged.
        let unseen = root.send("PUT", "/modelstudio/apikeys/999999/reset?keygateGraceSeconds=soon", "").await;
        assert_eq!((unseen.status, unseen.code()), (404, "ApiKey.NotFound"));
        assert_eq!(key_count(&root).await, 1, "nothing was created");
    }

    async fn a_temporary_key_never_outlives_its_parent(app: TestApp) {
        let root = app.login(None).await;
        let parent_expiry = now(&app) + 100;
        let (key_id, key) = create_key(&root, &format!("keygateExpiresAt={parent_expiry}"), "").await;
        let (token, expires_at) = mint_token(&app.http, app.address, &key, "expire_in_seconds=1800").await;
        assert_eq!(expires_at, parent_expiry, "capped at mint time");
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &token)).await;
        // The parent's expiry moved earlier: the token dies with it.
        let sooner = now(&app) + 10;
        assert_management_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?keygateExpiresAt={sooner}"), "").await);
        app.state.shared.clock.advance_seconds(10);
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &token), INVALID_API_KEY, KEY_EXPIRED).await;
    }

    async fn after_a_reset_with_a_grace_period_both_secrets_work_until_it_ends(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, old) = create_key(&root, "", "").await;
        let (old_token, _) = mint_token(&app.http, app.address, &old, "expire_in_seconds=1800").await;
        let reset_at = now(&app);
        let new = reset(&root, key_id, 300).await;
        assert_eq!(get_key(&root, key_id).await["keygateGraceEndsAt"], (reset_at + 300) * 1000);
        for key in [&old, &new, &old_token] {
            assert_served_in_every_shape(&app.http, &Call::echo(app.address, key)).await;
        }
        assert_eq!(verify(&app, &old).await.status, 200);
        // A temporary key minted from the old secret ends with its grace period.
        let (from_old, expires_at) = mint_token(&app.http, app.address, &old, "expire_in_seconds=1800").await;
        assert_eq!(expires_at, reset_at + 300);

        app.state.shared.clock.advance_seconds(300);
        for key in [&old, &old_token] {
            assert_refused_in_every_shape(&app.http, &Call::echo(app.address, key), INVALID_API_KEY, INVALID_KEY).await;
        }
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &from_old), INVALID_API_KEY, TEMPORARY_KEY_EXPIRED).await;
        assert_refused(&verify(&app, &old).await, Shape::Native, INVALID_API_KEY, INVALID_KEY);
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &new)).await;
        assert_eq!(get_key(&root, key_id).await["keygateGraceEndsAt"], Value::Null);
        let details = audit_details(&app, "ApiKey.Reset").await;
        assert_eq!(details.len(), 1);
        assert!(details[0].ends_with(&format!(" grace_ends_at={}", reset_at + 300)) && !details[0].contains(&new), "{details:?}");
    }

    async fn ending_the_grace_period_refuses_the_old_secret_at_once(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, old) = create_key(&root, "", "").await;
        let new = reset(&root, key_id, 86_400).await;
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &old)).await;
        let ended = root.send("POST", &format!("/keygate/v1/keys/{key_id}/end-grace"), "").await;
        assert_management_success(&ended);
        assert_eq!(ended.body["apiKeyId"], key_id);
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &old), INVALID_API_KEY, INVALID_KEY).await;
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &new)).await;
        assert_eq!(get_key(&root, key_id).await["keygateGraceEndsAt"], Value::Null);
        assert_eq!(audit_details(&app, "ApiKey.EndGrace").await, [String::new()]);
        // A reset without a grace period keeps Model Studio's behaviour.
        let newest = reset(&root, key_id, 0).await;
        assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &new), INVALID_API_KEY, INVALID_KEY).await;
        assert_served_in_every_shape(&app.http, &Call::echo(app.address, &newest)).await;
    }
}
