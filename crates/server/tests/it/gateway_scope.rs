//! What a key may reach (docs/CONTRACT.md#order-of-checks, docs/CONTRACT.md#client-address): only its own region's listener, only the
//! models granted to its workspace and in its scope, only from whitelisted addresses, where
//! the address is the TCP peer unless that peer is a trusted proxy (the spoofing test).
//! `/compatible-mode/v1/models` lists exactly what the key may call.

use keygate_server::settings::UpstreamSettings;
use serde_json::json;

use crate::gateway_calls::{
    assert_refused, assert_refused_in_every_shape, assert_served_in_every_shape, closed_loopback_port, create_key, create_workspace,
    listed_models, model_not_granted, set_model_permissions, Call, Reply, Shape, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED,
    INVALID_API_KEY, INVALID_KEY, MODEL_NOT_ALLOWED, NO_KEY, OPENAI_MODELS_PATH,
};
use crate::helpers::{spawn_app, spawn_app_with};

const WHITELIST_10_8: &str = "auth.type=Custom&auth.accessIps.1=10.0.0.0%2F8";

#[tokio::test]
async fn a_key_is_served_only_by_the_listener_of_its_region() {
    let app = spawn_app().await;
    let (_, virginia) = create_key(&app.login_at(app.us_address, None).await, "", "").await;
    let (_, singapore) = create_key(&app.login(None).await, "", "").await;
    assert!(virginia.starts_with("sk-") && !virginia.starts_with("sk-ws-"), "us-east-1 makes classic keys: {virginia}");

    assert_served_in_every_shape(&app.http, &Call::echo(app.us_address, &virginia)).await;
    assert_refused_in_every_shape(&app.http, &Call::echo(app.address, &virginia), INVALID_API_KEY, INVALID_KEY).await;
    assert_served_in_every_shape(&app.http, &Call::echo(app.address, &singapore)).await;
    assert_refused_in_every_shape(&app.http, &Call::echo(app.us_address, &singapore), INVALID_API_KEY, INVALID_KEY).await;
}

#[tokio::test]
async fn a_sub_workspace_key_may_call_only_the_models_granted_to_its_workspace() {
    let app = spawn_app().await;
    let root = app.login(None).await;
    let workspace = create_workspace(&root, "team-a").await;
    let (_, key) = create_key(&root, &format!("workspaceId={workspace}"), "").await;
    let (echo, embed) = (Call::echo(app.address, &key), Call::model(app.address, &key, "demo-embed"));

    assert_refused_in_every_shape(&app.http, &echo, MODEL_NOT_ALLOWED, &model_not_granted("demo-echo", &workspace)).await;
    assert_eq!(listed_models(&app.http, app.address, &key).await, Vec::<String>::new());

    set_model_permissions(&root, &workspace, &[("demo-echo", true), ("demo-embed", false)]).await;
    assert_served_in_every_shape(&app.http, &echo).await;
    assert_refused_in_every_shape(&app.http, &embed, MODEL_NOT_ALLOWED, &model_not_granted("demo-embed", &workspace)).await;
    assert_eq!(listed_models(&app.http, app.address, &key).await, ["demo-echo"]);

    // Taking the grant back refuses the next call.
    set_model_permissions(&root, &workspace, &[("demo-echo", false)]).await;
    assert_refused_in_every_shape(&app.http, &echo, MODEL_NOT_ALLOWED, &model_not_granted("demo-echo", &workspace)).await;
}

