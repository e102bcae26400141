//! Upstream providers from configuration: which providers serve which model or
//! application (in order of priority, then by weight), in which protocols, with which
//! credentials (used in turn), with which timeouts; and each one's HTTP client. Forwarding
//! a call is `gateway::upstream`'s.
//!
//! What a forwarded call needs is made here once, at start, not per call: each base URL
//! parsed into its scheme, authority, `Host` header and path ([`UpstreamBase`]), each
//! credential made into its header values, each base's pool of idle connections
//! ([`UpstreamEndpoint`]) and each upstream's HTTP/1.1 client ([`UpstreamClient`], keygate's
//! own, with rustls for https bases) that keeps connections to the upstream open between
//! calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderValue, Method, Uri};
use rustc_hash::FxHashMap;
use secrecy::{ExposeSecret, SecretString};

use crate::gateway::errors::Protocol;
use crate::settings::UpstreamSettings;
use crate::upstream_client::{RequestHead, UpstreamClient, UpstreamEndpoint};

/// A base URL, parsed once: what every call to it shares.
#[derive(Debug, Clone)]
pub struct UpstreamBase {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header of every call (the authority without a default port).
    host: HeaderValue,
    /// The base's path without its trailing slash (empty for the root): a call's path
    /// after the protocol's prefix is appended to it.
    path: String,
    /// Where its calls connect (scheme, host, port) and its idle connections: one pool per
    /// base, shared by the clones of the base.
    endpoint: Arc<UpstreamEndpoint>,
}

impl UpstreamBase {
    /// Reads a configured base URL: `http://` or `https://`, a host, an optional path; no
    /// user information (a credential belongs in `api_key_env`), no query, no fragment.
    pub fn parse(url: &str) -> Result<UpstreamBase, String> {
        let trimmed = url.trim_end_matches('/');
        if trimmed.contains(['?', '#']) {
            return Err(format!("the base URL {url} has a query or a fragment; a base URL is a scheme, a host and a path"));
        }
        let uri: Uri = trimmed.parse().map_err(|error| format!("the base URL {url} cannot be read: {error}"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(format!("the base URL {url} must start with http:// or https://")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| format!("the base URL {url} names no host"))?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(format!("the base URL {url} must name a host and no user information"));
        }
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host_text = match authority.port_u16() {
            Some(port) if port == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host = HeaderValue::from_str(host_text).map_err(|_| format!("the base URL {url} has a host that is not a header value"))?;
        let path = uri.path().trim_end_matches('/').to_string();
        let port = authority.port_u16().unwrap_or(default_port);
        let endpoint = UpstreamEndpoint::new(authority.host(), port, scheme == Scheme::HTTPS)
            .map_err(|error| format!("the base URL {url} cannot be called: {error}"))?;
        Ok(UpstreamBase { scheme, authority, host, path, endpoint: Arc::new(endpoint) })
    }

    /// The head of a call: `method`, this base's path, then `path` (the part after the
    /// protocol's prefix, checked by `keygate_wire::forwarding_path`), then `query` (encoded
    /// again from its pairs), and `Host`; the caller adds the other headers. Only the
    /// request line is made per call; the host, port and `Host` value are the base's.
    /// `header_room`: bytes to reserve for the headers that follow.
    pub fn request_head(&self, method: &Method, path: &str, query: Option<&str>, header_room: usize) -> Option<RequestHead> {
        RequestHead::new(method, &[&self.path, path], query, &self.host, header_room)
    }

    /// Where this base's calls connect, with its pool of idle connections.
    pub fn endpoint(&self) -> &Arc<UpstreamEndpoint> {
        &self.endpoint
    }

    /// The `Host` header of a call to this base.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The URL of a call as a log line may show it, for an operator to see which upstream
    /// could not be reached: a path segment that may hold a key shown as `{redacted}`, and
    /// the query (the client's, which may hold its key) as `redacted`. Made only when a call
    /// fails.
    pub fn shown_url(&self, path: &str, has_query: bool) -> String {
        let full_path = format!("{}{path}", self.path);
        let shown = crate::request_context::shown_path(&full_path);
        format!("{}://{}{shown}{}", self.scheme, self.authority, if has_query { "?redacted" } else { "" })
    }
}

/// One of an upstream's keys, as the two headers that may carry it, made once (and marked
/// sensitive, so that hyper never logs them).
pub struct UpstreamCredential {
    /// `Authorization: Bearer <key>` (DashScope native and OpenAI-compatible).
    pub bearer: HeaderValue,
    /// `x-api-key: <key>` (Anthropic-compatible).
    pub api_key: HeaderValue,
}

impl UpstreamCredential {
    fn new(key: &SecretString) -> Option<UpstreamCredential> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).ok()?;
        let mut api_key = HeaderValue::from_str(key.expose_secret()).ok()?;
        bearer.set_sensitive(true);
        api_key.set_sensitive(true);
        Some(UpstreamCredential { bearer, api_key })
    }

