//! `spawn_app()`: a real keygate server on random loopback ports (one per region) with a
//! fresh SQLite data directory, plus clients that log in and sign requests.
//!
//! `spawn_app_on_with(Backend::Postgres, ...)` gives a test its own PostgreSQL schema in the database
//! named by `KEYGATE_TEST_DATABASE_URL` (and `None`, announced loudly, when it is not set);
//! `on_both_stores!` runs one test body on each store.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use keygate_core::access::Role;
use keygate_core::acs3;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::ids::{generate_access_key_secret, AccessKeyId};
use keygate_core::usage::{TokenUsage, UsageTotals};
use keygate_server::secrets::hash_password;
use keygate_server::settings::{ListenerSettings, PriceSettings, Settings};
use keygate_server::{AppState, Server};
use keygate_store::usage::UsageDelta;
use keygate_store::AuditContext;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The root account's password in every test app.
pub const ROOT_PASSWORD: &str = "root-password-for-tests";
/// Password given to RAM users made by [`TestApp::create_user`].
pub const USER_PASSWORD: &str = "user-password-for-tests";

/// A running server and what tests need to talk to it.
pub struct TestApp {
    /// Listener of `ap-southeast-1`.
    pub address: SocketAddr,
    /// Listener of `us-east-1`.
    pub us_address: SocketAddr,
    /// Plan listener of `ap-southeast-1` (only `sk-sp-` keys; the ordinary listener when a
    /// test's settings have none).
    pub plan_address: SocketAddr,
    /// The `metrics_listen` listener, when the test's settings ask for one.
    pub metrics_address: Option<SocketAddr>,
    /// The HTTPS listeners' certificates (what SIGHUP reloads), when the settings have any.
    pub tls_certificates: keygate_server::tls::TlsCertificates,
    pub state: AppState,
    pub http: reqwest::Client,
    /// The PostgreSQL schema this app runs on, if any (dropped with the last app using it).
    pub schema: Option<Arc<PostgresSchema>>,
    _data_dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The store a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `KEYGATE_TEST_DATABASE_URL`, when set and not empty.
pub fn postgres_test_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_DATABASE_URL").ok().filter(|url| !url.trim().is_empty())
}

/// Says, past the test harness's output capture, that a PostgreSQL test did not run.
pub fn announce_postgres_skip(test: &str) {
    static BANNER: std::sync::Once = std::sync::Once::new();
    let mut stderr = std::io::stderr();
    BANNER.call_once(|| {
        let _ = writeln!(
            stderr,
            "\n*** SKIPPED: the PostgreSQL half of the store behaviour suite. Set KEYGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run it (.ci/run does). ***\n"
        );
    });
    let _ = writeln!(stderr, "SKIPPED on PostgreSQL (KEYGATE_TEST_DATABASE_URL not set): {test}");
}

/// `KEYGATE_TEST_REDIS_URL`, when set and not empty: the Redis the limit tests count in.
pub fn redis_test_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_REDIS_URL").ok().filter(|url| !url.trim().is_empty())
}

/// Says, past the test harness's output capture, that a Redis test did not run.
pub fn announce_redis_skip(test: &str) {
    static BANNER: std::sync::Once = std::sync::Once::new();
    let mut stderr = std::io::stderr();
    BANNER.call_once(|| {
        let _ = writeln!(
            stderr,
            "\n*** SKIPPED: the limits counted in Redis. Set KEYGATE_TEST_REDIS_URL=redis://127.0.0.1:6379 to run them (.ci/run does). ***\n"
        );
    });
    let _ = writeln!(stderr, "SKIPPED on Redis (KEYGATE_TEST_REDIS_URL not set): {test}");
}

/// A key prefix of one test's own, so that tests sharing a Redis never count together.
pub fn redis_test_prefix() -> String {
    let mut random = [0u8; 6];
    keygate_core::random::fill_random(&mut random);
    format!("kg-test-{}:", hex::encode(random))
}

/// A PostgreSQL schema of one test's own, and the master key its nodes share. Dropped (with
/// everything in it) when the last holder lets go.
pub struct PostgresSchema {
    pub name: String,
    base_url: String,
    pub master_key_file: std::path::PathBuf,
    _directory: tempfile::TempDir,
}

fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

