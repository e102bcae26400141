//! Upstream providers from configuration: which provider serves which model or
//! application, in which protocols, with which credential; and the HTTP client every call
//! to them goes out on. Forwarding a call is `gateway::upstream`'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::gateway::errors::Protocol;
use crate::settings::UpstreamSettings;

/// One configured provider.
pub struct Upstream {
    pub name: String,
    openai_base_url: Option<String>,
    dashscope_base_url: Option<String>,
    anthropic_base_url: Option<String>,
    responses_base_url: Option<String>,
    credential: Option<SecretString>,
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

    /// The upstream's own credential, which replaces the client's key.
    pub fn credential(&self) -> Option<&SecretString> {
        self.credential.as_ref()
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
                responses_base_url: trim(&settings.responses_base_url),
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

/// Builds the HTTP client used for every upstream.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the HTTP client builds")
}
