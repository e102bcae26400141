//! `keygate keys ...`: API keys through the Model Studio API of a running server (query
//! parameters, form bodies, the session token in `x-acs-bearer-token`), in the region of
//! the listener the CLI talks to; `import` (in [`import`]) uses keygate's own API.

mod import;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keygate_wire::envelope::Empty;
use keygate_wire::keygate_api::{EndGraceResponse, KeyBudget, KeyBudgetStanding, KeyLimits, UsageFigures};
use keygate_wire::model_studio::{ApiKey, ApiKeyAuth, ApiKeyResponse, AuthType, ListApiKeysResponse};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{confirm, list, optional, print_fields, print_json, shorten, text, time, Client, ClientOptions, RequestBody, Table};
use super::pages::fetch_pages;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Custom permissions of a key (Model Studio's `auth.*` fields).
#[derive(Debug, Clone, Args)]
pub struct PermissionArgs {
    /// Custom permissions (an IP whitelist, a model scope) instead of All.
    #[arg(long)]
    pub custom: bool,
    /// With --custom: a client address or CIDR allowed to use the key; repeat or separate
    /// with commas (at most 20). None: any address.
    #[arg(long = "ip", value_name = "CIDR", requires = "custom", value_delimiter = ',')]
    pub ips: Vec<String>,
    /// With --custom: a model the key may call; repeat or separate with commas. None: every
    /// model the workspace may call.
    #[arg(long = "model", value_name = "NAME", requires = "custom", value_delimiter = ',')]
    pub models: Vec<String>,
    /// With --custom: an application (app id) of the workspace the key may call; repeat or
    /// separate with commas. None: every application of the workspace.
    #[arg(long = "app", value_name = "APP_ID", requires = "custom", value_delimiter = ',')]
    pub apps: Vec<String>,
}

impl PermissionArgs {
    /// The `auth.*` form fields; `All` unless `--custom`.
    fn form(&self, all: bool) -> Vec<(String, String)> {
        if !self.custom {
            return if all { vec![("auth.type".into(), "All".into())] } else { Vec::new() };
        }
        let mut form = vec![("auth.type".to_string(), "Custom".to_string())];
        let mut list = |prefix: &str, values: &[String]| {
            for (index, value) in values.iter().enumerate() {
                form.push((format!("{prefix}.{}", index + 1), value.clone()));
            }
        };
        list("auth.accessIps", &self.ips);
        list("auth.modelAccessScope.accessibleModels", &self.models);
        list("auth.appAccessScope.accessibleApps", &self.apps);
        form.push(("auth.modelAccessScope.allowAllModels".into(), self.models.is_empty().to_string()));
        form.push(("auth.appAccessScope.allowAllApps".into(), self.apps.is_empty().to_string()));
        form
    }
}

/// A key's own limits (docs/CONTRACT.md#per-key-limits); each flag left out limits
/// nothing at create and keeps the key's value at edit.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    rpm: Option<i64>,
    /// Tokens (input plus output) per minute.
    #[arg(long, value_name = "N")]
    tpm: Option<i64>,
    /// Calls running at once.
    #[arg(long, value_name = "N")]
    max_in_flight: Option<i64>,
    /// A budget of tokens per --budget-period.
    #[arg(long, value_name = "N")]
    budget_tokens: Option<i64>,
    /// A budget of cost per --budget-period, in the price table's currency (12.50).
    #[arg(long, value_name = "AMOUNT")]
    budget_cost: Option<String>,
    /// The budget's period: day or month (UTC).
    #[arg(long, value_name = "PERIOD")]
    budget_period: Option<String>,
}

impl LimitArgs {
    fn any(&self) -> bool {
        self.rpm.is_some()
            || self.tpm.is_some()
            || self.max_in_flight.is_some()
            || self.budget_tokens.is_some()
            || self.budget_cost.is_some()
            || self.budget_period.is_some()
    }

