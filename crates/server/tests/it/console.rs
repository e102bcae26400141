//! The console over plain HTTP: session cookies and their flags, CSRF on every form,
//! expiry and sign-out, the same authorization rules as the API, escaping, and the rule
//! that a plaintext key appears only in the body of the answer that made it.

use keygate_core::access::{Role, UserStatus};
use keygate_server::secrets::generate_session_token;
use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use secrecy::ExposeSecret;

use crate::helpers::{spawn_app, TestApp, ROOT_PASSWORD, USER_PASSWORD};

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().map(|value| value.to_str().unwrap().to_string()).collect()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .iter()
        .find_map(|line| line.split(';').next().and_then(|pair| pair.strip_prefix(&format!("{name}="))).map(str::to_string))
}

fn csrf_token(page: &str) -> String {
    let start = page.find("name=\"csrf_token\" value=\"").expect("a csrf_token field") + "name=\"csrf_token\" value=\"".len();
    page[start..start + 64].to_string()
}

/// One console session: its cookie and the CSRF token of its forms.
pub(crate) struct Session {
    base: String,
    pub(crate) cookie: String,
    csrf_token: String,
    http: reqwest::Client,
}

impl Session {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("cookie", format!("keygate_session={}", self.cookie)).send().await.unwrap()
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("keygate_session={}", self.cookie))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with this session's CSRF token added.
    pub(crate) async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut with_token = fields.to_vec();
        with_token.push(("csrf_token", &self.csrf_token));
        self.post(path, &with_token).await
    }
}

/// Signs in as a browser does; returns the session and the login answer's headers.
pub(crate) async fn sign_in(app: &TestApp, user: Option<&str>) -> (Session, HeaderMap) {
    sign_in_at(browser(), format!("http://{}", app.address), user).await
}

/// [`sign_in`] at `base` (`https://...` for a TLS listener) with `http`, which must not
/// follow redirects.
pub(crate) async fn sign_in_at(http: reqwest::Client, base: String, user: Option<&str>) -> (Session, HeaderMap) {
    let page = http.get(format!("{base}/console/login")).send().await.unwrap();
    let nonce = cookie_value(page.headers(), "keygate_login").expect("the login form's cookie");
    let token = csrf_token(&page.text().await.unwrap());
    let password = if user.is_some() { USER_PASSWORD } else { ROOT_PASSWORD };
    let answer = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("keygate_login={nonce}"))
        .form(&[("csrf_token", token.as_str()), ("account", "root"), ("user", user.unwrap_or("")), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "login refused");
    let headers = answer.headers().clone();
    let cookie = cookie_value(&headers, "keygate_session").expect("a session cookie");
    let mut session = Session { base, cookie, csrf_token: String::new(), http };
    let page = session.get("/console/keys").await;
    assert_eq!(page.status(), 200);
    session.csrf_token = csrf_token(&page.text().await.unwrap());
    (session, headers)
}

async fn key_count(app: &TestApp) -> u64 {
    let answer = app.login(None).await.get("/modelstudio/apikeys").await;
    answer.body["totalCount"].as_u64().unwrap()
}