impl PostgresSchema {
    /// Creates a fresh schema, or `None` when `KEYGATE_TEST_DATABASE_URL` is not set.
    pub async fn create() -> Option<Arc<PostgresSchema>> {
        use sqlx::Connection;
        let base_url = postgres_test_url()?;
        let mut random = [0u8; 6];
        keygate_core::random::fill_random(&mut random);
        let name = format!("kg_test_{}", hex::encode(random));
        let mut connection = sqlx::PgConnection::connect(&base_url).await.expect("KEYGATE_TEST_DATABASE_URL answers");
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut connection).await.expect("create schema");
        let directory = tempfile::tempdir().expect("temporary directory");
        let master_key_file = directory.path().join("master.key");
        std::fs::write(&master_key_file, hex::encode(keygate_core::random::random_bytes_32())).expect("master key file");
        Some(Arc::new(PostgresSchema { name, base_url, master_key_file, _directory: directory }))
    }

    /// The URL a node connects with: this schema first on the search path, and an
    /// `application_name` that names the node (tests find its connections by it).
    pub fn url_for_node(&self, node: &str) -> String {
        let with_schema = with_parameter(&self.base_url, &format!("options=-c%20search_path%3D{}", self.name));
        with_parameter(&with_schema, &format!("application_name={node}"))
    }

    /// A plain connection to the test database (for `pg_terminate_backend` and the like).
    pub async fn admin_connection(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.base_url).await.expect("KEYGATE_TEST_DATABASE_URL answers")
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        // Drop runs outside any runtime we may block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut connection) = sqlx::PgConnection::connect(&base_url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut connection).await;
                }
            });
        })
        .join();
    }
}

/// Starts an app on `backend`, its settings adjusted first; `None` (announced) for
/// PostgreSQL without a test database.
pub async fn spawn_app_on_with(backend: Backend, test_name: &str, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => Some(spawn_app_with(adjust).await),
        Backend::Postgres => match PostgresSchema::create().await {
            Some(schema) => Some(spawn_node(&schema, "kg-node-a", adjust).await),
            None => {
                announce_postgres_skip(test_name);
                None
            }
        },
    }
}

/// Starts one node on a PostgreSQL schema (several nodes may share one).
pub async fn spawn_node(schema: &Arc<PostgresSchema>, node_name: &str, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let url = schema.url_for_node(node_name);
    let master_key_file = schema.master_key_file.clone();
    let mut app = spawn_app_with(move |settings| {
        settings.database_url = Some(url);
        settings.master_key_file = Some(master_key_file);
        settings.feed_poll_interval_milliseconds = 200;
        adjust(settings);
    })
    .await;
    app.schema = Some(schema.clone());
    app
}

/// Runs each test body on SQLite and on PostgreSQL (which announces itself skipped when
/// `KEYGATE_TEST_DATABASE_URL` is not set). Each body gets a fresh `TestApp`, its settings
/// adjusted first by the function named after `settings:` when there is one.
macro_rules! on_both_stores {
    (settings: $adjust:path; $(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::spawn_app_on_with($crate::helpers::Backend::Sqlite, stringify!($name), $adjust).await;
                    body(app.expect("SQLite always runs")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::spawn_app_on_with($crate::helpers::Backend::Postgres, stringify!($name), $adjust).await {
                        body(app).await;
                    }
                }
            }
        )*
    };
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        on_both_stores! { settings: $crate::helpers::default_settings; $(async fn $name($app: TestApp) $body)* }
    };
}

/// The settings of [`spawn_app`], unchanged.
pub fn default_settings(_settings: &mut Settings) {}

/// Prices for usage tests: demo-echo at 1 (input) and 2 (output) USD per million tokens,
/// demo-embed at 0.5 and 0; other models have none.
pub fn price_demo_models(settings: &mut Settings) {
    let price = |model: &str, input: &str, output: &str| PriceSettings {
        model: model.into(),
        input_per_million: input.into(),
        output_per_million: output.into(),
        currency: "USD".into(),
    };
    settings.prices = vec![price("demo-echo", "1", "2"), price("demo-embed", "0.5", "0")];
}

/// Usage of `key_id` (of the account 1) on `model` in the minute `at` (UTC), to be stored
/// directly with the store's `add_token_usage`.
pub fn stored_usage(key_id: i64, workspace_id: &str, model: &str, at: &str, requests: i64, tokens: TokenUsage) -> UsageDelta {
    UsageDelta {
        key_id,
        model: model.into(),
        minute_start: keygate_core::civil_time::parse_utc_timestamp(at).expect("a UTC timestamp"),
        account_id: 1,
        workspace_id: workspace_id.into(),
        totals: UsageTotals { requests, tokens },
    }
}

/// `path` with `pairs` form-encoded as its query.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params(&format!("http://keygate{path}"), pairs).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or(""))
}

/// `GET path` with `pairs` as its query, which must succeed: the answer's JSON.
pub async fn get_ok(client: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    let answer = client.get(&with_query(path, pairs)).await;
    assert_eq!(answer.status, 200, "{path} {pairs:?}: {}", answer.body);
    assert_eq!(answer.body["success"], serde_json::json!(true));
    answer.body
}