    /// The header value that carries this key in `protocol`.
    pub fn header_for(&self, protocol: Protocol) -> &HeaderValue {
        match protocol {
            Protocol::Anthropic => &self.api_key,
            Protocol::Native | Protocol::OpenAi => &self.bearer,
        }
    }
}

/// How long a call waits on an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// For the TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending the request to the answer's head (a JSON answer's head comes when the
    /// whole answer is ready, so this is long).
    pub first_byte: Duration,
    /// Between two chunks of an answer's body.
    pub idle: Duration,
}

/// One configured provider.
pub struct Upstream {
    pub name: String,
    openai_base_url: Option<UpstreamBase>,
    dashscope_base_url: Option<UpstreamBase>,
    anthropic_base_url: Option<UpstreamBase>,
    responses_base_url: Option<UpstreamBase>,
    /// Its keys, used in turn (none: calls go out without a credential).
    credentials: Vec<UpstreamCredential>,
    next_credential: AtomicUsize,
    /// Lower is tried first.
    pub priority: u32,
    /// Share of the calls among upstreams of the same priority.
    pub weight: u32,
    timeouts: UpstreamTimeouts,
    client: UpstreamClient,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Upstream").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Upstream {
    /// The base URL of `protocol`'s API, when the upstream speaks it.
    pub fn base_for(&self, protocol: Protocol) -> Option<&UpstreamBase> {
        match protocol {
            Protocol::OpenAi => self.openai_base_url.as_ref(),
            Protocol::Native => self.dashscope_base_url.as_ref(),
            Protocol::Anthropic => self.anthropic_base_url.as_ref(),
        }
    }

    /// The base URL of the OpenAI Responses API: its own, or the OpenAI-compatible one.
    pub fn responses_base(&self) -> Option<&UpstreamBase> {
        self.responses_base_url.as_ref().or(self.openai_base_url.as_ref())
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

    /// The upstream's own credential for the next call, which replaces the client's key: its
    /// keys in turn, so that a provider's per-key rate limits are spread over all of them.
    pub fn next_credential(&self) -> Option<&UpstreamCredential> {
        // One credential (the usual case) takes no turn: the turn is a count every core
        // writes, a cache line passed between them at every call.
        if self.credentials.len() <= 1 {
            return self.credentials.first();
        }
        let turn = self.next_credential.fetch_add(1, Ordering::Relaxed);
        self.credentials.get(turn % self.credentials.len())
    }

    pub fn timeouts(&self) -> UpstreamTimeouts {
        self.timeouts
    }

    /// This upstream's HTTP client (with its connect timeout; the pools are its bases').
    pub fn client(&self) -> &UpstreamClient {
        &self.client
    }
}

/// Where a model or app is served.
#[derive(Debug, Clone)]
pub enum Route {
    Demo,
    Upstream(Arc<Upstream>),
}

/// How a call of a model is served ([`UpstreamTable::plan`]), borrowed from the table
/// (a model with one upstream, the usual case, costs no copy and no count).
#[derive(Debug)]
pub struct ModelPlan<'a> {
    /// The model's first upstream by priority; `None`: the demo answers.
    pub upstream: Option<&'a Upstream>,
    /// Whether the model can be called in the call's protocol here.
    pub speaks: bool,
    /// The upstreams the call tries, in order (none for the demo).
    pub candidates: std::borrow::Cow<'a, [Arc<Upstream>]>,
}

