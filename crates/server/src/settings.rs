//! Typed settings of `keygate serve`, loaded once from an optional TOML file and flags,
//! then passed explicitly (no globals).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use keygate_core::catalog::ModelCatalog;
use keygate_core::region::RegionTable;
use keygate_core::verification::KeyEndpoint;
use serde::Deserialize;

/// Default address of the single listener.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:8080";
/// Default region of the single listener.
pub const DEFAULT_REGION: &str = "ap-southeast-1";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./keygate-data";
/// The most connection runtimes a node may be given (`connection_runtimes`): far more
/// threads than any machine has cores is a typo, not a setting.
pub const MAX_CONNECTION_RUNTIMES: usize = 1024;

/// One listener: an address serving one region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    pub addr: SocketAddr,
    pub region: String,
    /// A plan listener (docs/CONTRACT.md#token-plan): it serves only the Token Plan / Coding Plan paths
    /// (`/v1/...`, `/apps/anthropic/...`) and takes only plan keys (`sk-sp-`).
    #[serde(default)]
    pub plan: bool,
    /// With `tls_key_file`: the listener speaks HTTPS only, with the certificate chain in
    /// this PEM file (the server's certificate first), read again on SIGHUP.
    #[serde(default)]
    pub tls_certificate_file: Option<PathBuf>,
    /// The private key of `tls_certificate_file`'s certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

impl ListenerSettings {
    /// Parses `ADDR=REGION`, e.g. `127.0.0.1:8081=us-east-1`.
    pub fn parse(text: &str) -> anyhow::Result<ListenerSettings> {
        let (address, region) = text.split_once('=').with_context(|| format!("'{text}' is not ADDR=REGION"))?;
        let addr = address.parse().with_context(|| format!("'{address}' is not a socket address like 127.0.0.1:8080"))?;
        Ok(ListenerSettings::plain(addr, region))
    }

    /// A listener of plain HTTP, not a plan listener.
    pub fn plain(addr: SocketAddr, region: &str) -> ListenerSettings {
        ListenerSettings { addr, region: region.to_string(), plan: false, tls_certificate_file: None, tls_key_file: None }
    }

    /// The certificate and key files of a TLS listener; `None` for plain HTTP.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_certificate_file.as_deref()?, self.tls_key_file.as_deref()?))
    }

    /// Parses `ADDR=REGION` as a plan listener.
    pub fn parse_plan(text: &str) -> anyhow::Result<ListenerSettings> {
        Ok(ListenerSettings { plan: true, ..ListenerSettings::parse(text)? })
    }

    /// Which keys this listener's model calls take.
    pub fn key_endpoint(&self) -> KeyEndpoint {
        if self.plan {
            KeyEndpoint::Plan
        } else {
            KeyEndpoint::PayAsYouGo
        }
    }
}

/// A region's settings overridden in the TOML file (`[[regions]] id = ..., key_limit = ...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionOverride {
    pub id: String,
    pub key_limit: Option<u32>,
    pub workspace_limit: Option<u32>,
}

/// An upstream provider (`[[upstreams]]`): one base URL per protocol it speaks, its own
/// credential (read from an environment variable), and the models and apps it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub name: String,
    /// `/compatible-mode/v1/<rest>` goes to `<openai_base_url>/<rest>`.
    pub openai_base_url: Option<String>,
    /// `/api/v1/<rest>` goes to `<dashscope_base_url>/<rest>`.
    pub dashscope_base_url: Option<String>,
    /// `/apps/anthropic/<rest>` goes to `<anthropic_base_url>/<rest>`.
    pub anthropic_base_url: Option<String>,
    /// The OpenAI Responses API (`/compatible-mode/v1/responses...`) goes to
    /// `<responses_base_url>/responses...`; absent, to `<openai_base_url>/responses...`
    /// (OpenAI serves both under one base; Model Studio serves Responses under a base of
    /// its own).
    #[serde(default)]
    pub responses_base_url: Option<String>,
    /// Name of the environment variable that holds the upstream's own credential.
    pub api_key_env: Option<String>,
    /// More such variables: the upstream's keys are used in turn, one per call.
    #[serde(default)]
    pub api_key_envs: Vec<String>,
    /// Lower is tried first when several upstreams serve a model (default 0).
    #[serde(default)]
    pub priority: Option<u32>,
    /// Share of the calls among upstreams of one priority (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Seconds to connect (default 10).
    #[serde(default)]
    pub connect_timeout_seconds: Option<u64>,
    /// Seconds from sending a call to the answer's head (default 300).
    #[serde(default)]
    pub first_byte_timeout_seconds: Option<u64>,
    /// Seconds between two chunks of an answer (default 120).
    #[serde(default)]
    pub idle_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub models: Vec<String>,
    /// Application ids (32 lowercase hex) served by this upstream.
    #[serde(default)]
    pub apps: Vec<String>,
}

