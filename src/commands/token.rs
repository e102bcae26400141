//! `keygate token`: mints a temporary key (`st-...`) from the permanent key in
//! `DASHSCOPE_API_KEY`, through the server's `POST /api/v1/tokens`. The permanent key is
//! read only from the environment, never from an argument (it would land in shell history).

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use keygate_wire::data_plane::{DataPlaneError, MintedTemporaryKey};

use super::client::{parse_server_url, print_json, server_text, DEFAULT_SERVER};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Lifetime in seconds, 1 to 1800.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=1800))]
    pub ttl: i64,
    /// The keygate server [default: KEYGATE_SERVER, else DASHSCOPE_HTTP_BASE_URL without /api/v1, else http://127.0.0.1:8080].
    #[arg(long, env = "KEYGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Print {"token", "expires_at"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The server: `--server`, else the dashscope SDK's base URL without its `/api/v1`.
fn server_of(arguments: &TokenArgs) -> anyhow::Result<String> {
    if let Some(server) = arguments.server.as_deref().map(str::trim).filter(|server| !server.is_empty()) {
        return Ok(server.to_string());
    }
    if let Ok(base) = std::env::var("DASHSCOPE_HTTP_BASE_URL") {
        let trimmed = base.trim().trim_end_matches('/');
        if !trimmed.is_empty() {
            return Ok(trimmed.strip_suffix("/api/v1").unwrap_or(trimmed).to_string());
        }
    }
    Ok(DEFAULT_SERVER.to_string())
}

pub async fn run(arguments: TokenArgs) -> anyhow::Result<ExitCode> {
    let key = std::env::var("DASHSCOPE_API_KEY").ok().map(|key| key.trim().to_string()).filter(|key| !key.is_empty());
    let Some(key) = key else {
        bail!("DASHSCOPE_API_KEY is not set in this environment; set it to a permanent key (see `keygate env setup`)");
    };
    let server = parse_server_url(&server_of(&arguments)?)?;
    let url = format!("{}/api/v1/tokens?expire_in_seconds={}", server_text(&server), arguments.ttl);
    let response =
        reqwest::Client::new().post(&url).bearer_auth(&key).send().await.with_context(|| format!("calling {}", server_text(&server)))?;
    let status = response.status();
    let bytes = response.bytes().await.context("reading the server's answer")?;
    if !status.is_success() {
        let refusal: DataPlaneError = serde_json::from_slice(&bytes).context("the server's answer is not JSON")?;
        let code = if refusal.code.is_empty() { "Error" } else { &refusal.code };
        eprintln!("error: {code}: {} (request id {})", refusal.message, refusal.request_id);
        return Ok(ExitCode::FAILURE);
    }
    let minted: MintedTemporaryKey = serde_json::from_slice(&bytes).context("the server's answer has no token")?;
    if arguments.json {
        print_json(&serde_json::json!({"token": minted.token, "expires_at": minted.expires_at}))?;
    } else {
        println!("{}", minted.token);
        eprintln!("valid for {} seconds (until Unix time {})", arguments.ttl, minted.expires_at);
    }
    Ok(ExitCode::SUCCESS)
}