/// Models and apps mapped to their upstreams (a model's in order of priority).
#[derive(Debug, Default)]
pub struct UpstreamTable {
    /// Looked up on every call (FxHash, not SipHash: the table is the configuration's, so a
    /// client chooses only what is looked up, never what is stored).
    models: FxHashMap<String, Vec<Arc<Upstream>>>,
    apps: FxHashMap<String, Arc<Upstream>>,
    demo_enabled: bool,
}

/// Defaults of the timeouts (docs/CONFIG.md).
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_FIRST_BYTE_TIMEOUT_SECONDS: u64 = 300;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 120;

impl UpstreamTable {
    /// Builds the table, reading each upstream's credentials from their environment
    /// variables; a base URL that cannot be read is an error. A model claimed by several
    /// upstreams without a priority is warned about: its calls are then shared by weight,
    /// which may not be what was meant.
    pub fn from_settings(upstreams: &[UpstreamSettings], demo_enabled: bool) -> anyhow::Result<UpstreamTable> {
        let mut table = UpstreamTable { demo_enabled, ..UpstreamTable::default() };
        let mut claimed_without_priority: HashMap<&str, Vec<&str>> = HashMap::new();
        for settings in upstreams {
            let variables: Vec<&String> = settings.api_key_env.iter().chain(settings.api_key_envs.iter()).collect();
            let credentials: Vec<SecretString> = variables
                .iter()
                .filter_map(|variable| std::env::var(variable.as_str()).ok())
                .filter(|value| !value.is_empty())
                .map(SecretString::from)
                .collect();
            if credentials.len() < variables.len() {
                tracing::warn!(upstream = %settings.name, "an api_key_env variable of the upstream is not set; its calls go out without it");
            }
            let credentials: Vec<UpstreamCredential> = credentials
                .iter()
                .filter_map(|key| {
                    let credential = UpstreamCredential::new(key);
                    if credential.is_none() {
                        tracing::warn!(upstream = %settings.name, "a key of the upstream cannot be sent in a header (a control character?); it is not used");
                    }
                    credential
                })
                .collect();
            let seconds = |value: Option<u64>, default: u64| Duration::from_secs(value.unwrap_or(default).max(1));
            let timeouts = UpstreamTimeouts {
                connect: seconds(settings.connect_timeout_seconds, DEFAULT_CONNECT_TIMEOUT_SECONDS),
                first_byte: seconds(settings.first_byte_timeout_seconds, DEFAULT_FIRST_BYTE_TIMEOUT_SECONDS),
                idle: seconds(settings.idle_timeout_seconds, DEFAULT_IDLE_TIMEOUT_SECONDS),
            };
            // A base that cannot be read stops the start, rather than failing every call.
            let parse = |base: &Option<String>| {
                base.as_deref()
                    .map(UpstreamBase::parse)
                    .transpose()
                    .map_err(|error| anyhow::anyhow!("upstream '{}': {error}", settings.name))
            };
            let upstream = Arc::new(Upstream {
                name: settings.name.clone(),
                openai_base_url: parse(&settings.openai_base_url)?,
                dashscope_base_url: parse(&settings.dashscope_base_url)?,
                anthropic_base_url: parse(&settings.anthropic_base_url)?,
                responses_base_url: parse(&settings.responses_base_url)?,
                credentials,
                next_credential: AtomicUsize::new(0),
                priority: settings.priority.unwrap_or(0),
                weight: settings.weight.unwrap_or(1).max(1),
                timeouts,
                client: UpstreamClient::new(timeouts.connect),
            });
            for model in &settings.models {
                table.models.entry(model.clone()).or_default().push(upstream.clone());
                if settings.priority.is_none() {
                    claimed_without_priority.entry(model.as_str()).or_default().push(settings.name.as_str());
                }
            }
            for app in &settings.apps {
                table.apps.insert(app.clone(), upstream.clone());
            }
        }
        for (model, serving) in &mut table.models {
            // Stable: upstreams of one priority keep the order of the settings.
            serving.sort_by_key(|upstream| upstream.priority);
            if serving.len() > 1 && claimed_without_priority.contains_key(model.as_str()) {
                let names: Vec<&str> = serving.iter().map(|upstream| upstream.name.as_str()).collect();
                tracing::warn!(
                    model = %model,
                    upstreams = %names.join(", "),
                    "a model is claimed by several upstreams and not all of them set a priority: calls are shared among those of the same priority by weight, and fail over to the others"
                );
            }
        }
        Ok(table)
    }