/// A model's price (`[[prices]]`): per million input and output tokens, as decimal text
/// (`"0.8"`), in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    pub model: String,
    pub input_per_million: String,
    pub output_per_million: String,
    pub currency: String,
}

/// The platform default of a model's limits (`[[model_limits]]`): what ListModelLimits
/// shows as `modelLimit`, and what a workspace that sets no limit of its own is counted
/// against (docs/CONTRACT.md#model-limits). Periods in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimitSettings {
    pub model: String,
    pub request_limit: Option<u64>,
    pub request_limit_period_seconds: Option<u64>,
    pub usage_limit: Option<u64>,
    pub usage_limit_period_seconds: Option<u64>,
}

impl ModelLimitSettings {
    pub fn values(&self) -> keygate_core::limits::LimitValues {
        keygate_core::limits::LimitValues {
            request_limit: self.request_limit,
            request_limit_period: self.request_limit_period_seconds,
            usage_limit: self.usage_limit,
            usage_limit_period: self.usage_limit_period_seconds,
        }
    }
}

/// How log lines are written: text for a terminal, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The TOML file's shape. Every field is optional (absent: its `Default`, `None` or an
/// empty list); flags win over it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsFile {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub default_region: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_staleness_seconds: Option<u64>,
    pub demo_upstream: Option<bool>,
    pub master_key_file: Option<PathBuf>,
    pub listeners: Vec<ListenerSettings>,
    pub regions: Vec<RegionOverride>,
    pub upstreams: Vec<UpstreamSettings>,
    pub body_limit_bytes: Option<usize>,
    pub failed_authentications_per_minute: Option<u32>,
    pub failed_logins_per_minute: Option<u32>,
    pub feed_poll_interval_milliseconds: Option<u64>,
    pub header_read_timeout_seconds: Option<u64>,
    pub body_read_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub tls_handshake_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub connection_runtimes: Option<usize>,
    pub temporary_keys_per_minute: Option<u32>,
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    pub usage_flush_interval_milliseconds: Option<u64>,
    pub usage_retention_days: Option<u32>,
    pub usage_hourly_after_days: Option<u32>,
    pub usage_daily_after_days: Option<u32>,
    pub token_accounting: Option<bool>,
    pub prices: Vec<PriceSettings>,
    pub model_limits: Vec<ModelLimitSettings>,
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub redis_timeout_milliseconds: Option<u64>,
    pub limits_fail_closed: Option<bool>,
    pub node_heartbeat_seconds: Option<u64>,
}

impl SettingsFile {
    pub fn load(path: &Path) -> anyhow::Result<SettingsFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The settings of `KEYGATE_<KEY>` environment variables (each top-level key that is
    /// not an array of tables; see [`environment_variable`]), read through `lookup`. A
    /// value is read as a TOML value (`false`, `10`, `["10.0.0.0/8"]`) and, when it is not
    /// one, as a string (`json`, `redis://host:6379`); an empty variable counts as unset.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<SettingsFile> {
        let mut table = toml::Table::new();
        for key in TOP_LEVEL_KEYS.iter().filter(|key| !ARRAY_OF_TABLES_KEYS.contains(key)) {
            let variable = environment_variable(key);
            let Some(text) = lookup(&variable).filter(|text| !text.trim().is_empty()) else { continue };
            let value = toml::from_str::<toml::Table>(&format!("value = {text}"))
                .ok()
                .and_then(|mut parsed| parsed.remove("value"))
                .unwrap_or_else(|| toml::Value::String(text.clone()));
            // Each variable alone first, so that a bad one is named.
            let single: toml::Table = [(key.to_string(), value.clone())].into_iter().collect();
            toml::Value::Table(single).try_into::<SettingsFile>().map_err(|error| anyhow::anyhow!("{variable}: {}", error.message()))?;
            table.insert(key.to_string(), value);
        }
        Ok(toml::Value::Table(table).try_into::<SettingsFile>()?)
    }
}

