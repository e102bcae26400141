//! Upstream providers from configuration: which providers serve which model or
//! application (in order of priority, then by weight), in which protocols, with which
//! credentials (used in turn), with which timeouts; and each one's HTTP client. Forwarding
//! a call is `gateway::upstream`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::gateway::errors::Protocol;
use crate::settings::UpstreamSettings;

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
    openai_base_url: Option<String>,
    dashscope_base_url: Option<String>,
    anthropic_base_url: Option<String>,
    responses_base_url: Option<String>,
    /// Its keys, used in turn (none: calls go out without a credential).
    credentials: Vec<SecretString>,
    next_credential: AtomicUsize,
    /// Lower is tried first.
    pub priority: u32,
    /// Share of the calls among upstreams of the same priority.
    pub weight: u32,
    timeouts: UpstreamTimeouts,
    client: reqwest::Client,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Upstream").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Upstream {
    /// The base URL of `protocol`'s API, when the upstream speaks it.
    pub fn base_for(&self, protocol: Protocol) -> Option<&str> {
        match protocol {
            Protocol::OpenAi => self.openai_base_url.as_deref(),
            Protocol::Native => self.dashscope_base_url.as_deref(),
            Protocol::Anthropic => self.anthropic_base_url.as_deref(),
        }
    }

    /// The base URL of the OpenAI Responses API: its own, or the OpenAI-compatible one.
    pub fn responses_base(&self) -> Option<&str> {
        self.responses_base_url.as_deref().or(self.openai_base_url.as_deref())
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
    pub fn next_credential(&self) -> Option<&SecretString> {
        if self.credentials.is_empty() {
            return None;
        }
        let turn = self.next_credential.fetch_add(1, Ordering::Relaxed);
        self.credentials.get(turn % self.credentials.len())
    }

    pub fn timeouts(&self) -> UpstreamTimeouts {
        self.timeouts
    }

    /// This upstream's HTTP client (its own pool, with its connect timeout).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Where a model or app is served.
#[derive(Debug, Clone)]
pub enum Route {
    Demo,
    Upstream(Arc<Upstream>),
}

/// Models and apps mapped to their upstreams (a model's in order of priority).
#[derive(Debug, Default)]
pub struct UpstreamTable {
    models: HashMap<String, Vec<Arc<Upstream>>>,
    apps: HashMap<String, Arc<Upstream>>,
    demo_enabled: bool,
}

/// Defaults of the timeouts (docs/CONFIG.md).
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_FIRST_BYTE_TIMEOUT_SECONDS: u64 = 300;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 120;

impl UpstreamTable {
    /// Builds the table, reading each upstream's credentials from their environment
    /// variables. A model claimed by several upstreams without a priority is warned about:
    /// its calls are then shared by weight, which may not be what was meant.
    pub fn from_settings(upstreams: &[UpstreamSettings], demo_enabled: bool) -> UpstreamTable {
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
            let seconds = |value: Option<u64>, default: u64| Duration::from_secs(value.unwrap_or(default).max(1));
            let timeouts = UpstreamTimeouts {
                connect: seconds(settings.connect_timeout_seconds, DEFAULT_CONNECT_TIMEOUT_SECONDS),
                first_byte: seconds(settings.first_byte_timeout_seconds, DEFAULT_FIRST_BYTE_TIMEOUT_SECONDS),
                idle: seconds(settings.idle_timeout_seconds, DEFAULT_IDLE_TIMEOUT_SECONDS),
            };
            let trim = |base: &Option<String>| base.as_ref().map(|url| url.trim_end_matches('/').to_string());
            let upstream = Arc::new(Upstream {
                name: settings.name.clone(),
                openai_base_url: trim(&settings.openai_base_url),
                dashscope_base_url: trim(&settings.dashscope_base_url),
                anthropic_base_url: trim(&settings.anthropic_base_url),
                responses_base_url: trim(&settings.responses_base_url),
                credentials,
                next_credential: AtomicUsize::new(0),
                priority: settings.priority.unwrap_or(0),
                weight: settings.weight.unwrap_or(1).max(1),
                timeouts,
                client: http_client(timeouts.connect),
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
        table
    }

    /// The upstreams of `model` in the order a call tries them: by priority, and within one
    /// priority in a random order drawn by weight (so that calls are shared by weight).
    pub fn candidates(&self, model: &str) -> Vec<Arc<Upstream>> {
        let Some(serving) = self.models.get(model) else {
            return Vec::new();
        };
        if serving.len() == 1 {
            return serving.clone();
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

/// A number below `bound` (at least 1), uniformly enough for sharing calls by weight.
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    keygate_core::random::fill_random(&mut bytes);
    u64::from_le_bytes(bytes) % bound.max(1)
}

/// Builds an upstream's HTTP client.
pub fn http_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the HTTP client builds")
}
