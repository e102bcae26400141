//! Upstream providers from configuration, and forwarding a call to one: the client's key is
//! removed and the upstream's own credential set, hop-by-hop headers dropped, the response
//! streamed back chunk by chunk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};

use super::errors::{GatewayRefusal, Protocol};
use super::ForwardTarget;
use crate::settings::UpstreamSettings;

/// One configured provider.
pub struct Upstream {
    pub name: String,
    openai_base_url: Option<String>,
    dashscope_base_url: Option<String>,
    anthropic_base_url: Option<String>,
    credential: Option<SecretString>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Upstream").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Upstream {
    fn base_for(&self, protocol: Protocol) -> Option<&str> {
        match protocol {
            Protocol::OpenAi => self.openai_base_url.as_deref(),
            Protocol::Native => self.dashscope_base_url.as_deref(),
            Protocol::Anthropic => self.anthropic_base_url.as_deref(),
        }
    }

    /// The protocols this upstream speaks, for the "served in" message.
    pub fn protocol_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.dashscope_base_url.is_some() {
            names.push("DashScope native (/api/v1)");
        }
        if self.openai_base_url.is_some() {
            names.push("OpenAI-compatible (/compatible-mode/v1)");
        }
        if self.anthropic_base_url.is_some() {
            names.push("Anthropic-compatible (/apps/anthropic)");
        }
        names
    }

    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.base_for(protocol).is_some()
    }
}

/// Where a model or app is served.
#[derive(Debug, Clone)]
pub enum Route {
    Demo,
    Upstream(Arc<Upstream>),
}

/// Models and apps mapped to their upstreams.
#[derive(Debug, Default)]
pub struct UpstreamTable {
    models: HashMap<String, Arc<Upstream>>,
    apps: HashMap<String, Arc<Upstream>>,
    demo_enabled: bool,
}

impl UpstreamTable {
    /// Builds the table, reading each upstream's credential from its environment variable.
    pub fn from_settings(upstreams: &[UpstreamSettings], demo_enabled: bool) -> UpstreamTable {
        let mut table = UpstreamTable { demo_enabled, ..UpstreamTable::default() };
        for settings in upstreams {
            let credential = settings
                .api_key_env
                .as_ref()
                .and_then(|variable| std::env::var(variable).ok())
                .filter(|value| !value.is_empty())
                .map(SecretString::from);
            if settings.api_key_env.is_some() && credential.is_none() {
                tracing::warn!(upstream = %settings.name, "the upstream's api_key_env variable is not set; calls go out without a credential");
            }
            let trim = |base: &Option<String>| base.as_ref().map(|url| url.trim_end_matches('/').to_string());
            let upstream = Arc::new(Upstream {
                name: settings.name.clone(),
                openai_base_url: trim(&settings.openai_base_url),
                dashscope_base_url: trim(&settings.dashscope_base_url),
                anthropic_base_url: trim(&settings.anthropic_base_url),
                credential,
            });
            for model in &settings.models {
                table.models.insert(model.clone(), upstream.clone());
            }
            for app in &settings.apps {
                table.apps.insert(app.clone(), upstream.clone());
            }
        }
        table
    }

    pub fn route_model(&self, model: &str) -> Option<Route> {
        if let Some(upstream) = self.models.get(model) {
            return Some(Route::Upstream(upstream.clone()));
        }
        (self.demo_enabled && keygate_core::catalog::DEMO_MODELS.contains(&model)).then_some(Route::Demo)
    }

    /// Apps without an upstream are answered by the demo when it is on.
    pub fn route_app(&self, app_id: &str) -> Option<Route> {
        match self.apps.get(app_id) {
            Some(upstream) => Some(Route::Upstream(upstream.clone())),
            None => self.demo_enabled.then_some(Route::Demo),
        }
    }

    /// Whether `model` can be called in `protocol` here.
    pub fn serves_in(&self, model: &str, protocol: Protocol) -> bool {
        match self.route_model(model) {
            Some(Route::Demo) => true,
            Some(Route::Upstream(upstream)) => upstream.speaks(protocol),
            None => false,
        }
    }
}

const HOP_BY_HOP: [&str; 9] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"];
/// Request headers that carry the client's credentials or keygate's own routing.
const CLIENT_ONLY: [&str; 4] = ["authorization", "x-api-key", "x-dashscope-workspace", "content-length"];

fn is_forwardable_request_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name) && !CLIENT_ONLY.contains(&name) && !name.starts_with("x-keygate-")
}

/// The header names listed in `Connection`, which are hop-by-hop too (RFC 9110 section 7.6.1).
fn connection_nominated(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Builds the HTTP client used for every upstream.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the HTTP client builds")
}

/// Sends the call to `upstream` and streams its answer back.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    client: &reqwest::Client,
    upstream: &Upstream,
    protocol: Protocol,
    method: Method,
    target: &ForwardTarget,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayRefusal> {
    let base = upstream
        .base_for(protocol)
        .ok_or_else(|| GatewayRefusal::BadRequest(format!("upstream {} does not speak this protocol", upstream.name)))?;
    // The base was checked at start (no query, no fragment) and the path segment by
    // segment (no dot segments, no escapes), so the URL cannot point anywhere else.
    let mut url = format!("{base}{}", target.path);
    if let Some(query) = &target.query {
        url.push('?');
        url.push_str(query);
    }
    let mut request = client.request(method, &url);
    let nominated = connection_nominated(headers);
    for (name, value) in headers {
        if is_forwardable_request_header(name) && !nominated.iter().any(|nominated| nominated == name.as_str()) {
            request = request.header(name, value);
        }
    }
    if let Some(credential) = &upstream.credential {
        request = match protocol {
            Protocol::Anthropic => request.header("x-api-key", credential.expose_secret()),
            Protocol::Native | Protocol::OpenAi => request.bearer_auth(credential.expose_secret()),
        };
    }
    let response = request.body(body).send().await.map_err(|error| {
        tracing::warn!(upstream = %upstream.name, error = %error, "upstream request failed");
        GatewayRefusal::UpstreamUnreachable
    })?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = Response::builder().status(status);
    let nominated = connection_nominated(response.headers());
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str())
            && name.as_str() != "content-length"
            && !nominated.iter().any(|nominated| nominated == name.as_str())
        {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
    }
    builder.body(Body::from_stream(response.bytes_stream())).map_err(|_| GatewayRefusal::UpstreamUnreachable)
}