/// The environment variable of a top-level key: `KEYGATE_` and the key in capitals
/// (`demo_upstream`: `KEYGATE_DEMO_UPSTREAM`).
pub fn environment_variable(key: &str) -> String {
    format!("KEYGATE_{}", key.to_ascii_uppercase())
}

/// Declares the names of a settings table's keys from one list, which must name every
/// field of the struct: a field added without its name here does not compile, and the
/// configuration reference's test (below) requires a row for every name.
macro_rules! setting_keys {
    ($constant:ident, $settings:ident { $($field:ident),* $(,)? }) => {
        pub const $constant: &[&str] = &[$(stringify!($field)),*];
        const _: fn($settings) = |settings| {
            let $settings { $($field: _),* } = settings;
        };
    };
}

setting_keys!(
    TOP_LEVEL_KEYS,
    SettingsFile {
        data_dir,
        database_url,
        default_region,
        trusted_proxies,
        max_staleness_seconds,
        demo_upstream,
        master_key_file,
        listeners,
        regions,
        upstreams,
        body_limit_bytes,
        failed_authentications_per_minute,
        failed_logins_per_minute,
        feed_poll_interval_milliseconds,
        header_read_timeout_seconds,
        body_read_timeout_seconds,
        idle_timeout_seconds,
        tls_handshake_timeout_seconds,
        max_connections,
        connection_runtimes,
        temporary_keys_per_minute,
        metrics_listen,
        log_format,
        usage_flush_interval_milliseconds,
        usage_retention_days,
        usage_hourly_after_days,
        usage_daily_after_days,
        token_accounting,
        prices,
        model_limits,
        redis_url,
        redis_key_prefix,
        redis_timeout_milliseconds,
        limits_fail_closed,
        node_heartbeat_seconds,
    }
);
setting_keys!(LISTENER_KEYS, ListenerSettings { addr, region, plan, tls_certificate_file, tls_key_file });
setting_keys!(REGION_KEYS, RegionOverride { id, key_limit, workspace_limit });
setting_keys!(
    UPSTREAM_KEYS,
    UpstreamSettings {
        name,
        openai_base_url,
        dashscope_base_url,
        anthropic_base_url,
        responses_base_url,
        api_key_env,
        api_key_envs,
        priority,
        weight,
        connect_timeout_seconds,
        first_byte_timeout_seconds,
        idle_timeout_seconds,
        models,
        apps,
    }
);
setting_keys!(PRICE_KEYS, PriceSettings { model, input_per_million, output_per_million, currency });
setting_keys!(
    MODEL_LIMIT_KEYS,
    ModelLimitSettings { model, request_limit, request_limit_period_seconds, usage_limit, usage_limit_period_seconds }
);

/// The top-level keys that are arrays of tables (`[[listeners]]`...): in the file only.
pub const ARRAY_OF_TABLES_KEYS: &[&str] = &["listeners", "regions", "upstreams", "prices", "model_limits"];

