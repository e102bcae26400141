//! What the benchmark clients share: `--name value` arguments, a management client that logs
//! in with a session and changes keys, and a summary of latencies (min, p50, p90, p99, max).

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// `--name value` pairs from the command line.
pub struct Arguments {
    values: HashMap<String, String>,
}

impl Arguments {
    pub fn from_command_line(usage: &str) -> anyhow::Result<Arguments> {
        let mut values = HashMap::new();
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            if word == "--help" || word == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = word.strip_prefix("--") else { bail!("unexpected argument '{word}'\n{usage}") };
            let value = words.next().with_context(|| format!("--{name} needs a value\n{usage}"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Arguments { values })
    }

    /// The value of `--name`, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.values.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    /// The value of `--name` as a number, or `default`.
    pub fn number(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        match self.values.get(name) {
            Some(text) => text.parse().with_context(|| format!("--{name} must be a whole number, not '{text}'")),
            None => Ok(default),
        }
    }
}

/// Calls keygate's management API on one node with a session token.
#[derive(Clone)]
pub struct ManagementClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ManagementClient {
    /// Logs in as the account `root` on `base` (e.g. http://127.0.0.1:18101).
    pub async fn login(base: &str, password: &str) -> anyhow::Result<ManagementClient> {
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/keygate/v1/sessions"))
            .json(&json!({"account": "root", "password": password}))
            .send()
            .await
            .with_context(|| format!("logging in on {base}"))?
            .json()
            .await?;
        let token = answer["token"].as_str().with_context(|| format!("login on {base} refused: {answer}"))?.to_string();
        Ok(ManagementClient { http, base: base.to_string(), token })
    }

    /// The same session on another node (sessions live in the shared database).
    pub fn on_node(&self, base: &str) -> ManagementClient {
        ManagementClient { http: reqwest::Client::new(), base: base.to_string(), token: self.token.clone() }
    }

    /// Sends `method path` and returns the JSON answer once it has been read whole; fails on
    /// anything but 200.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-acs-bearer-token", &self.token)
            .header("accept", "application/json")
            .send()
            .await
            .with_context(|| format!("{method} {path} on {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.with_context(|| format!("{method} {path}: the answer is not JSON"))?;
        if status != reqwest::StatusCode::OK {
            bail!("{method} {path} on {} answered {status}: {body}", self.base);
        }
        Ok(body)
    }

    /// Creates an `All` key in the default workspace; returns its id and plaintext.
    pub async fn create_key(&self) -> anyhow::Result<(i64, String)> {
        let body = self.call(reqwest::Method::POST, "/modelstudio/apikeys").await?;
        let id = body.pointer("/apiKey/apiKeyId").and_then(Value::as_i64).with_context(|| format!("no apiKeyId in {body}"))?;
        let plaintext = body.pointer("/apiKey/apiKeyValue").and_then(Value::as_str).context("no apiKeyValue")?.to_string();
        Ok((id, plaintext))
    }

    pub async fn disable_key(&self, id: i64) -> anyhow::Result<()> {
        self.call(reqwest::Method::PUT, &format!("/modelstudio/apikeys/{id}/disable")).await.map(drop)
    }

    pub async fn enable_key(&self, id: i64) -> anyhow::Result<()> {
        self.call(reqwest::Method::PUT, &format!("/modelstudio/apikeys/{id}/enable")).await.map(drop)
    }
}

/// Latencies, sorted.
pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn new(mut samples: Vec<Duration>) -> Summary {
        samples.sort();
        Summary { sorted: samples }
    }

    /// The nearest-rank percentile (`percent` in 0..=100).
    pub fn percentile(&self, percent: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((percent / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// `n=.. min=.. p50=.. p90=.. p99=.. max=..` in milliseconds.
    pub fn line(&self) -> String {
        let milliseconds = |duration: Duration| format!("{:.2}", duration.as_secs_f64() * 1000.0);
        format!(
            "n={} min={} p50={} p90={} p99={} max={} (ms)",
            self.sorted.len(),
            milliseconds(self.percentile(0.0)),
            milliseconds(self.percentile(50.0)),
            milliseconds(self.percentile(90.0)),
            milliseconds(self.percentile(99.0)),
            milliseconds(self.percentile(100.0)),
        )
    }
}