    /// `current` with the flags given laid over it.
    fn over(&self, current: KeyLimits) -> KeyLimits {
        let mut limits = current;
        limits.requests_per_minute = self.rpm.or(limits.requests_per_minute);
        limits.tokens_per_minute = self.tpm.or(limits.tokens_per_minute);
        limits.max_in_flight = self.max_in_flight.or(limits.max_in_flight);
        if self.budget_tokens.is_some() || self.budget_cost.is_some() || self.budget_period.is_some() {
            let mut budget = limits.budget.take().unwrap_or_default();
            budget.tokens = self.budget_tokens.or(budget.tokens);
            budget.cost = self.budget_cost.clone().or(budget.cost);
            budget.period = self.budget_period.clone().or(budget.period);
            limits.budget = Some(budget);
        }
        limits
    }
}

/// The name of the limits parameter of CreateApiKey and UpdateApiKey.
const LIMITS: &str = "keygateLimits";

fn limits_parameter(limits: &KeyLimits) -> anyhow::Result<(String, String)> {
    Ok((LIMITS.to_string(), serde_json::to_string(limits)?))
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; prints the full key once (it cannot be shown again)
    ///
    /// Examples:
    ///   keygate keys create --description "CI pipeline"
    ///   keygate keys create --workspace llm-0123456789abcdef --custom --ip 10.0.0.0/8 --model qwen-plus --model qwen-max
    ///   keygate keys create --json | jq -r .apiKey.apiKeyValue
    ///   keygate keys create --description "contractor" --expires-at 2027-01-31T00:00:00Z
    ///   keygate keys create --rpm 60 --max-in-flight 4 --budget-cost 25 --budget-period month
    #[command(verbatim_doc_comment)]
    Create {
        /// The workspace of the key (default: the account's default workspace).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// What the key is for (at most 200 characters).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// When the key stops working: an RFC 3339 time (2027-01-31T00:00:00Z) or Unix
        /// seconds, in the future (default: never).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
        #[command(flatten)]
        permissions: PermissionArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List the API keys you may see (masked): the account sees all, a RAM user its own
    ///
    /// A warning line follows the table for each key whose budget is at least 80% used or
    /// that expires within 7 days.
    ///
    /// Examples:
    ///   keygate keys list
    ///   keygate keys list --workspace llm-0123456789abcdef --description ci --all
    #[command(verbatim_doc_comment)]
    List {
        /// Only keys of this workspace.
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// Only keys whose description contains this text.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Fetch every page (by default the first 100 keys).
        #[arg(long)]
        all: bool,
    },
    /// Show one API key (masked) with its permissions, limits, remaining budget and usage
    /// (requests, tokens and cost over the retained usage).
    ///
    /// Example: keygate keys get 42
    Get {
        /// The API key id.
        id: u64,
    },
    /// Change a key's description or permissions
    ///
    /// --all, or --custom with its lists, replaces the key's current permissions.
    ///
    /// Examples:
    ///   keygate keys edit 42 --description "staging only"
    ///   keygate keys edit 42 --custom --ip 192.168.1.0/24 --model qwen-plus
    ///   keygate keys edit 42 --all
    ///   keygate keys edit 42 --expires-at 2027-06-30T00:00:00Z
    ///   keygate keys edit 42 --expires-at never
    ///   keygate keys edit 42 --rpm 120 --budget-tokens 5000000 --budget-period day
    ///   keygate keys edit 42 --clear-limits
    #[command(verbatim_doc_comment)]
    Edit {
        /// The API key id.
        id: u64,
        /// The new description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A new expiry (an RFC 3339 time or Unix seconds, in the future), or `never` to
        /// remove it.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
        /// Permission All: any address, every model and application of the workspace.
        #[arg(long, conflicts_with = "custom")]
        all: bool,
        #[command(flatten)]
        permissions: PermissionArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Remove every limit of the key first (the other limit flags, if any, are then
        /// the key's only limits).
        #[arg(long)]
        clear_limits: bool,
    },
    /// Disable a key: calls with it are refused until it is enabled again.
    ///
    /// Example: keygate keys disable 42
    Disable {
        /// The API key id.
        id: u64,
    },
    /// Enable a disabled key.
    ///
    /// Example: keygate keys enable 42
    Enable {
        /// The API key id.
        id: u64,
    },
    /// Give a key a new secret (same id and permissions); the old one stops working at
    /// once, or after --grace-seconds. Prints the new key once. Asks first on a terminal;
    /// scripts pass --yes
    ///
    /// Examples:
    ///   keygate keys reset 42
    ///   keygate keys reset 42 --grace-seconds 3600 --yes
    #[command(verbatim_doc_comment)]
    Reset {
        /// The API key id.
        id: u64,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long the old secret keeps working beside the new one (0 to 86400; default
        /// 0: it stops at once).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<u32>,
    },
    /// End the grace period of a key reset with --grace-seconds: its old secret stops
    /// working now.
    ///
    /// Example: keygate keys end-grace 42
    EndGrace {
        /// The API key id.
        id: u64,
    },
    /// Delete a key for good. Asks first on a terminal; scripts pass --yes
    ///
    /// Examples:
    ///   keygate keys delete 42
    ///   keygate keys delete 42 --yes
    #[command(verbatim_doc_comment)]
    Delete {
        /// The API key id.
        id: u64,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Bring existing sk- keys from another deployment in, as legacy keys you own
    ///
    /// The file has one key per line, or CSV `key,description` (a `key,description` header
    /// is allowed; quote a description that has commas). Blank lines and lines starting
    /// with # are skipped. Every line is checked first: a bad line (malformed, a repeat, a
    /// key already in keygate) imports nothing, unless --skip-bad imports the good ones.
    /// The keys count against the region's key limit; an import that would pass it imports
    /// nothing. Imported keys keep working, their owner may view them again
    /// (`keygate keys get ID`), and they are marked to be replaced. At most 10000 keys per
    /// file; a key is never a command-line argument.
    ///
    /// Examples:
    ///   keygate keys import --file old-keys.txt
    ///   keygate keys import --region ap-southeast-1 --workspace llm-0123456789abcdef --file keys.csv
    ///   keygate keys import --file keys.csv --skip-bad --json
    ///   export-keys | keygate keys import --file -
    #[command(verbatim_doc_comment)]
    Import {
        /// The file of keys ('-': stdin).
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// The region of the keys (default: the server's region for this connection).
        #[arg(long, value_name = "ID")]
        region: Option<String>,
        /// The workspace of the keys (default: the account's default workspace).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// Import the good lines and report the bad ones, instead of importing nothing.
        #[arg(long)]
        skip_bad: bool,
    },
}

/// `/modelstudio/apikeys/{id}` and, for an action, `/modelstudio/apikeys/{id}/{action}`.
fn key_path(id: u64, action: Option<&str>) -> Vec<String> {
    ["modelstudio", "apikeys", &id.to_string()].into_iter().chain(action).map(str::to_string).collect()
}

/// A call that answers `Body`, with the `auth.*` form when there is one.
async fn call<Body: serde::de::DeserializeOwned>(
    client: &Client,
    method: Method,
    path: &[String],
    query: &[(String, String)],
    form: &[(String, String)],
) -> anyhow::Result<super::client::Answer<Body>> {
    let body = if form.is_empty() { RequestBody::None } else { RequestBody::Form(form) };
    client.call(method, path, query, body).await
}

pub async fn run(arguments: KeysArgs) -> anyhow::Result<ExitCode> {
    let options = arguments.options;
    let (client, _session) = Client::from_session(&options)?;
    match arguments.command {
        KeysCommand::Create { workspace, description, expires_at, permissions, limits } => {
            let mut query = Vec::new();
            if let Some(description) = description {
                query.push(("description".to_string(), description));
            }
            if let Some(workspace) = workspace {
                query.push(("workspaceId".to_string(), workspace));
            }
            if let Some(expires_at) = expires_at {
                query.push((EXPIRES_AT.to_string(), expires_at));
            }
            if limits.any() {
                query.push(limits_parameter(&limits.over(KeyLimits::default()))?);
            }
            let path = ["modelstudio".to_string(), "apikeys".to_string()];
            let answer = call::<ApiKeyResponse>(&client, Method::POST, &path, &query, &permissions.form(false)).await?;
            print_new_key(&answer.body.api_key, &answer.json, options.json, "Created")?;
        }
        KeysCommand::List { workspace, description, all } => {
            let mut query = Vec::new();
            if let Some(workspace) = workspace {
                query.push(("workspaceId".into(), workspace));
            }
            if let Some(description) = description {
                query.push(("description".into(), description));
            }
            let path = ["modelstudio", "apikeys"];
            if options.json {
                let pages = fetch_pages::<ListApiKeysResponse<Value>>(&client, &path, &query, all).await?;
                if all {
                    print_json(&json!({"apiKeys": pages.items, "totalCount": pages.total_count}))?;
                } else {
                    print_json(&pages.first_page)?;
                }
            } else {
                let pages = fetch_pages::<ListApiKeysResponse>(&client, &path, &query, all).await?;
                print_key_table(&pages.items);
                for warning in pages.items.iter().filter_map(key_warning) {
                    println!("{warning}");
                }
                if (pages.items.len() as u64) < pages.total_count {
                    eprintln!("showing {} of {} keys; add --all for every page", pages.items.len(), pages.total_count);
                }
            }
        }
        KeysCommand::Get { id } => {
            let answer = call::<ApiKeyResponse>(&client, Method::GET, &key_path(id, None), &[], &[]).await?;
            if options.json {
                print_json(&answer.json)?;
            } else {
                print_key_details(&answer.body.api_key);
            }
        }
        KeysCommand::Edit { id, description, expires_at, all, permissions, limits, clear_limits } => {
            let form = permissions.form(all);
            if description.is_none() && expires_at.is_none() && form.is_empty() && !limits.any() && !clear_limits {
                anyhow::bail!("nothing to change: give --description, --expires-at, --all, --custom, a limit or --clear-limits");
            }
            let mut query: Vec<(String, String)> = description
                .into_iter()
                .map(|text| ("description".to_string(), text))
                .chain(expires_at.map(|text| (EXPIRES_AT.to_string(), text)))
                .collect();
            if clear_limits || limits.any() {
                // The server replaces a key's limits as a whole: the flags are laid over
                // the key's current limits, unless they are cleared first.
                let current = if clear_limits {
                    KeyLimits::default()
                } else {
                    let answer = call::<ApiKeyResponse>(&client, Method::GET, &key_path(id, None), &[], &[]).await?;
                    answer.body.api_key.details.and_then(|details| details.keygate_limits).unwrap_or_default()
                };
                query.push(limits_parameter(&limits.over(current))?);
            }
            let answer = call::<Empty>(&client, Method::PUT, &key_path(id, None), &query, &form).await?;
            report(&answer.json, options.json, &format!("updated API key {id}"))?;
        }
        KeysCommand::Disable { id } => {
            let answer = call::<Empty>(&client, Method::PUT, &key_path(id, Some("disable")), &[], &[]).await?;
            report(&answer.json, options.json, &format!("disabled API key {id}"))?;
        }
        KeysCommand::Enable { id } => {
            let answer = call::<Empty>(&client, Method::PUT, &key_path(id, Some("enable")), &[], &[]).await?;
            report(&answer.json, options.json, &format!("enabled API key {id}"))?;
        }
        KeysCommand::Reset { id, grace_seconds, yes } => {
            let when = match grace_seconds.filter(|seconds| *seconds > 0) {
                Some(seconds) => format!("in {seconds} seconds"),
                None => "at once".to_string(),
            };
            confirm(&format!("reset API key {id}: its current secret stops working {when}"), yes)?;
            let query: Vec<(String, String)> =
                grace_seconds.map(|seconds| ("keygateGraceSeconds".to_string(), seconds.to_string())).into_iter().collect();
            let answer = call::<ApiKeyResponse>(&client, Method::PUT, &key_path(id, Some("reset")), &query, &[]).await?;
            print_new_key(&answer.body.api_key, &answer.json, options.json, "Reset")?;
            if let Some(seconds) = grace_seconds.filter(|seconds| *seconds > 0) {
                eprintln!("The old secret keeps working for {seconds} seconds; `keygate keys end-grace {id}` stops it sooner.");
            }
        }
        KeysCommand::EndGrace { id } => {
            let path = ["keygate", "v1", "keys", &id.to_string(), "end-grace"].map(str::to_string);
            let answer = call::<EndGraceResponse>(&client, Method::POST, &path, &[], &[]).await?;
            report(&answer.json, options.json, &format!("ended the grace period of API key {id}: its old secret no longer works"))?;
        }
        KeysCommand::Delete { id, yes } => {
            let path = key_path(id, None);
            let mut question = format!("delete API key {id}");
            if !yes && std::io::stdin().is_terminal() {
                // Name the key in the question, so the wrong id is noticed.
                let key = call::<ApiKeyResponse>(&client, Method::GET, &path, &[], &[]).await?.body.api_key;
                question = match description(&key).filter(|text| !text.is_empty()) {
                    Some(description) => format!("delete API key {id} ({}, {description:?})", masked(&key)),
                    None => format!("delete API key {id} ({})", masked(&key)),
                };
            }
            confirm(&question, yes)?;
            let answer = call::<Empty>(&client, Method::DELETE, &path, &[], &[]).await?;
            report(&answer.json, options.json, &format!("deleted API key {id}"))?;
        }
        KeysCommand::Import { file, region, workspace, skip_bad } => {
            let request = import::ImportRequest {
                file: &file,
                region: region.as_deref(),
                workspace: workspace.as_deref(),
                skip_bad,
                json_output: options.json,
            };
            return import::run_import(&client, request).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A change's answer: the envelope with --json, else one line.
pub fn report(response: &Value, json_output: bool, line: &str) -> anyhow::Result<()> {
    if json_output {
        print_json(response)
    } else {
        println!("{line}");
        Ok(())
    }
}

fn masked(key: &ApiKey) -> String {
    let masked = if key.masked_key.is_empty() { &key.api_key_value } else { &key.masked_key };
    text(masked)
}

/// What Create, Get and List answer besides the key (Reset does not).
fn description(key: &ApiKey) -> Option<&str> {
    key.details.as_ref().map(|details| details.description.as_str())
}

fn auth(key: &ApiKey) -> Option<&ApiKeyAuth> {
    key.details.as_ref().map(|details| &details.auth)
}

/// The query parameter of an expiry, keygate's extension of CreateApiKey and UpdateApiKey.
const EXPIRES_AT: &str = "keygateExpiresAt";

fn status(key: &ApiKey) -> &'static str {
    match key.standing.as_ref() {
        Some(standing) if standing.disabled != 0 => "disabled",
        Some(standing) if standing.keygate_expired => "expired",
        _ => "enabled",
    }
}

/// When the key expires: a time, or `never`.
fn expiry(key: &ApiKey) -> String {
    match key.details.as_ref().and_then(|details| details.keygate_expires_at) {
        Some(at) => time(Some(at)),
        None => "never".into(),
    }
}

fn permission(key: &ApiKey) -> String {
    optional(auth(key).map(|auth| auth.auth_type.as_str()))
}

fn print_key_table(keys: &[ApiKey]) {
    let mut table =
        Table::new(&["ID", "KEY", "WORKSPACE", "PERMISSION", "DESCRIPTION", "CREATED BY", "CREATED", "LAST USED", "EXPIRES", "STATUS"]);
    for key in keys {
        let (details, standing) = (key.details.as_ref(), key.standing.as_ref());
        // An imported key is marked, to be replaced by a new one.
        let legacy = standing.is_some_and(|standing| standing.replace_advised);
        let key_cell = if legacy { format!("{} (legacy)", masked(key)) } else { masked(key) };
        table.row(vec![
            key.api_key_id.to_string(),
            key_cell,
            text(&key.workspace_id),
            permission(key),
            shorten(&optional(description(key)), 32),
            optional(details.map(|details| details.created_by.as_str())),
            time(details.map(|details| details.gmt_create)),
            time(standing.and_then(|standing| standing.last_used_at)),
            expiry(key),
            status(key).to_string(),
        ]);
    }
    table.print_or("no API keys");
}

/// `all`, `none` or the list.
fn scope(auth: Option<&ApiKeyAuth>, allow_all: impl Fn(&ApiKeyAuth) -> bool, listed: impl Fn(&ApiKeyAuth) -> &[String]) -> String {
    match auth {
        Some(auth) if auth.auth_type == AuthType::Custom && !allow_all(auth) => {
            if listed(auth).is_empty() {
                "none".into()
            } else {
                list(listed(auth))
            }
        }
        _ => "all".into(),
    }
}

fn print_key_details(key: &ApiKey) {
    let (details, standing) = (key.details.as_ref(), key.standing.as_ref());
    let auth = auth(key);
    let workspace_id = text(&key.workspace_id);
    let workspace = match details.map(|details| details.workspace_name.as_str()).filter(|name| !name.is_empty()) {
        Some(name) => format!("{workspace_id} ({name})"),
        None => workspace_id,
    };
    let ips = match auth.map(|auth| auth.access_ips.as_slice()) {
        Some(ips) if !ips.is_empty() => list(ips),
        _ => "any".into(),
    };
    let value = text(&key.api_key_value);
    let mut fields = vec![("API key id", key.api_key_id.to_string()), ("API key", masked(key))];
    if value != masked(key) && value != "-" {
        // Legacy (imported) keys may be viewed again.
        fields.push(("Plaintext (legacy)", value));
    }
    fields.extend([
        ("Region", optional(details.map(|details| details.region.as_str()))),
        ("Workspace", workspace),
        ("Status", status(key).to_string()),
        ("Expires", expiry(key)),
        ("Old secret until", time(standing.and_then(|standing| standing.keygate_grace_ends_at))),
        ("Limits", limits_summary(details.and_then(|details| details.keygate_limits.as_ref()))),
        ("Budget", budget_summary(standing.and_then(|standing| standing.keygate_budget.as_ref()))),
        ("Permission", permission(key)),
        ("Allowed IPs", ips),
        ("Models", scope(auth, |auth| auth.model_access_scope.allow_all_models, |auth| &auth.model_access_scope.accessible_models)),
        ("Applications", scope(auth, |auth| auth.app_access_scope.allow_all_apps, |auth| &auth.app_access_scope.accessible_apps)),
        ("Description", optional(description(key))),
        ("Created by", optional(details.map(|details| details.created_by.as_str()))),
        ("Created", time(details.map(|details| details.gmt_create))),
        ("Last used", time(standing.and_then(|standing| standing.last_used_at))),
        ("Requests", optional(standing.map(|standing| standing.request_count))),
        ("Tokens", optional(standing.map(|standing| tokens(&standing.keygate_usage)))),
        ("Cost", optional(standing.map(|standing| cost(&standing.keygate_usage)))),
        ("Format", optional(details.map(|details| details.format.as_str()))),
    ]);
    print_fields(&fields);
}

/// A key's limits in one line: `60 rpm, 100000 tpm, 4 in flight, budget per month: 5000000 tokens, 25.00`.
fn limits_summary(limits: Option<&KeyLimits>) -> String {
    let Some(limits) = limits.filter(|limits| **limits != KeyLimits::default()) else { return "none".into() };
    let mut parts = Vec::new();
    for (value, unit) in [(limits.requests_per_minute, "rpm"), (limits.tokens_per_minute, "tpm"), (limits.max_in_flight, "in flight")] {
        if let Some(value) = value {
            parts.push(format!("{value} {unit}"));
        }
    }
    if let Some(KeyBudget { period, tokens, cost }) = &limits.budget {
        let amounts: Vec<String> = tokens.map(|tokens| format!("{tokens} tokens")).into_iter().chain(cost.clone()).collect();
        parts.push(format!("budget per {}: {}", period.as_deref().unwrap_or("-"), amounts.join(", ")));
    }
    parts.join(", ")
}

/// Where a key's budget stands: what is used and what is left in the current period.
fn budget_summary(budget: Option<&KeyBudgetStanding>) -> String {
    let Some(budget) = budget else { return "none".into() };
    let mut left = Vec::new();
    if let Some(tokens) = budget.remaining_tokens {
        left.push(format!("{tokens} tokens"));
    }
    if let Some(cost) = &budget.remaining_cost {
        left.push(format!("{cost} {}", budget.currency));
    }
    let state = if budget.used_up {
        " (used up: calls are refused until the period ends)"
    } else if budget.nearly_used {
        " (at least 80% used)"
    } else {
        ""
    };
    format!(
        "{} tokens and {} {} used this {} (until {}); left: {}{state}",
        budget.used_tokens,
        budget.used_cost,
        budget.currency,
        budget.period,
        time(Some(budget.period_end)),
        left.join(", ")
    )
}

/// The warning line `keygate keys list` prints after its table for a key whose budget is
/// nearly used (docs/CONTRACT.md#per-key-limits) or that expires within 7 days.
fn key_warning(key: &ApiKey) -> Option<String> {
    let standing = key.standing.as_ref()?;
    let mut reasons = Vec::new();
    if let Some(budget) = standing.keygate_budget.as_ref().filter(|budget| budget.nearly_used) {
        let how = if budget.used_up { "used up" } else { "at least 80% used" };
        reasons.push(format!("its {} budget is {how}", budget.period));
    }
    let expires_at = key.details.as_ref().and_then(|details| details.keygate_expires_at).map(|milliseconds| milliseconds.div_euclid(1000));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64);
    if keygate_core::key_limits::expires_soon(expires_at, now) && !standing.keygate_expired {
        reasons.push(format!("it expires at {}", time(expires_at.map(|seconds| seconds * 1000))));
    }
    (!reasons.is_empty()).then(|| format!("warning: API key {} ({}): {}", key.api_key_id, masked(key), reasons.join("; ")))
}

/// A key's tokens over the retained usage: the total, then input and output.
fn tokens(usage: &UsageFigures) -> String {
    format!("{} ({} in, {} out)", usage.total_tokens, usage.input_tokens, usage.output_tokens)
}

/// What a key's usage cost, and whether some of it had no price.
fn cost(usage: &UsageFigures) -> String {
    let unpriced = if usage.unpriced { " (and tokens of models without a price)" } else { "" };
    format!("{} {}{unpriced}", usage.cost, usage.currency)
}

/// The answer of Create or Reset: the one time the plaintext is shown.
fn print_new_key(key: &ApiKey, json: &Value, json_output: bool, verb: &str) -> anyhow::Result<()> {
    if json_output {
        print_json(json)?;
    } else {
        // Reset answers fewer fields than Create: show what there is.
        let fields: Vec<(&str, String)> = [
            ("API key id", key.api_key_id.to_string()),
            ("Workspace", text(&key.workspace_id)),
            ("Region", optional(key.details.as_ref().map(|details| details.region.as_str()))),
            ("Description", optional(description(key))),
            ("Permission", permission(key)),
        ]
        .into_iter()
        .filter(|(_, value)| value != "-")
        .chain([("API key", text(&key.api_key_value))])
        .collect();
        print_fields(&fields);
    }
    eprintln!("{verb} API key {}. This is the only time the full key is shown: store it now; keygate keeps only a digest and cannot show it again.", key.api_key_id);
    Ok(())
}
