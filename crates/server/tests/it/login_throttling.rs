//! Failed logins are throttled per client address, on the API and in the console: past
//! `failed_logins_per_minute` failures, that address gets 429 `Throttling` (with
//! `x-acs-retry-after`) before any password is checked, even the right one; other
//! addresses log in as usual.

use reqwest::header::SET_COOKIE;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, ROOT_PASSWORD};

const LIMIT: u32 = 3;

async fn throttled_app() -> TestApp {
    let app = spawn_app_with(|settings| {
        settings.failed_logins_per_minute = LIMIT;
        // Tests come from 127.0.0.1: as a trusted proxy, it may say who the client is.
        settings.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    // Failures are counted in fixed one-minute windows: a stopped clock keeps a test's
    // failures and the refusals they cause in one, whenever the test runs.
    app.state.shared.clock.freeze();
    app
}

/// `POST /keygate/v1/sessions` as the client `from`.
async fn api_login(app: &TestApp, from: &str, password: &str) -> (u16, Option<u64>, Value) {
    let answer = app
        .http
        .post(format!("http://{}/keygate/v1/sessions", app.address))
        .header("x-forwarded-for", from)
        .json(&json!({"account": "root", "password": password}))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let retry_after = answer.headers().get("x-acs-retry-after").and_then(|value| value.to_str().ok()?.parse().ok());
    (status, retry_after, answer.json().await.unwrap())
}

#[tokio::test]
async fn an_address_past_its_failed_logins_is_refused_even_with_the_right_password() {
    let app = throttled_app().await;
    let attacker = "203.0.113.5";
    for _ in 0..LIMIT {
        let (status, _, body) = api_login(&app, attacker, "guess").await;
        assert_eq!((status, body["code"].as_str()), (401, Some("InvalidCredentials")));
    }
    let (status, retry_after, body) = api_login(&app, attacker, ROOT_PASSWORD).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("Throttling")), "{body}");
    assert!(body.get("token").is_none(), "a throttled login got a session");
    assert!(retry_after.is_some_and(|milliseconds| (1..=60_000).contains(&milliseconds)), "{retry_after:?}");

    // Another address is not affected, and a success is not counted as a failure.
    let (status, _, body) = api_login(&app, "203.0.113.6", ROOT_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());

    // The console answers the same address with the same refusal, in words.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("http://{}", app.address);
    let form = http.get(format!("{base}/console/login")).header("x-forwarded-for", attacker).send().await.unwrap();
    let nonce = form
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .find_map(|value| value.to_str().ok()?.split(';').next()?.strip_prefix("keygate_login=").map(str::to_string))
        .expect("the login form's cookie");
    let page = form.text().await.unwrap();
    let start = page.find("name=\"csrf_token\" value=\"").unwrap() + "name=\"csrf_token\" value=\"".len();
    let token = page[start..start + 64].to_string();
    let answer = http
        .post(format!("{base}/console/login"))
        .header("x-forwarded-for", attacker)
        .header("cookie", format!("keygate_login={nonce}"))
        .form(&[("csrf_token", token.as_str()), ("account", "root"), ("user", ""), ("password", ROOT_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    assert!(answer.text().await.unwrap().contains("Too many failed logins from this address"));
}
