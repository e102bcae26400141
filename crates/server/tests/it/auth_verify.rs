//! `/auth/verify` as an existing gateway calls it: an empty 200 for a usable key, the key's
//! identity only when asked for (`X-Keygate-Identity`), and refusals with the native error
//! body and a request id.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_identity_headers_come_only_when_asked_for() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (key_id, key) = root.create_all_key().await;
    let verify = || app.http.get(format!("http://{}/auth/verify", app.address)).bearer_auth(&key);

    let plain = verify().send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    let keygate_headers: Vec<_> = plain.headers().keys().filter(|name| name.as_str().starts_with("x-keygate-")).collect();
    assert!(keygate_headers.is_empty(), "identity answered without being asked: {keygate_headers:?}");

    for asked in ["on", "1", "TRUE"] {
        let with_identity = verify().header("x-keygate-identity", asked).send().await.unwrap();
        assert_eq!(with_identity.status().as_u16(), 200);
        let header = |name: &str| with_identity.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
        assert_eq!(header("x-keygate-key-id"), Some(key_id.to_string()), "asked with {asked:?}");
        assert_eq!(header("x-keygate-account").as_deref(), Some("root"));
        assert_eq!(header("x-keygate-region").as_deref(), Some("ap-southeast-1"));
        assert!(header("x-keygate-workspace").is_some_and(|workspace| workspace.starts_with("llm-")));
    }
    let declined = verify().header("x-keygate-identity", "off").send().await.unwrap();
    assert!(declined.headers().get("x-keygate-key-id").is_none());
}

#[tokio::test]
async fn refusals_carry_the_native_error_body_with_a_request_id() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let scoped = root
        .create_key("", "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-echo")
        .await;
    assert_eq!(scoped.status, 200, "{}", scoped.body);
    let scoped_key = scoped.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
    let url = format!("http://{}/auth/verify", app.address);

    let unknown = app.http.post(&url).bearer_auth("sk-0123456789abcdef0123456789abcdef").send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["code"], "InvalidApiKey");
    assert!(body["request_id"].as_str().is_some_and(|id| id.len() == 36), "{body}");

    let allowed = app.http.get(&url).bearer_auth(&scoped_key).header("x-keygate-model", "demo-echo").send().await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    let out_of_scope = app.http.get(&url).bearer_auth(&scoped_key).header("x-keygate-model", "demo-embed").send().await.unwrap();
    assert_eq!(out_of_scope.status().as_u16(), 403);
    let body: serde_json::Value = out_of_scope.json().await.unwrap();
    assert_eq!(body["code"], "Model.AccessDenied", "{body}");
}

#[tokio::test]
async fn envoy_ext_authz_requests_get_a_verdict_for_the_original_method_and_path() {
    // Envoy's HTTP ext_authz sends the original method, and `path_prefix` + the original
    // path (here path_prefix = /auth/verify), with the original headers.
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, key) = root.create_all_key().await;
    let send =
        |method: reqwest::Method, path: &str| app.http.request(method, format!("http://{}{path}", app.address)).bearer_auth(&key).send();
    for method in [reqwest::Method::POST, reqwest::Method::DELETE, reqwest::Method::PUT] {
        let allowed = send(method.clone(), "/auth/verify/compatible-mode/v1/chat/completions?stream=true").await.unwrap();
        assert_eq!(allowed.status().as_u16(), 200, "{method}");
    }
    // The original path names an application that is not in the key's workspace.
    let other_app = send(reqwest::Method::POST, "/auth/verify/api/v1/apps/0123456789abcdef0123456789abcdef/completion").await.unwrap();
    assert_eq!(other_app.status().as_u16(), 403);
    let body: serde_json::Value = other_app.json().await.unwrap();
    assert_eq!(body["code"], "App.AccessDenied", "{body}");
    // Only /auth/verify and paths under it.
    assert_eq!(send(reqwest::Method::GET, "/auth/verifyx").await.unwrap().status().as_u16(), 404);
}