    /// The upstreams of `model` in the order a call tries them: by priority, and within one
    /// priority in a random order drawn by weight (so that calls are shared by weight).
    pub fn candidates(&self, model: &str) -> Vec<Arc<Upstream>> {
        self.models.get(model).map(|serving| in_calling_order(serving)).unwrap_or_default()
    }

    /// How a call of `model` in `protocol` is served, from one look at the table (a model
    /// call asked three times before): [`UpstreamTable::route_model`]'s route, whether
    /// [`UpstreamTable::serves_in`] that protocol, and for an upstream the order
    /// [`UpstreamTable::candidates`] gives. `None` when the model is served nowhere here.
    pub fn plan(&self, model: &str, protocol: Protocol) -> Option<ModelPlan<'_>> {
        match self.models.get(model).filter(|serving| !serving.is_empty()) {
            Some(serving) => Some(ModelPlan {
                upstream: serving.first().map(|upstream| &**upstream),
                speaks: serving.iter().any(|upstream| upstream.speaks(protocol)),
                candidates: match serving.len() {
                    1 => std::borrow::Cow::Borrowed(serving.as_slice()),
                    _ => std::borrow::Cow::Owned(in_calling_order(serving)),
                },
            }),
            None => (self.demo_enabled && keygate_core::catalog::DEMO_MODELS.contains(&model)).then_some(ModelPlan {
                upstream: None,
                speaks: true,
                candidates: std::borrow::Cow::Borrowed(&[]),
            }),
        }
    }

    /// Where `model` is served: the demo, or its first upstream by priority (the whole
    /// order is [`UpstreamTable::candidates`]).
    pub fn route_model(&self, model: &str) -> Option<Route> {
        if let Some(upstream) = self.models.get(model).and_then(|serving| serving.first()) {
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

    /// Whether `model` can be called in `protocol` here (by any of its upstreams).
    pub fn serves_in(&self, model: &str, protocol: Protocol) -> bool {
        match self.models.get(model) {
            Some(serving) => serving.iter().any(|upstream| upstream.speaks(protocol)),
            None => self.demo_enabled && keygate_core::catalog::DEMO_MODELS.contains(&model),
        }
    }

    /// The upstream named `name`, among those serving `model`.
    pub fn serving_by_name(&self, model: &str, name: &str) -> Option<Arc<Upstream>> {
        self.models.get(model)?.iter().find(|upstream| upstream.name == name).cloned()
    }
}

/// The upstreams `serving` a model in the order a call tries them: by priority, and within
/// one priority in a random order drawn by weight.
fn in_calling_order(serving: &[Arc<Upstream>]) -> Vec<Arc<Upstream>> {
    if serving.len() == 1 {
        return serving.to_vec();
    }
    let mut ordered = Vec::with_capacity(serving.len());
    for group in serving.chunk_by(|first, second| first.priority == second.priority) {
        let mut left: Vec<Arc<Upstream>> = group.to_vec();
        while !left.is_empty() {
            let total: u64 = left.iter().map(|upstream| u64::from(upstream.weight)).sum();
            let mut draw = random_below(total);
            let index = left
                .iter()
                .position(|upstream| {
                    let weight = u64::from(upstream.weight);
                    if draw < weight {
                        true
                    } else {
                        draw -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            ordered.push(left.remove(index));
        }
    }
    ordered
}

/// A number below `bound` (at least 1), uniformly enough for sharing calls by weight.
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    keygate_core::random::fill_random(&mut bytes);
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_base_url_is_read_once_into_what_every_call_shares() {
        let base = UpstreamBase::parse("https://dashscope.example.com/compatible-mode/v1/").unwrap();
        assert_eq!(base.host(), "dashscope.example.com");
        let head = base.request_head(&Method::POST, "/chat/completions", None, 0).unwrap().finish(&Method::POST, Bytes::new());
        assert!(head.head_bytes().starts_with(b"POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nhost: dashscope.example.com\r\n"));
        let head = base.request_head(&Method::GET, "/models", Some("after=a%20b&limit=2"), 0).unwrap().finish(&Method::GET, Bytes::new());
        assert!(head.head_bytes().starts_with(b"GET /compatible-mode/v1/models?after=a%20b&limit=2 HTTP/1.1\r\n"));
        assert_eq!(format!("{:?}", base.endpoint()), "UpstreamEndpoint { host: \"dashscope.example.com\", port: 443, tls: true, .. }");
        // A port other than the scheme's default is part of Host; the default is not.
        assert_eq!(UpstreamBase::parse("http://127.0.0.1:8080/v1").unwrap().host(), "127.0.0.1:8080");
        assert_eq!(UpstreamBase::parse("http://provider.example:80").unwrap().host(), "provider.example");
        // A base at the root, and a call with nothing after the prefix, still have a path.
        let root = UpstreamBase::parse("http://provider.example").unwrap();
        let request_line = |path: &str| {
            let head = root.request_head(&Method::GET, path, None, 0).unwrap().finish(&Method::GET, Bytes::new());
            String::from_utf8(head.head_bytes().to_vec()).unwrap().lines().next().unwrap().to_string()
        };
        assert_eq!(request_line(""), "GET / HTTP/1.1");
        assert_eq!(request_line("/v1/messages"), "GET /v1/messages HTTP/1.1");
        assert_eq!(format!("{:?}", root.endpoint()), "UpstreamEndpoint { host: \"provider.example\", port: 80, tls: false, .. }");
        // What a log line shows of a call that failed: never the client's query.
        assert_eq!(base.shown_url("/chat/completions", true), "https://dashscope.example.com/compatible-mode/v1/chat/completions?redacted");
    }

    #[test]
    fn a_base_url_that_could_send_a_call_elsewhere_is_refused_at_start() {
        for url in [
            "ftp://provider.example/v1",
            "provider.example/v1",
            "/v1",
            "http://user:secret@provider.example/v1",
            "http://provider.example/v1?key=1",
            "http://provider.example/v1#part",
            "http:///v1",
        ] {
            assert!(UpstreamBase::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_credential_is_made_into_both_headers_once_and_marked_sensitive() {
        let credential = UpstreamCredential::new(&SecretString::from("provider-key")).unwrap();
        assert_eq!(credential.header_for(Protocol::OpenAi), "Bearer provider-key");
        assert_eq!(credential.header_for(Protocol::Native), "Bearer provider-key");
        assert_eq!(credential.header_for(Protocol::Anthropic), "provider-key");
        assert!(credential.bearer.is_sensitive() && credential.api_key.is_sensitive());
        assert!(UpstreamCredential::new(&SecretString::from("line\nbreak")).is_none());
    }
}
