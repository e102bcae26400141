//! `keygate serve`: resolves settings from the TOML file and flags, bootstraps, prints the
//! generated root password once, serves until Ctrl-C or SIGTERM (SIGHUP reads the HTTPS
//! listeners' certificates again).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use keygate_server::settings::{ListenerSettings, LogFormat, Settings, SettingsFile, DEFAULT_DATA_DIR};
use keygate_server::Server;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML settings file; flags and environment variables win over it.
    #[arg(long, env = "KEYGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and the master key.
    #[arg(long, env = "KEYGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user@host:5432/db) for several nodes; SQLite in --data-dir when unset.
    #[arg(long, env = "KEYGATE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Redis URL (redis://host:6379/0) where every node counts the limits' windows together;
    /// without it each node enforces its share of every limit.
    #[arg(long, env = "KEYGATE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Seconds a node may go without confirming its keys against PostgreSQL before it refuses calls (503).
    #[arg(long, env = "KEYGATE_MAX_STALENESS_SECONDS")]
    pub max_staleness_seconds: Option<u64>,
    /// A listener as ADDR=REGION; repeat for several regions (default 127.0.0.1:8080=ap-southeast-1).
    #[arg(long = "listen", value_name = "ADDR=REGION")]
    pub listeners: Vec<String>,
    /// A plan listener as ADDR=REGION: Token Plan / Coding Plan paths (/v1/..., /apps/anthropic/...) for sk-sp- keys only; repeatable.
    #[arg(long = "plan-listen", value_name = "ADDR=REGION")]
    pub plan_listeners: Vec<String>,
    /// Master key file (64 hex characters); default <data-dir>/master.key. KEYGATE_MASTER_KEY wins.
    #[arg(long, env = "KEYGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Region used when none is named (e.g. by the CLI).
    #[arg(long, env = "KEYGATE_DEFAULT_REGION")]
    pub default_region: Option<String>,
    /// A listener of its own for /metrics (e.g. 127.0.0.1:9100); the ordinary listeners then
    /// do not serve /metrics. Without it they answer /metrics to KEYGATE_METRICS_TOKEN as a
    /// bearer token, or, with no token set, only to clients on this machine not behind a proxy.
    #[arg(long, env = "KEYGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Log lines as text or as one JSON object per line (every line of a request with its request_id).
    #[arg(long, env = "KEYGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// The metrics token, from `KEYGATE_METRICS_TOKEN` only: a flag would show it in `ps`.
fn metrics_token_from_environment() -> Option<SecretString> {
    std::env::var("KEYGATE_METRICS_TOKEN").ok().filter(|token| !token.trim().is_empty()).map(SecretString::from)
}

/// Builds the settings: defaults, then the file, then `KEYGATE_<KEY>` variables, then flags.
pub fn resolve_settings(arguments: &ServeArgs) -> anyhow::Result<Settings> {
    let mut settings = Settings::with_data_dir(PathBuf::from(DEFAULT_DATA_DIR));
    if let Some(path) = &arguments.config {
        settings.apply_file(SettingsFile::load(path)?)?;
    }
    settings.apply_file(SettingsFile::from_environment(|name| std::env::var(name).ok())?)?;
    if let Some(data_dir) = &arguments.data_dir {
        settings.data_dir = data_dir.clone();
    }
    if let Some(url) = arguments.database_url.as_deref().filter(|url| !url.is_empty()) {
        settings.database_url = Some(url.to_string());
    }
    if let Some(url) = arguments.redis_url.as_deref().filter(|url| !url.is_empty()) {
        settings.redis_url = Some(url.to_string());
    }
    if let Some(seconds) = arguments.max_staleness_seconds {
        settings.max_staleness_seconds = seconds;
    }
    if !arguments.listeners.is_empty() {
        settings.listeners = arguments.listeners.iter().map(|text| ListenerSettings::parse(text)).collect::<anyhow::Result<_>>()?;
    }
    if !arguments.plan_listeners.is_empty() {
        // Plan listeners from flags replace those of the file, and keep its ordinary ones.
        settings.listeners.retain(|listener| !listener.plan);
        for text in &arguments.plan_listeners {
            settings.listeners.push(ListenerSettings::parse_plan(text)?);
        }
    }
    if let Some(file) = &arguments.master_key_file {
        settings.master_key_file = Some(file.clone());
    }
    if let Some(region) = &arguments.default_region {
        settings.default_region = region.clone();
    }
    if arguments.metrics_listen.is_some() {
        settings.metrics_listen = arguments.metrics_listen;
    }
    if let Some(format) = &arguments.log_format {
        settings.log_format = if format == "json" { LogFormat::Json } else { LogFormat::Text };
    }
    settings.metrics_token = metrics_token_from_environment();
    settings.validate()?;
    Ok(settings)
}

/// The console's URL on `address`: an unspecified address (`0.0.0.0`, `[::]`) is
/// reachable on this machine through loopback, which a browser can open.
fn console_url(address: std::net::SocketAddr) -> String {
    let mut shown = address;
    if address.ip().is_unspecified() {
        shown.set_ip(if address.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    format!("http://{shown}/console")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub async fn run(arguments: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = resolve_settings(&arguments)?;
    keygate_server::logging::init(settings.log_format);
    let root_password = std::env::var("KEYGATE_ROOT_PASSWORD").ok().filter(|value| !value.is_empty()).map(SecretString::from);
    let server = Server::bind(settings.clone(), root_password).await.context("starting keygate")?;
    // The keys are loaded: what the load freed goes back now, not seconds later.
    crate::allocator::release_freed_memory();
    if let Some(password) = &server.generated_root_password {
        // Printed once, on the terminal, never into the log.
        println!("keygate: created account 'root' with password: {}", password.expose_secret());
        println!("keygate: store it now; it is not shown again (set KEYGATE_ROOT_PASSWORD on first start to choose it).");
    }
    let tls_addresses = server.tls_addresses();
    let scheme = |address: &std::net::SocketAddr| if tls_addresses.contains(address) { "https" } else { "http" };
    for (address, region) in server.local_addresses() {
        let storage = match &settings.database_url {
            Some(_) => "PostgreSQL".to_string(),
            None => format!("SQLite in {}", settings.data_dir.display()),
        };
        tracing::info!(%address, %region, %storage, "listening");
        println!("keygate: listening on {}://{address} (region {region})", scheme(&address));
    }
    if let Some((address, _)) = server.local_addresses().first() {
        println!("keygate: console on {}", console_url(*address));
    }
    for (address, region) in server.plan_addresses() {
        tracing::info!(%address, %region, "listening for plan keys");
        println!("keygate: plan endpoint on {}://{address} (region {region}; sk-sp- keys only)", scheme(&address));
    }
    if let Some(address) = server.metrics_address() {
        tracing::info!(%address, "serving /metrics");
        println!("keygate: /metrics on http://{address}/metrics");
    }
    server.run(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