/// Creates a Custom key limited to `demo-echo` in the default workspace.
async fn demo_echo_only_key(root: &crate::helpers::Client) -> String {
    let scoped = root
        .create_key("", "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-echo")
        .await;
    assert_eq!(scoped.status, 200, "{}", scoped.body);
    scoped.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_key_limited_to_some_models_is_refused_when_the_request_names_none() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let scoped_key = demo_echo_only_key(&root).await;
    let (_, all_key) = root.create_all_key().await;
    let url = format!("http://{}/auth/verify", app.address);
    let verify =
        |key: &str| app.http.get(&url).bearer_auth(key.to_string()).header("x-original-uri", "/compatible-mode/v1/chat/completions");

    // Before, this was a 200: behind a proxy that does not name the model, the key could
    // call any model.
    let unnamed = verify(&scoped_key).send().await.unwrap();
    assert_eq!(unnamed.status().as_u16(), 403);
    let body: serde_json::Value = unnamed.json().await.unwrap();
    assert_eq!(body["code"], "Model.AccessDenied", "{body}");
    assert!(body["message"].as_str().unwrap().contains("X-Keygate-Model"), "{body}");
    assert_eq!(verify(&scoped_key).header("x-keygate-model", "demo-echo").send().await.unwrap().status().as_u16(), 200);
    assert_eq!(verify(&scoped_key).header("x-keygate-model", "demo-embed").send().await.unwrap().status().as_u16(), 403);
    // A key that may call every model passes without one.
    assert_eq!(verify(&all_key).send().await.unwrap().status().as_u16(), 200);

    // A key of a sub-workspace may call only the models granted there: it needs one too.
    let workspace = crate::gateway_calls::create_workspace(&root, "verify-sub").await;
    crate::gateway_calls::set_model_permissions(&root, &workspace, &[("demo-echo", true)]).await;
    let (_, sub_key) = crate::gateway_calls::create_key(&root, &format!("workspaceId={workspace}"), "").await;
    assert_eq!(verify(&sub_key).send().await.unwrap().status().as_u16(), 403);
    assert_eq!(verify(&sub_key).header("x-keygate-model", "demo-echo").send().await.unwrap().status().as_u16(), 200);
    assert_eq!(verify(&sub_key).header("x-keygate-model", "demo-embed").send().await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn envoy_may_send_the_body_and_its_model_is_the_one_authorized() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let scoped_key = demo_echo_only_key(&root).await;
    let url = format!("http://{}/auth/verify/compatible-mode/v1/chat/completions", app.address);
    let with_body =
        |body: &str| app.http.post(&url).bearer_auth(&scoped_key).header("content-type", "application/json").body(body.to_string());
    let status = |response: reqwest::Response| response.status().as_u16();

    assert_eq!(status(with_body(r#"{"model":"demo-echo","messages":[]}"#).send().await.unwrap()), 200);
    assert_eq!(status(with_body(r#"{"model":"demo-embed","messages":[]}"#).send().await.unwrap()), 403);
    // The body wins over a client's header, and the two may not disagree.
    let disagreeing = with_body(r#"{"model":"demo-embed"}"#).header("x-keygate-model", "demo-echo").send().await.unwrap();
    assert_eq!(disagreeing.status().as_u16(), 400);
    // Two models in one body: one parser would read the first, another the last.
    let repeated = with_body(r#"{"model":"demo-echo","model":"demo-embed"}"#).send().await.unwrap();
    assert_eq!(repeated.status().as_u16(), 400);
    let body: serde_json::Value = repeated.json().await.unwrap();
    assert_eq!(body["code"], "InvalidParameter", "{body}");
    // A body that is not JSON names no model: the scoped key is refused.
    let not_json = app.http.post(&url).bearer_auth(&scoped_key).body("--boundary\r\n").send().await.unwrap();
    assert_eq!(not_json.status().as_u16(), 403);
}

#[tokio::test]
async fn a_plan_listener_does_not_answer_auth_verify() {
    let app = spawn_app().await;
    let response = app.http.get(format!("http://{}/auth/verify", app.plan_address)).bearer_auth("sk-sp-anything").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "NotFound", "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
}

/// Reads one HTTP/1.1 answer with a `content-length` from `stream`, leaving what follows.
async fn read_answer(stream: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut status_line = String::new();
    stream.read_line(&mut status_line).await.unwrap();
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers.iter().find(|(name, _)| name == "content-length").map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn one_connection_carries_verifications_and_then_any_other_request_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let root = app.login(None).await;
    let (_, key) = root.create_all_key().await;
    let header = |headers: &[(String, String)], name: &str| headers.iter().find(|(found, _)| found == name).map(|(_, value)| value.clone());

    // Pipelined, as nginx may: two verifications, a refusal, then a request for the router,
    // then another verification, all written at once.
    let mut stream = tokio::io::BufReader::new(tokio::net::TcpStream::connect(app.address).await.unwrap());
    let requests = format!(
        "GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\n\r\n\
         GET /auth/verify?x=1 HTTP/1.1\r\nHost: k\r\nauthorization: Bearer {key}\r\nX-Keygate-Identity: on\r\n\r\n\
         GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer sk-0123456789abcdef0123456789abcdef\r\n\r\n\
         GET /healthz HTTP/1.1\r\nHost: k\r\n\r\n\
         GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.get_mut().write_all(requests.as_bytes()).await.unwrap();

    let (status, headers, body) = read_answer(&mut stream).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(header(&headers, "content-length").as_deref(), Some("0"));
    assert!(header(&headers, "date").is_some_and(|date| date.ends_with(" GMT")), "{headers:?}");
    assert_eq!(header(&headers, "x-keygate-account"), None);

    let (status, headers, _) = read_answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-keygate-account").as_deref(), Some("root"));

    let (status, headers, body) = read_answer(&mut stream).await;
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "content-type").as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "InvalidApiKey");
    assert!(body["request_id"].as_str().is_some_and(|id| id.len() == 36), "{body}");

    let (status, _, body) = read_answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"], "ok");

    // After a request for the router, the connection is hyper's, and still verifies.
    let (status, headers, _) = read_answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection").as_deref(), Some("close"));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the connection closes after a `Connection: close` request");

    // Closed by the front too, when the close comes before any other request.
    let mut stream = tokio::io::BufReader::new(tokio::net::TcpStream::connect(app.address).await.unwrap());
    let request = format!("GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes()).await.unwrap();
    let (status, headers, _) = read_answer(&mut stream).await;
    assert_eq!((status, header(&headers, "connection").as_deref()), (200, Some("close")));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());

    // HTTP/1.0 and a head split over several writes are answered too.
    let mut stream = tokio::io::BufReader::new(tokio::net::TcpStream::connect(app.address).await.unwrap());
    let request = format!("GET /auth/verify HTTP/1.0\r\nAuthorization: Bearer {key}\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 200);
    let mut stream = tokio::io::BufReader::new(tokio::net::TcpStream::connect(app.address).await.unwrap());
    let request = format!("GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {key}\r\n\r\n");
    let (first, second) = request.split_at(20);
    stream.get_mut().write_all(first.as_bytes()).await.unwrap();
    stream.get_mut().flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stream.get_mut().write_all(second.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 200);
}

#[tokio::test]
async fn a_stopping_listener_closes_connections_idle_after_a_verification_and_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = keygate_server::settings::Settings::with_data_dir(data_dir.path().to_path_buf());
    settings.listeners = vec![keygate_server::settings::ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1")];
    let password = secrecy::SecretString::from(crate::helpers::ROOT_PASSWORD.to_string());
    let server = keygate_server::Server::bind(settings, Some(password)).await.unwrap();
    let address = server.local_addresses()[0].0;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // One verification (refused: any key will do), then the connection sits idle, kept alive.
    let mut stream = tokio::io::BufReader::new(tokio::net::TcpStream::connect(address).await.unwrap());
    stream.get_mut().write_all(b"GET /auth/verify HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer sk-0\r\n\r\n").await.unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 401);

    stop.send(()).unwrap();
    // The server closes the idle connection and `run` returns, well within the shutdown
    // grace it would otherwise wait out (10 s) for a connection that never ends.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        rest
    })
    .await
    .expect("the idle connection is closed when the listener stops");
    assert!(closed.is_empty());
    tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("the server stops once its connections are closed")
        .unwrap()
        .unwrap();
}