#[tokio::test]
async fn an_ip_whitelist_refuses_other_addresses_and_an_untrusted_peer_cannot_spoof_forwarded_for() {
    let app = spawn_app().await;
    let (_, key) = create_key(&app.login(None).await, "", WHITELIST_10_8).await;
    let call = Call::echo(app.address, &key);
    assert_refused_in_every_shape(&app.http, &call, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED).await;
    // 127.0.0.1 is not a trusted proxy here: whatever it claims to forward is ignored.
    for claimed in ["10.1.2.3", "10.1.2.3, 10.9.9.9", "::ffff:10.1.2.3"] {
        assert_refused_in_every_shape(
            &app.http,
            &call.clone().with_header("X-Forwarded-For", claimed),
            ADDRESS_NOT_ALLOWED,
            ADDRESS_NOT_WHITELISTED,
        )
        .await;
    }
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_is_believed() {
    let app = spawn_app_with(|settings| settings.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let (_, key) = create_key(&app.login(None).await, "", WHITELIST_10_8).await;
    let call = Call::echo(app.address, &key);
    let forwarded = |chain: &str| call.clone().with_header("X-Forwarded-For", chain);

    // The proxy itself (no header) is not in the whitelist.
    assert_refused_in_every_shape(&app.http, &call, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED).await;
    // The client the proxy names is, also as an IPv4-mapped IPv6 address and behind
    // another trusted hop.
    for chain in ["10.1.2.3", "::ffff:10.1.2.3", "10.1.2.3, 127.0.0.9"] {
        assert_served_in_every_shape(&app.http, &forwarded(chain)).await;
    }
    // The walk stops at the first untrusted address from the right: a client cannot
    // prepend a whitelisted one, and an address that does not parse matches nothing.
    for chain in ["10.1.2.3, 192.0.2.1", "192.0.2.1", "not-an-address"] {
        assert_refused_in_every_shape(&app.http, &forwarded(chain), ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED).await;
    }
}

#[tokio::test]
async fn a_forwarded_for_sent_on_several_lines_is_one_list_and_the_clients_own_line_cannot_name_the_client() {
    // A proxy that adds its own line after the one the client sent (HAProxy's `option
    // forwardfor` does): the last line is the proxy's. Reading only the first line, keygate
    // took the client's own claim and served a whitelisted key from anywhere.
    let app = spawn_app_with(|settings| settings.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let (_, key) = create_key(&app.login(None).await, "", WHITELIST_10_8).await;
    let call = Call::echo(app.address, &key);
    let two_lines = |first: &str, second: &str| call.clone().with_header("X-Forwarded-For", first).with_header("X-Forwarded-For", second);
    assert_refused_in_every_shape(&app.http, &two_lines("10.1.2.3", "192.0.2.1"), ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED).await;
    assert_served_in_every_shape(&app.http, &two_lines("192.0.2.1", "10.1.2.3")).await;
    assert_served_in_every_shape(&app.http, &two_lines("10.1.2.3", "127.0.0.9")).await;

    // /auth/verify, answered in the connection's front, reads every line too.
    let verify = |first: &'static str, second: &'static str| {
        let request = app
            .http
            .get(format!("http://{}/auth/verify", app.address))
            .bearer_auth(&key)
            .header("X-Forwarded-For", first)
            .header("X-Forwarded-For", second);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(verify("10.1.2.3", "192.0.2.1").await, 403);
    assert_eq!(verify("192.0.2.1", "10.1.2.3").await, 200);
}

#[tokio::test]
async fn the_model_list_shows_only_the_models_the_key_may_call_in_this_protocol() {
    let base = format!("http://127.0.0.1:{}", closed_loopback_port());
    let app = spawn_app_with(move |settings| {
        settings.upstreams = vec![
            UpstreamSettings {
                name: "openai-provider".into(),
                openai_base_url: Some(format!("{base}/v1")),
                dashscope_base_url: None,
                anthropic_base_url: None,
                responses_base_url: None,
                api_key_env: None,
                models: vec!["qwen-plus".into()],
                apps: Vec::new(),
                ..UpstreamSettings::default()
            },
            UpstreamSettings {
                name: "native-provider".into(),
                openai_base_url: None,
                dashscope_base_url: Some(format!("{base}/api/v1")),
                anthropic_base_url: None,
                responses_base_url: None,
                api_key_env: None,
                models: vec!["native-only-model".into()],
                apps: Vec::new(),
                ..UpstreamSettings::default()
            },
        ];
    })
    .await;
    let (http, here) = (&app.http, app.address);
    let root = app.login(None).await;
    let workspace = create_workspace(&root, "team-a").await;
    set_model_permissions(&root, &workspace, &[("demo-echo", true), ("native-only-model", true)]).await;

    let (_, everything) = create_key(&root, "", "").await;
    let scope = "auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1=demo-embed&auth.modelAccessScope.accessibleModels.2=native-only-model";
    let (_, embed_only) = create_key(&root, "", scope).await;
    let (_, in_workspace) = create_key(&root, &format!("workspaceId={workspace}"), "").await;
    let (_, whitelisted) = create_key(&root, "", WHITELIST_10_8).await;

    // Well-known catalog names without an upstream, and models served only natively, are
    // not callable here.
    assert_eq!(listed_models(http, here, &everything).await, ["demo-echo", "demo-embed", "qwen-plus"]);
    assert_eq!(listed_models(http, here, &embed_only).await, ["demo-embed"]);
    let listing = http.get(format!("http://{here}{OPENAI_MODELS_PATH}")).bearer_auth(&in_workspace).send().await.unwrap();
    let listing = Reply::read(listing).await;
    assert_eq!(
        (listing.status, listing.body),
        (200, json!({"object": "list", "data": [{"id": "demo-echo", "object": "model", "created": 0, "owned_by": "keygate-demo"}]}))
    );

    // The list is refused like a call: from an address outside the whitelist, and without
    // a key.
    let listing_with = |key: Option<&str>| {
        let request = http.get(format!("http://{here}{OPENAI_MODELS_PATH}"));
        let request = match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    assert_refused(&listing_with(Some(&whitelisted)).await, Shape::OpenAi, ADDRESS_NOT_ALLOWED, ADDRESS_NOT_WHITELISTED);
    assert_refused(&listing_with(None).await, Shape::OpenAi, INVALID_API_KEY, NO_KEY);
}