/// Everything `serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// PostgreSQL (`postgres://...`) for many nodes; SQLite in `data_dir` when `None`.
    pub database_url: Option<String>,
    /// How often a node reads the change feed even without a notification.
    pub feed_poll_interval_milliseconds: u64,
    pub listeners: Vec<ListenerSettings>,
    pub default_region: String,
    pub trusted_proxies: Vec<String>,
    pub max_staleness_seconds: u64,
    pub demo_upstream: bool,
    pub master_key_file: Option<PathBuf>,
    pub regions: RegionTable,
    /// Lifetime of a console/CLI session.
    pub session_lifetime_seconds: i64,
    pub upstreams: Vec<UpstreamSettings>,
    /// Largest model-call body forwarded (default 10 MiB).
    pub body_limit_bytes: usize,
    /// Failed authentications one address (IPv6: one /64) may make per minute before 429.
    pub failed_authentications_per_minute: u32,
    /// Failed logins (API and console) one address (IPv6: one /64) may make per minute;
    /// past it, logins from there answer 429 before any password is checked.
    pub failed_logins_per_minute: u32,
    /// How often in-memory usage counters are written to the store.
    pub usage_flush_interval_milliseconds: u64,
    /// How long a client may take to send a request's headers, from its first byte.
    pub header_read_timeout_seconds: u64,
    /// How long a client may take to send a request's body, once keygate reads it.
    pub body_read_timeout_seconds: u64,
    /// How long a keep-alive connection may sit between requests before it is closed.
    pub idle_timeout_seconds: u64,
    /// How long a client of a TLS listener may take to finish its handshake.
    pub tls_handshake_timeout_seconds: u64,
    /// Most connections served at once on each listener; `None`: derived at start from the
    /// open-file limit (see `crate::connections`).
    pub max_connections: Option<usize>,
    /// How many single-threaded runtimes serve the connections (each on a thread of its
    /// own, a connection on one of them for its whole life); `Some(0)`: the connections run
    /// on the process's multi-threaded runtime with everything else; `None`: one per core
    /// (`crate::connection_runtimes`).
    pub connection_runtimes: Option<usize>,
    /// Temporary keys one API key may mint per minute; past it, 429.
    pub temporary_keys_per_minute: u32,
    /// A listener of its own for `/metrics` (no other route, no token needed there).
    pub metrics_listen: Option<SocketAddr>,
    /// With it, `/metrics` on the ordinary listeners needs `Authorization: Bearer <token>`;
    /// without it, those listeners answer `/metrics` only to loopback clients.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Log lines as text or JSON (the per-call line included).
    pub log_format: LogFormat,
    /// Usage rows older than this are deleted (docs/CONTRACT.md#usage).
    pub usage_retention_days: u32,
    /// Minute rows older than this are rolled up into hours.
    pub usage_hourly_after_days: u32,
    /// Hour rows older than this are rolled up into days.
    pub usage_daily_after_days: u32,
    /// Prices of models, by model name (`[[prices]]`; the demo models cost nothing).
    pub prices: Vec<PriceSettings>,
    /// Token accounting of model calls (on). Off, answers are relayed without being read
    /// for usage and calls are counted per key only (`requestCount`); the benchmark of
    /// accounting's cost compares the two.
    pub token_accounting: bool,
    /// The platform default limits of catalog models (`[[model_limits]]`).
    pub model_limits: Vec<ModelLimitSettings>,
    /// Redis (`redis://host:6379/0`), where every node counts the limits' windows together;
    /// without it each node counts in memory and enforces its share (`crate::limiter`).
    pub redis_url: Option<String>,
    /// What every Redis key of keygate starts with (several deployments may share one Redis).
    pub redis_key_prefix: String,
    /// How long a call to Redis may take before the limits count without it.
    pub redis_timeout_milliseconds: u64,
    /// With Redis unreachable, refuse limited calls (503) instead of counting each node's
    /// share in memory (the default).
    pub limits_fail_closed: bool,
    /// How often a node on PostgreSQL writes its heartbeat and counts the live nodes; a
    /// node not seen for three of them no longer counts.
    pub node_heartbeat_seconds: u64,
}

impl Settings {
    /// Defaults for a data directory: one listener on 127.0.0.1:8080 in ap-southeast-1.
    pub fn with_data_dir(data_dir: PathBuf) -> Settings {
        Settings {
            data_dir,
            database_url: None,
            feed_poll_interval_milliseconds: 1000,
            listeners: vec![ListenerSettings::plain(DEFAULT_LISTEN_ADDRESS.parse().expect("valid default"), DEFAULT_REGION)],
            default_region: DEFAULT_REGION.to_string(),
            trusted_proxies: Vec::new(),
            max_staleness_seconds: 10,
            demo_upstream: true,
            master_key_file: None,
            regions: RegionTable::model_studio_default(),
            session_lifetime_seconds: 12 * 3600,
            upstreams: Vec::new(),
            body_limit_bytes: 10 * 1024 * 1024,
            failed_authentications_per_minute: 30,
            failed_logins_per_minute: 10,
            usage_flush_interval_milliseconds: 2000,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            idle_timeout_seconds: 75,
            tls_handshake_timeout_seconds: 10,
            max_connections: None,
            connection_runtimes: None,
            temporary_keys_per_minute: 60,
            metrics_listen: None,
            metrics_token: None,
            log_format: LogFormat::Text,
            usage_retention_days: 400,
            usage_hourly_after_days: 7,
            usage_daily_after_days: 90,
            prices: Vec::new(),
            token_accounting: true,
            model_limits: Vec::new(),
            redis_url: None,
            redis_key_prefix: "keygate:".to_string(),
            redis_timeout_milliseconds: 50,
            limits_fail_closed: false,
            node_heartbeat_seconds: 5,
        }
    }

