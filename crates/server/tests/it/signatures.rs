//! ACS3-HMAC-SHA256 and session authentication of the management plane, end to end.

use keygate_core::civil_time::format_utc_timestamp;
use serde_json::json;

use crate::helpers::{spawn_app, Credentials};

#[tokio::test]
async fn a_signed_request_is_accepted_and_a_wrong_secret_refused() {
    let app = spawn_app().await;
    let client = app.access_key_client_at(app.address, None).await;
    let answer = client.get("/modelstudio/apikeys?maxResults=5").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["success"], json!(true));

    let mut wrong = client.clone();
    if let Credentials::AccessKey { secret, .. } = &mut wrong.credentials {
        secret.push('x');
    }
    let refused = wrong.get("/modelstudio/apikeys").await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.code(), "SignatureDoesNotMatch");
    assert_eq!(refused.body["success"], json!(false));
    assert!(refused.body["requestId"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn a_replayed_nonce_and_a_stale_date_are_refused() {
    let app = spawn_app().await;
    let client = app.access_key_client_at(app.address, None).await;
    let now = keygate_server::clock::now_millis() / 1000;
    let date = format_utc_timestamp(now);
    let first = client.send_signed_at("GET", "/modelstudio/workspaces", "", &date, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = client.send_signed_at("GET", "/modelstudio/workspaces", "", &date, "0123456789abcdef0123456789abcdef").await;
    assert_eq!((replay.status, replay.code()), (400, "SignatureNonceUsed"));
    let stale = client
        .send_signed_at("GET", "/modelstudio/workspaces", "", &format_utc_timestamp(now - 16 * 60), "fedcba9876543210fedcba9876543210")
        .await;
    assert_eq!((stale.status, stale.code()), (400, "InvalidTimeStamp.Expired"));
    let within_window = client
        .send_signed_at("GET", "/modelstudio/workspaces", "", &format_utc_timestamp(now - 14 * 60), "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb")
        .await;
    assert_eq!(within_window.status, 200);
}

#[tokio::test]
async fn an_unknown_access_key_and_a_bad_session_are_refused() {
    let app = spawn_app().await;
    let mut client = app.access_key_client_at(app.address, None).await;
    client.credentials = Credentials::AccessKey { id: "LTAI00000000000000000000".into(), secret: "x".into() };
    let answer = client.get("/modelstudio/apikeys").await;
    assert_eq!((answer.status, answer.code()), (404, "InvalidAccessKeyId.NotFound"));
    client.credentials = Credentials::Session("kgs-not-a-session".into());
    let answer = client.get("/modelstudio/apikeys").await;
    assert_eq!((answer.status, answer.code()), (401, "InvalidBearerToken"));
}