/// Starts a server with `ap-southeast-1` and `us-east-1` listeners on random ports.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], letting the test adjust the settings first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = Settings::with_data_dir(data_dir.path().to_path_buf());
    settings.listeners = vec![
        ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1"),
        ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "us-east-1"),
        ListenerSettings { plan: true, ..ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1") },
    ];
    adjust(&mut settings);
    let server = Server::bind(settings, Some(SecretString::from(ROOT_PASSWORD.to_string()))).await.expect("server binds");
    let addresses = server.local_addresses();
    let address_of = |region: &str| addresses.iter().find(|(_, listener_region)| listener_region == region).map(|(address, _)| *address);
    let address = address_of("ap-southeast-1").expect("ap-southeast-1 listener");
    let us_address = address_of("us-east-1").unwrap_or(address);
    let plan_address = server.plan_addresses().first().map_or(address, |(plan_address, _)| *plan_address);
    let metrics_address = server.metrics_address();
    let tls_certificates = server.tls_certificates();
    let state = server.state().expect("state");
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        us_address,
        plan_address,
        metrics_address,
        tls_certificates,
        state,
        http: reqwest::Client::new(),
        schema: None,
        _data_dir: data_dir,
        _shutdown: shutdown,
    }
}

/// How a test client authenticates to the management plane.
#[derive(Clone)]
pub enum Credentials {
    /// `x-acs-bearer-token` with a session token.
    Session(String),
    /// ACS3-HMAC-SHA256 with an AccessKey.
    AccessKey { id: String, secret: String },
}

/// A management client bound to one listener.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub host: String,
    pub credentials: Credentials,
    http: reqwest::Client,
}

/// An HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// An HTTP status, the `content-type` and the body as text.
#[derive(Debug, Clone)]
pub struct TextAnswer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn root_audit(&self) -> AuditContext {
        AuditContext {
            account_id: 1,
            actor: "test".into(),
            client_address: "test".into(),
            region: "ap-southeast-1".into(),
            credential: String::new(),
            at: self.state.shared.clock.now_milliseconds(),
        }
    }

    /// Creates a RAM user directly in the store, with [`USER_PASSWORD`].
    pub async fn create_user(&self, name: &str, role: Role) {
        let hash = hash_password(&SecretString::from(USER_PASSWORD.to_string()));
        self.state.store().create_user(&self.root_audit(), name, role, Some(&hash)).await.expect("user created");
    }

    /// Logs in (`user` None: the account) and returns a client on `address`.
    pub async fn login_at(&self, address: SocketAddr, user: Option<&str>) -> Client {
        login_client(&self.http, address, user).await
    }

    /// A session client on the `ap-southeast-1` listener.
    pub async fn login(&self, user: Option<&str>) -> Client {
        self.login_at(self.address, user).await
    }

    /// An AccessKey client (`user` None: the account's) on `address`.
    pub async fn access_key_client_at(&self, address: SocketAddr, user: Option<&str>) -> Client {
        let user_id = match user {
            None => None,
            Some(name) => Some(self.state.store().find_user(1, name).await.unwrap().user_id),
        };
        let id = AccessKeyId::generate();
        let secret = generate_access_key_secret();
        let ciphertext = self.state.shared.master_key.encrypt(secret.expose_secret());
        self.state.store().create_access_key(&self.root_audit(), id.as_str(), user_id, &ciphertext).await.unwrap();
        Client {
            base: format!("http://{address}"),
            host: address.to_string(),
            credentials: Credentials::AccessKey { id: id.as_str().to_string(), secret: secret.expose_secret().to_string() },
            http: self.http.clone(),
        }
    }
}

/// Logs in (`user` None: the account) on the server at `address`, which need not be a
/// [`TestApp`], and returns a client there.
pub async fn login_client(http: &reqwest::Client, address: SocketAddr, user: Option<&str>) -> Client {
    let password = if user.is_some() { USER_PASSWORD } else { ROOT_PASSWORD };
    let body = serde_json::json!({"account": "root", "user": user, "password": password});
    let answer: Value = http.post(format!("http://{address}/keygate/v1/sessions")).json(&body).send().await.unwrap().json().await.unwrap();
    let token = answer["token"].as_str().unwrap_or_else(|| panic!("login failed: {answer}")).to_string();
    Client { base: format!("http://{address}"), host: address.to_string(), credentials: Credentials::Session(token), http: http.clone() }
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    keygate_core::random::fill_random(&mut bytes);
    hex::encode(bytes)
}