    /// [`Settings::body_read_timeout_seconds`] as a duration.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.body_read_timeout_seconds)
    }

    /// Applies a settings file over the defaults: each setting the file has replaces the
    /// default (a list only when it is not empty).
    pub fn apply_file(&mut self, file: SettingsFile) -> anyhow::Result<()> {
        overlay(&mut self.database_url, file.database_url);
        overlay(&mut self.feed_poll_interval_milliseconds, file.feed_poll_interval_milliseconds);
        overlay(&mut self.data_dir, file.data_dir);
        overlay(&mut self.max_staleness_seconds, file.max_staleness_seconds);
        overlay(&mut self.master_key_file, file.master_key_file);
        overlay(&mut self.default_region, file.default_region);
        overlay(&mut self.trusted_proxies, file.trusted_proxies);
        overlay(&mut self.demo_upstream, file.demo_upstream);
        overlay(&mut self.metrics_listen, file.metrics_listen);
        overlay(&mut self.body_limit_bytes, file.body_limit_bytes);
        overlay(&mut self.failed_authentications_per_minute, file.failed_authentications_per_minute);
        overlay(&mut self.failed_logins_per_minute, file.failed_logins_per_minute);
        overlay(&mut self.header_read_timeout_seconds, file.header_read_timeout_seconds);
        overlay(&mut self.body_read_timeout_seconds, file.body_read_timeout_seconds);
        overlay(&mut self.idle_timeout_seconds, file.idle_timeout_seconds);
        overlay(&mut self.tls_handshake_timeout_seconds, file.tls_handshake_timeout_seconds);
        overlay(&mut self.max_connections, file.max_connections);
        overlay(&mut self.connection_runtimes, file.connection_runtimes);
        overlay(&mut self.temporary_keys_per_minute, file.temporary_keys_per_minute);
        overlay(&mut self.log_format, file.log_format);
        overlay(&mut self.usage_flush_interval_milliseconds, file.usage_flush_interval_milliseconds);
        overlay(&mut self.usage_retention_days, file.usage_retention_days);
        overlay(&mut self.usage_hourly_after_days, file.usage_hourly_after_days);
        overlay(&mut self.usage_daily_after_days, file.usage_daily_after_days);
        overlay(&mut self.token_accounting, file.token_accounting);
        overlay(&mut self.redis_url, file.redis_url);
        overlay(&mut self.redis_key_prefix, file.redis_key_prefix);
        overlay(&mut self.redis_timeout_milliseconds, file.redis_timeout_milliseconds);
        overlay(&mut self.limits_fail_closed, file.limits_fail_closed);
        overlay(&mut self.node_heartbeat_seconds, file.node_heartbeat_seconds);
        // A list in the file replaces the default only when it is not empty.
        overlay(&mut self.listeners, non_empty(file.listeners));
        overlay(&mut self.upstreams, non_empty(file.upstreams));
        overlay(&mut self.prices, non_empty(file.prices));
        overlay(&mut self.model_limits, non_empty(file.model_limits));
        for region_override in file.regions {
            let policy = self
                .regions
                .get_mut(&region_override.id)
                .with_context(|| format!("[[regions]] names unknown region '{}'", region_override.id))?;
            overlay(&mut policy.key_limit, region_override.key_limit);
            overlay(&mut policy.workspace_limit, region_override.workspace_limit);
        }
        Ok(())
    }

    /// Checks that every region named is known.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.listeners.iter().all(|listener| listener.plan) {
            bail!("at least one listener that is not a plan listener is needed (it serves the management API and the console)");
        }
        self.regions.require(&self.default_region).map_err(anyhow::Error::msg)?;
        for listener in &self.listeners {
            self.regions.require(&listener.region).map_err(|error| anyhow::anyhow!("listener {}: {error}", listener.addr))?;
            if listener.tls_certificate_file.is_some() != listener.tls_key_file.is_some() {
                bail!("listener {}: tls_certificate_file and tls_key_file go together (both for HTTPS, neither for HTTP)", listener.addr);
            }
        }
        for upstream in &self.upstreams {
            if upstream.openai_base_url.is_none() && upstream.dashscope_base_url.is_none() && upstream.anthropic_base_url.is_none() {
                bail!("upstream '{}' needs at least one of openai_base_url, dashscope_base_url, anthropic_base_url", upstream.name);
            }
            for app in &upstream.apps {
                keygate_core::ids::AppId::parse(app).map_err(|error| anyhow::anyhow!("upstream '{}': {error}", upstream.name))?;
            }
        }
        for (name, seconds) in [
            ("header_read_timeout_seconds", self.header_read_timeout_seconds),
            ("body_read_timeout_seconds", self.body_read_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("tls_handshake_timeout_seconds", self.tls_handshake_timeout_seconds),
        ] {
            if seconds == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.max_connections == Some(0) {
            bail!("max_connections must be at least 1 (leave it out to derive it from the open-file limit)");
        }
        if self.connection_runtimes.is_some_and(|count| count > MAX_CONNECTION_RUNTIMES) {
            bail!("connection_runtimes must be at most {MAX_CONNECTION_RUNTIMES} (0: the connections share the main runtime)");
        }
        if self.usage_flush_interval_milliseconds == 0 {
            bail!("usage_flush_interval_milliseconds must be at least 1");
        }
        if self.redis_timeout_milliseconds == 0 || self.node_heartbeat_seconds == 0 {
            bail!("redis_timeout_milliseconds and node_heartbeat_seconds must be at least 1");
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
                bail!("redis_url must start with redis://, rediss:// or unix://");
            }
        }
        if !(self.usage_hourly_after_days <= self.usage_daily_after_days && self.usage_daily_after_days <= self.usage_retention_days) {
            bail!("usage ages must be in order: usage_hourly_after_days <= usage_daily_after_days <= usage_retention_days");
        }
        self.price_table()?;
        let catalog = self.catalog();
        for limit in &self.model_limits {
            if !catalog.contains(&limit.model) {
                bail!("[[model_limits]] model '{}' is not in the catalog", limit.model);
            }
            limit.values().check().map_err(|error| anyhow::anyhow!("[[model_limits]] model '{}': {error}", limit.model))?;
            if limit.values().is_empty() {
                bail!("[[model_limits]] model '{}' sets no limit", limit.model);
            }
        }
        for proxy in &self.trusted_proxies {
            keygate_core::ip_allowlist::IpNetwork::parse(proxy).map_err(|error| anyhow::anyhow!("trusted_proxies: {error}"))?;
        }
        Ok(())
    }

    /// The model catalog: the built-in names, the demo models (when on) and every model an
    /// upstream serves.
    pub fn catalog(&self) -> ModelCatalog {
        let mut catalog = ModelCatalog::built_in(self.demo_upstream);
        for upstream in &self.upstreams {
            for model in &upstream.models {
                catalog.add(model, model, false);
            }
        }
        for limit in &self.model_limits {
            catalog.set_default_limit(&limit.model, limit.values());
        }
        catalog
    }

    /// The price of every priced model: the `[[prices]]` table, and the demo models at zero
    /// (when the demo is on and the table does not price them).
    pub fn price_table(&self) -> anyhow::Result<std::collections::HashMap<String, keygate_core::usage::ModelPrice>> {
        use keygate_core::usage::{parse_price, ModelPrice};
        let mut table = std::collections::HashMap::new();
        if self.demo_upstream {
            for model in keygate_core::catalog::DEMO_MODELS {
                let free = ModelPrice { input_micros_per_million: 0, output_micros_per_million: 0, currency: "USD".into() };
                table.insert(model.to_string(), free);
            }
        }
        for price in &self.prices {
            let parse = |text: &str| parse_price(text).map_err(|error| anyhow::anyhow!("[[prices]] model '{}': {error}", price.model));
            if price.currency.trim().is_empty() {
                bail!("[[prices]] model '{}': currency is empty", price.model);
            }
            table.insert(
                price.model.clone(),
                ModelPrice {
                    input_micros_per_million: parse(&price.input_per_million)?,
                    output_micros_per_million: parse(&price.output_per_million)?,
                    currency: price.currency.clone(),
                },
            );
        }
        Ok(table)
    }

    /// Region ids of all listeners (plan listeners too: their keys are managed in their
    /// region), deduplicated, in listener order.
    pub fn served_regions(&self) -> Vec<String> {
        let mut regions: Vec<String> = Vec::new();
        for listener in &self.listeners {
            if !regions.contains(&listener.region) {
                regions.push(listener.region.clone());
            }
        }
        regions
    }
}