/// The value of the show-once dialog's input in a page.
pub(crate) fn shown_key(page: &str) -> String {
    let input = &page[page.find("id=\"show-once-key\"").expect("the show-once dialog")..];
    let start = input.find("value=\"").unwrap() + "value=\"".len();
    input[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_scoped_and_expiring() {
    let app = spawn_app().await;
    let (session, headers) = sign_in(&app, None).await;
    let line = set_cookies(&headers).into_iter().find(|line| line.starts_with("keygate_session=")).unwrap();
    assert_eq!(line, format!("keygate_session={}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}", session.cookie, 12 * 3600));
    assert_eq!(headers.get(LOCATION).unwrap(), "/console/keys");
    // The login form's own cookie is removed with the same flags.
    assert!(set_cookies(&headers).contains(&"keygate_login=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0".to_string()));

    let page = session.get("/console/keys").await;
    assert_eq!(page.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    assert!(page.headers().get(CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap().contains("script-src 'self'"));

    // Behind an HTTPS proxy the cookie is also Secure.
    let http = browser();
    let login_page = http.get(format!("http://{}/console/login", app.address)).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(set_cookies(login_page.headers())[0].ends_with("; Secure"));
}

#[tokio::test]
async fn every_form_needs_its_sessions_csrf_token() {
    let app = spawn_app().await;
    let (session, _) = sign_in(&app, None).await;
    let (other_session, _) = sign_in(&app, None).await;
    assert_ne!(session.csrf_token, other_session.csrf_token);
    let before = key_count(&app).await;
    for token in [None, Some("0".repeat(64)), Some(other_session.csrf_token.clone())] {
        let mut fields = vec![("permission", "All"), ("description", "no token")];
        if let Some(token) = &token {
            fields.push(("csrf_token", token.as_str()));
        }
        let refused = session.post("/console/keys", &fields).await;
        assert_eq!(refused.status(), 403, "token {token:?}");
        assert!(refused.text().await.unwrap().contains("Form refused"));
    }
    for path in [
        "/console/logout",
        "/console/keys/1/delete",
        "/console/keys/1/limits",
        "/console/users",
        "/console/workspaces",
        "/console/access-keys",
    ] {
        assert_eq!(session.post(path, &[("name", "x")]).await.status(), 403, "{path}");
    }
    assert_eq!(key_count(&app).await, before);
    // The session survived the refused logout.
    assert_eq!(session.get("/console/keys").await.status(), 200);

    // The login form is bound to its own cookie.
    let login = browser()
        .post(format!("http://{}/console/login", app.address))
        .form(&[("account", "root"), ("password", ROOT_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(cookie_value(login.headers(), "keygate_session").is_none());
    assert_eq!(login.status(), 400);
}

#[tokio::test]
async fn a_new_key_is_only_in_the_body_of_the_answer_that_made_it() {
    let app = spawn_app().await;
    let (session, _) = sign_in(&app, None).await;
    let created =
        session.submit("/console/keys?region=ap-southeast-1", &[("permission", "All"), ("description", "<script>alert(1)</script>")]).await;
    assert_eq!(created.status(), 200);
    let headers = created.headers().clone();
    let page = created.text().await.unwrap();
    let key = shown_key(&page);
    assert!(key.starts_with("sk-ws-") && key.len() == 44, "{key}");
    for (name, value) in &headers {
        assert!(!value.to_str().unwrap_or("").contains(&key), "{name}");
    }
    // Escaped, never markup.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>alert(1)"));
    let list = session.get("/console/keys").await.text().await.unwrap();
    assert!(!list.contains(&key));
    assert!(list.contains(&keygate_core::keys::mask_key(&key)));

    // Reset answers the new key the same way, and nowhere else.
    let listed = app.login(None).await.get("/modelstudio/apikeys").await;
    let api_key_id = listed.body["apiKeys"][0]["apiKeyId"].as_i64().unwrap();
    let reset = session.submit(&format!("/console/keys/{api_key_id}/reset?region=ap-southeast-1"), &[]).await;
    assert_eq!(reset.status(), 200);
    assert!(reset.headers().get(LOCATION).is_none());
    let new_key = shown_key(&reset.text().await.unwrap());
    assert_ne!(new_key, key);
    let deleted = session.submit(&format!("/console/keys/{api_key_id}/delete?region=ap-southeast-1"), &[]).await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(deleted.headers().get(LOCATION).unwrap(), "/console/keys?region=ap-southeast-1&done=deleted");
}

#[tokio::test]
async fn expired_ended_and_disabled_sessions_go_back_to_the_login() {
    let app = spawn_app().await;
    let expect_login = |response: reqwest::Response| {
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers().get(LOCATION).unwrap(), "/console/login");
    };

    // An expired session.
    let (token, digest) = generate_session_token();
    app.state.store().create_session(&app.root_audit(), &digest, None, app.state.shared.clock.now_milliseconds() - 1000).await.unwrap();
    let expired = Session {
        base: format!("http://{}", app.address),
        cookie: token.expose_secret().to_string(),
        csrf_token: String::new(),
        http: browser(),
    };
    expect_login(expired.get("/console/keys").await);
    expect_login(expired.post("/console/keys", &[("permission", "All")]).await);
    expect_login(browser().get(format!("http://{}/console/keys", app.address)).send().await.unwrap());

    // Signing out ends the session on the server.
    let (session, _) = sign_in(&app, None).await;
    let signed_out = session.submit("/console/logout", &[]).await;
    assert_eq!(signed_out.status(), 303);
    assert!(set_cookies(signed_out.headers()).iter().any(|line| line.starts_with("keygate_session=;") && line.contains("Max-Age=0")));
    expect_login(session.get("/console/keys").await);

    // A RAM user disabled after signing in is signed out.
    app.create_user("erin", Role::KeyManager).await;
    let (erin, _) = sign_in(&app, Some("erin")).await;
    app.state.store().set_user_status(&app.root_audit(), "erin", UserStatus::Disabled).await.unwrap();
    expect_login(erin.get("/console/keys").await);
}

#[tokio::test]
async fn the_console_applies_the_apis_rules() {
    let app = spawn_app().await;
    app.create_user("member", Role::Member).await;
    app.create_user("manager", Role::KeyManager).await;
    let (member, _) = sign_in(&app, Some("member")).await;
    let page = member.get("/console/keys").await.text().await.unwrap();
    assert!(page.contains("id=\"create-denied\""));
    let refused = member.submit("/console/keys?region=ap-southeast-1", &[("permission", "All")]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("member role may not create API keys"));
    for page in ["/console/users", "/console/workspaces", "/console/audit"] {
        assert_eq!(member.get(page).await.status(), 403, "{page}");
    }

    // A key-manager cannot touch the account's key: the same 404 as the API.
    let (root, _) = sign_in(&app, None).await;
    let created = root.submit("/console/keys?region=ap-southeast-1", &[("permission", "All"), ("description", "made-by-root")]).await;
    assert_eq!(created.status(), 200);
    let api_key_id = app.login(None).await.get("/modelstudio/apikeys").await.body["apiKeys"][0]["apiKeyId"].as_i64().unwrap();
    let (manager, _) = sign_in(&app, Some("manager")).await;
    assert!(!manager.get("/console/keys").await.text().await.unwrap().contains("made-by-root"));
    let refused = manager.submit(&format!("/console/keys/{api_key_id}/delete?region=ap-southeast-1"), &[]).await;
    assert_eq!(refused.status(), 404);
    assert!(refused.text().await.unwrap().contains("The API key does not exist."));
    assert_eq!(key_count(&app).await, 1);

    // Custom permissions are not offered, and not accepted, where the region has none.
    let us = root.submit("/console/keys?region=us-east-1", &[("permission", "Custom"), ("access_ips", "10.0.0.0/8")]).await;
    assert_eq!(us.status(), 400);
    assert!(us.text().await.unwrap().contains("Custom permissions are not offered in US (Virginia); choose All."));
    let us_page = root.get("/console/keys?region=us-east-1").await.text().await.unwrap();
    assert!(!us_page.contains("create-permission-custom"));
    // A form for a region this server does not serve is refused.
    assert_eq!(root.submit("/console/keys?region=eu-central-1", &[("permission", "All")]).await.status(), 400);
}