impl Client {
    /// Sends `method path?query` with a form body (may be empty).
    pub async fn send(&self, method: &str, path_and_query: &str, form_body: &str) -> Answer {
        let date = format_utc_timestamp(keygate_server::clock::now_millis() / 1000);
        self.send_signed_at(method, path_and_query, form_body, &date, &random_nonce()).await
    }

    /// Like [`Client::send`] with an explicit `x-acs-date` and nonce (for replay and
    /// clock-window tests); sessions ignore both.
    pub async fn send_signed_at(&self, method: &str, path_and_query: &str, form_body: &str, date: &str, nonce: &str) -> Answer {
        self.send_typed(method, path_and_query, "application/x-www-form-urlencoded", form_body, date, nonce).await
    }

    /// Sends `method path?query` with a JSON body (keygate's own API).
    pub async fn send_json(&self, method: &str, path_and_query: &str, body: &Value) -> Answer {
        let date = format_utc_timestamp(keygate_server::clock::now_millis() / 1000);
        self.send_typed(method, path_and_query, "application/json", &body.to_string(), &date, &random_nonce()).await
    }

    async fn send_typed(&self, method: &str, path_and_query: &str, content_type: &str, form_body: &str, date: &str, nonce: &str) -> Answer {
        let answer = self.send_accepting("application/json", method, path_and_query, content_type, form_body, date, nonce).await;
        let TextAnswer { status, text, .. } = answer;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}"));
        Answer { status, body }
    }

    /// `GET path?query` with `Accept: accept`, the answer as text (a CSV answer).
    pub async fn get_text(&self, path_and_query: &str, accept: &str) -> TextAnswer {
        let date = format_utc_timestamp(keygate_server::clock::now_millis() / 1000);
        self.send_accepting(accept, "GET", path_and_query, "application/x-www-form-urlencoded", "", &date, &random_nonce()).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_accepting(
        &self,
        accept: &str,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        form_body: &str,
        date: &str,
        nonce: &str,
    ) -> TextAnswer {
        let url = format!("{}{}", self.base, path_and_query);
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method_value, &url);
        let mut headers: Vec<(String, String)> = vec![("accept".into(), accept.into()), ("host".into(), self.host.clone())];
        if !form_body.is_empty() {
            headers.push(("content-type".into(), content_type.into()));
        }
        match &self.credentials {
            Credentials::Session(token) => {
                headers.push(("x-acs-bearer-token".into(), token.clone()));
            }
            Credentials::AccessKey { id, secret } => {
                let payload_hash = acs3::payload_sha256(form_body.as_bytes());
                headers.push(("x-acs-date".into(), date.to_string()));
                headers.push(("x-acs-signature-nonce".into(), nonce.to_string()));
                headers.push(("x-acs-content-sha256".into(), payload_hash.clone()));
                let signed: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
                let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
                let canonical = acs3::canonical_request(method, path, query, &headers, &signed, &payload_hash);
                let signature = acs3::signature(secret, &acs3::string_to_sign(&canonical));
                let mut sorted = signed.clone();
                sorted.sort();
                headers.push((
                    "authorization".into(),
                    format!("ACS3-HMAC-SHA256 Credential={id},SignedHeaders={},Signature={signature}", sorted.join(";")),
                ));
            }
        }
        for (name, value) in &headers {
            if name != "host" {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let response = request.body(form_body.to_string()).send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
        let text = response.text().await.unwrap();
        TextAnswer { status, content_type, text }
    }

    pub async fn get(&self, path_and_query: &str) -> Answer {
        self.send("GET", path_and_query, "").await
    }

    /// CreateApiKey with a form body; returns the answer.
    pub async fn create_key(&self, query: &str, form_body: &str) -> Answer {
        let path = if query.is_empty() { "/modelstudio/apikeys".to_string() } else { format!("/modelstudio/apikeys?{query}") };
        self.send("POST", &path, form_body).await
    }

    /// Creates an `All` key and returns (id, plaintext).
    pub async fn create_all_key(&self) -> (i64, String) {
        let answer = self.create_key("", "").await;
        assert_eq!(answer.status, 200, "create failed: {}", answer.body);
        (answer.body["apiKey"]["apiKeyId"].as_i64().unwrap(), answer.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string())
    }
}

/// Serves `router` on a loopback port, as a stand-in for a remote provider: its address,
/// and the sender whose drop stops it (keep it as long as the double is needed).
pub async fn serve_upstream_double(router: axum::Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (address, shutdown)
}

/// A chat call of `model` ("hello", streamed or not) in the OpenAI-compatible protocol,
/// through the app's gateway with `key`.
pub async fn chat_completion(app: &TestApp, key: &str, model: &str, stream: bool) -> reqwest::Response {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream});
    app.http
        .post(format!("http://{}/compatible-mode/v1/chat/completions", app.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers")
}