/// Replaces `setting` with the file's value, when the file has one. A setting that may be
/// unset (`Option<T>`) takes a `T` from the file: an absent one leaves it as it is.
fn overlay<T, FileValue: Into<T>>(setting: &mut T, from_file: Option<FileValue>) {
    if let Some(value) = from_file {
        *setting = value.into();
    }
}

/// A list from the file, when it names at least one entry: an empty list keeps the default.
fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGURATION_REFERENCE: &str = include_str!("../../../docs/CONFIG.md");

    /// The keys of every table of `text` (top level and `[[...]]` arrays), with the table's name.
    fn keys_of(text: &str) -> Vec<(String, String)> {
        let document: toml::Table = toml::from_str(text).expect("the example is TOML");
        let mut keys = Vec::new();
        for (key, value) in &document {
            match value {
                toml::Value::Array(tables) if tables.iter().all(toml::Value::is_table) => {
                    keys.push((String::new(), key.clone()));
                    for table in tables {
                        for inner in table.as_table().into_iter().flat_map(|table| table.keys()) {
                            keys.push((key.clone(), inner.clone()));
                        }
                    }
                }
                _ => keys.push((String::new(), key.clone())),
            }
        }
        keys
    }

    #[test]
    fn a_listener_has_both_tls_files_or_neither() {
        let file: SettingsFile =
            toml::from_str("[[listeners]]\naddr = \"127.0.0.1:8443\"\nregion = \"ap-southeast-1\"\ntls_certificate_file = \"cert.pem\"\n")
                .expect("the file loads");
        let mut settings = Settings::with_data_dir(PathBuf::from("unused"));
        settings.apply_file(file).unwrap();
        let error = settings.validate().expect_err("a certificate without its key");
        assert!(error.to_string().contains("tls_certificate_file and tls_key_file go together"), "{error}");
        settings.listeners[0].tls_key_file = Some(PathBuf::from("key.pem"));
        settings.validate().expect("both files");
        assert_eq!(settings.listeners[0].tls_files(), Some((Path::new("cert.pem"), Path::new("key.pem"))));
        settings.tls_handshake_timeout_seconds = 0;
        assert!(settings.validate().unwrap_err().to_string().contains("tls_handshake_timeout_seconds must be at least 1"));
    }

    #[test]
    fn the_configuration_reference_names_every_setting() {
        let example = CONFIGURATION_REFERENCE
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/CONFIG.md has a complete example in a toml block");
        // It loads as it is, and so uses no key the code does not know (unknown keys are refused).
        let file: SettingsFile = toml::from_str(example).expect("the complete example loads");
        // And it sets every key the code knows: a setting added without documenting it leaves
        // a None or an empty list here.
        let debug = format!("{file:?}");
        assert!(!debug.contains("None"), "the complete example leaves a setting out: {debug}");
        assert!(!debug.contains("[]"), "the complete example leaves a list out: {debug}");
        let mut settings = Settings::with_data_dir(PathBuf::from("unused"));
        settings.apply_file(file).expect("the example applies");
        settings.validate().expect("the example is valid");
        // Every key has a row in a table of the reference.
        for (table, key) in keys_of(example) {
            let row = format!("| `{key}` |");
            assert!(CONFIGURATION_REFERENCE.contains(&row), "docs/CONFIG.md has no row for `{key}` (table `{table}`)");
        }
    }

    /// The rows of the reference's table under `heading`, by key: its cells after the key.
    fn rows_under(heading: &str) -> std::collections::HashMap<String, Vec<String>> {
        let section =
            CONFIGURATION_REFERENCE.split(&format!("\n{heading}\n")).nth(1).unwrap_or_else(|| panic!("no `{heading}` in docs/CONFIG.md"));
        let section = section.split("\n#").next().unwrap_or_default();
        section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|line| {
                let (key, rest) = line.split_once("` |")?;
                let cells = rest.trim_end_matches('|').split(" | ").map(|cell| cell.trim().to_string()).collect();
                Some((key.to_string(), cells))
            })
            .collect()
    }

    /// Every key of every table of the file, as the structs have them (the lists are held to
    /// the structs' fields at compile time by `setting_keys!`), has a row in its table of
    /// docs/CONFIG.md with a type, a default and a meaning; every top-level key its
    /// environment variable.
    #[test]
    fn every_setting_has_its_row_default_and_environment_variable_in_the_reference() {
        let tables: [(&str, &[&str], usize); 6] = [
            ("### Top-level keys", TOP_LEVEL_KEYS, 4),
            ("### `[[listeners]]`", LISTENER_KEYS, 3),
            ("### `[[regions]]`", REGION_KEYS, 3),
            ("### `[[upstreams]]`", UPSTREAM_KEYS, 3),
            ("### `[[prices]]`", PRICE_KEYS, 3),
            ("### `[[model_limits]]`", MODEL_LIMIT_KEYS, 3),
        ];
        for (heading, keys, columns) in tables {
            let rows = rows_under(heading);
            for key in keys {
                let cells = rows.get(*key).unwrap_or_else(|| panic!("docs/CONFIG.md, {heading}: no row for `{key}`"));
                assert_eq!(cells.len(), columns, "docs/CONFIG.md, {heading}, `{key}`: {cells:?}");
                assert!(cells.iter().all(|cell| !cell.is_empty()), "docs/CONFIG.md, {heading}, `{key}` has an empty cell: {cells:?}");
            }
            let documented: Vec<&String> = rows.keys().filter(|key| !keys.contains(&key.as_str())).collect();
            assert!(documented.is_empty(), "docs/CONFIG.md, {heading}, documents keys the code does not have: {documented:?}");
        }
        let top_level = rows_under("### Top-level keys");
        for key in TOP_LEVEL_KEYS {
            let environment = &top_level[*key][2];
            let expected =
                if ARRAY_OF_TABLES_KEYS.contains(key) { "file only".to_string() } else { format!("`{}`", environment_variable(key)) };
            assert_eq!(environment, &expected, "docs/CONFIG.md: the environment variable of `{key}`");
        }
    }

    #[test]
    fn environment_variables_set_each_top_level_key_and_a_bad_one_is_named() {
        let environment: std::collections::HashMap<&str, &str> = [
            ("KEYGATE_DEMO_UPSTREAM", "false"),
            ("KEYGATE_LOG_FORMAT", "json"),
            ("KEYGATE_TRUSTED_PROXIES", r#"["10.0.0.0/8"]"#),
            ("KEYGATE_BODY_LIMIT_BYTES", "2048"),
            ("KEYGATE_REDIS_URL", "redis://cache:6379/0"),
            ("KEYGATE_METRICS_LISTEN", "127.0.0.1:9100"),
            ("KEYGATE_DATABASE_URL", ""),
        ]
        .into_iter()
        .collect();
        let file = SettingsFile::from_environment(|name| environment.get(name).map(|value| value.to_string())).unwrap();
        let mut settings = Settings::with_data_dir(PathBuf::from("unused"));
        settings.apply_file(file).unwrap();
        assert!(!settings.demo_upstream);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.trusted_proxies, ["10.0.0.0/8"]);
        assert_eq!(settings.body_limit_bytes, 2048);
        assert_eq!(settings.redis_url.as_deref(), Some("redis://cache:6379/0"));
        assert_eq!(settings.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(settings.database_url, None, "an empty variable is unset");
        let refused =
            SettingsFile::from_environment(|name| (name == "KEYGATE_IDLE_TIMEOUT_SECONDS").then(|| "soon".to_string())).unwrap_err();
        assert!(refused.to_string().starts_with("KEYGATE_IDLE_TIMEOUT_SECONDS: "), "{refused}");
    }

    #[test]
    fn connection_runtimes_default_to_one_per_core_and_zero_shares_the_main_runtime() {
        let mut settings = Settings::with_data_dir(PathBuf::from("unused"));
        assert_eq!(settings.connection_runtimes, None, "left out: one per core");
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(crate::connection_runtimes::runtime_count(settings.connection_runtimes), cores);
        let zero = SettingsFile::from_environment(|name| (name == "KEYGATE_CONNECTION_RUNTIMES").then(|| "0".to_string())).unwrap();
        settings.apply_file(zero).unwrap();
        assert_eq!(settings.connection_runtimes, Some(0));
        assert_eq!(crate::connection_runtimes::runtime_count(settings.connection_runtimes), 0);
        settings.validate().unwrap();
        settings.connection_runtimes = Some(MAX_CONNECTION_RUNTIMES + 1);
        let refused = settings.validate().unwrap_err().to_string();
        assert!(refused.starts_with("connection_runtimes must be at most"), "{refused}");
    }
}
