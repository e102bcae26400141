//! `keygate keys ...`: API keys through the Model Studio API of a running server (query
//! parameters, form bodies, the session token in `x-acs-bearer-token`), in the region of
//! the listener the CLI talks to; `import` (in [`import`]) uses keygate's own API.

mod import;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{confirm, display, field, items, print_fields, print_json, shorten, time_field, Client, ClientOptions, Table};

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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; prints the full key once (it cannot be shown again)
    ///
    /// Examples:
    ///   keygate keys create --description "CI pipeline"
    ///   keygate keys create --workspace llm-0123456789abcdef --custom --ip 10.0.0.0/8 --model qwen-plus --model qwen-max
    ///   keygate keys create --json | jq -r .apiKey.apiKeyValue
    #[command(verbatim_doc_comment)]
    Create {
        /// The workspace of the key (default: the account's default workspace).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// What the key is for (at most 200 characters).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        #[command(flatten)]
        permissions: PermissionArgs,
    },
    /// List the API keys you may see (masked): the account sees all, a RAM user its own
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
    /// Show one API key (masked) with its permissions and usage.
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
    #[command(verbatim_doc_comment)]
    Edit {
        /// The API key id.
        id: u64,
        /// The new description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Permission All: any address, every model and application of the workspace.
        #[arg(long, conflicts_with = "custom")]
        all: bool,
        #[command(flatten)]
        permissions: PermissionArgs,
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
    /// once. Prints the new key once.
    ///
    /// Example: keygate keys reset 42
    Reset {
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

pub async fn run(arguments: KeysArgs) -> anyhow::Result<ExitCode> {
    let options = arguments.options;
    let (client, _session) = Client::from_session(&options)?;
    match arguments.command {
        KeysCommand::Create { workspace, description, permissions } => {
            let mut query = Vec::new();
            if let Some(description) = description {
                query.push(("description".to_string(), description));
            }
            if let Some(workspace) = workspace {
                query.push(("workspaceId".to_string(), workspace));
            }
            let form = permissions.form(false);
            let response = client
                .model_studio(Method::POST, &["modelstudio", "apikeys"], &query, (!form.is_empty()).then_some(form.as_slice()))
                .await?;
            print_new_key(&response, options.json, "Created")?;
        }
        KeysCommand::List { workspace, description, all } => {
            let mut query = vec![("maxResults".to_string(), "100".to_string())];
            if let Some(workspace) = workspace {
                query.push(("workspaceId".into(), workspace));
            }
            if let Some(description) = description {
                query.push(("description".into(), description));
            }
            let (keys, total, first_page) = list_pages(&client, &query, all).await?;
            if options.json {
                match first_page {
                    Some(page) if !all => print_json(&page)?,
                    _ => print_json(&json!({"apiKeys": keys, "totalCount": total}))?,
                }
            } else {
                print_key_table(&keys);
                if (keys.len() as u64) < total {
                    eprintln!("showing {} of {total} keys; add --all for every page", keys.len());
                }
            }
        }
        KeysCommand::Get { id } => {
            let response = client.model_studio(Method::GET, &key_path(id, None), &[], None).await?;
            if options.json {
                print_json(&response)?;
            } else {
                print_key_details(response.get("apiKey").unwrap_or(&Value::Null));
            }
        }
        KeysCommand::Edit { id, description, all, permissions } => {
            let form = permissions.form(all);
            if description.is_none() && form.is_empty() {
                anyhow::bail!("nothing to change: give --description, --all or --custom");
            }
            let query: Vec<(String, String)> = description.into_iter().map(|text| ("description".to_string(), text)).collect();
            let response =
                client.model_studio(Method::PUT, &key_path(id, None), &query, (!form.is_empty()).then_some(form.as_slice())).await?;
            report(&response, options.json, &format!("updated API key {id}"))?;
        }
        KeysCommand::Disable { id } => {
            let response = client.model_studio(Method::PUT, &key_path(id, Some("disable")), &[], None).await?;
            report(&response, options.json, &format!("disabled API key {id}"))?;
        }
        KeysCommand::Enable { id } => {
            let response = client.model_studio(Method::PUT, &key_path(id, Some("enable")), &[], None).await?;
            report(&response, options.json, &format!("enabled API key {id}"))?;
        }
        KeysCommand::Reset { id } => {
            let response = client.model_studio(Method::PUT, &key_path(id, Some("reset")), &[], None).await?;
            print_new_key(&response, options.json, "Reset")?;
        }
        KeysCommand::Delete { id, yes } => {
            let path = key_path(id, None);
            let mut question = format!("delete API key {id}");
            if !yes && std::io::stdin().is_terminal() {
                // Name the key in the question, so the wrong id is noticed.
                let response = client.model_studio(Method::GET, &path, &[], None).await?;
                let key = response.get("apiKey").unwrap_or(&Value::Null);
                question = match key.get("description").and_then(Value::as_str).filter(|text| !text.is_empty()) {
                    Some(description) => format!("delete API key {id} ({}, {description:?})", masked(key)),
                    None => format!("delete API key {id} ({})", masked(key)),
                };
            }
            confirm(&question, yes)?;
            let response = client.model_studio(Method::DELETE, &path, &[], None).await?;
            report(&response, options.json, &format!("deleted API key {id}"))?;
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

/// Fetches one page, or all of them; returns the keys, the total and the first page.
async fn list_pages(client: &Client, query: &[(String, String)], all: bool) -> anyhow::Result<(Vec<Value>, u64, Option<Value>)> {
    let mut keys = Vec::new();
    let mut next_token = String::new();
    let mut first_page = None;
    let mut total;
    loop {
        let mut page_query = query.to_vec();
        if !next_token.is_empty() {
            page_query.push(("nextToken".into(), next_token.clone()));
        }
        let page = client.model_studio(Method::GET, &["modelstudio", "apikeys"], &page_query, None).await?;
        keys.extend(items(&page, "apiKeys").iter().cloned());
        total = page.get("totalCount").and_then(Value::as_u64).unwrap_or(keys.len() as u64);
        next_token = page.get("nextToken").and_then(Value::as_str).unwrap_or("").to_string();
        if first_page.is_none() {
            first_page = Some(page);
        }
        if !all || next_token.is_empty() {
            break;
        }
    }
    Ok((keys, total, first_page))
}

fn masked(key: &Value) -> String {
    match key.get("maskedKey").and_then(Value::as_str).filter(|text| !text.is_empty()) {
        Some(masked) => masked.to_string(),
        None => field(key, "apiKeyValue"),
    }
}

fn status(key: &Value) -> &'static str {
    let disabled = match key.get("disabled") {
        Some(Value::Bool(disabled)) => *disabled,
        Some(Value::Number(number)) => number.as_i64() != Some(0),
        _ => false,
    };
    if disabled {
        "disabled"
    } else {
        "enabled"
    }
}

fn permission(key: &Value) -> String {
    field(key.get("auth").unwrap_or(&Value::Null), "type")
}

fn print_key_table(keys: &[Value]) {
    if keys.is_empty() {
        println!("no API keys");
        return;
    }
    let mut table = Table::new(&["ID", "KEY", "WORKSPACE", "PERMISSION", "DESCRIPTION", "CREATED BY", "CREATED", "LAST USED", "STATUS"]);
    for key in keys {
        // An imported key is marked, to be replaced by a new one.
        let key_cell = if key.get("replaceAdvised").and_then(Value::as_bool) == Some(true) {
            format!("{} (legacy)", masked(key))
        } else {
            masked(key)
        };
        table.row(vec![
            field(key, "apiKeyId"),
            key_cell,
            field(key, "workspaceId"),
            permission(key),
            shorten(&field(key, "description"), 32),
            field(key, "createdBy"),
            time_field(key, "gmtCreate"),
            time_field(key, "lastUsedAt"),
            status(key).to_string(),
        ]);
    }
    table.print();
}

/// `any`, `all`, `none` or the list.
fn scope(auth: &Value, scope_name: &str, allow_all_name: &str, list_name: &str) -> String {
    let scope = auth.get(scope_name).unwrap_or(&Value::Null);
    if auth.get("type").and_then(Value::as_str) != Some("Custom") || scope.get(allow_all_name).and_then(Value::as_bool) == Some(true) {
        return "all".into();
    }
    match scope.get(list_name).and_then(Value::as_array) {
        Some(list) if !list.is_empty() => display(scope.get(list_name)),
        _ => "none".into(),
    }
}

fn print_key_details(key: &Value) {
    let auth = key.get("auth").unwrap_or(&Value::Null);
    let workspace = match key.get("workspaceName").and_then(Value::as_str).filter(|name| !name.is_empty()) {
        Some(name) => format!("{} ({name})", field(key, "workspaceId")),
        None => field(key, "workspaceId"),
    };
    let ips = match auth.get("accessIps").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => display(auth.get("accessIps")),
        _ => "any".into(),
    };
    let value = field(key, "apiKeyValue");
    let mut fields = vec![("API key id", field(key, "apiKeyId")), ("API key", masked(key))];
    if value != masked(key) && value != "-" {
        // Legacy (imported) keys may be viewed again.
        fields.push(("Plaintext (legacy)", value));
    }
    fields.extend([
        ("Region", field(key, "region")),
        ("Workspace", workspace),
        ("Status", status(key).to_string()),
        ("Permission", permission(key)),
        ("Allowed IPs", ips),
        ("Models", scope(auth, "modelAccessScope", "allowAllModels", "accessibleModels")),
        ("Applications", scope(auth, "appAccessScope", "allowAllApps", "accessibleApps")),
        ("Description", field(key, "description")),
        ("Created by", field(key, "createdBy")),
        ("Created", time_field(key, "gmtCreate")),
        ("Last used", time_field(key, "lastUsedAt")),
        ("Requests", field(key, "requestCount")),
        ("Format", field(key, "format")),
    ]);
    print_fields(&fields);
}

/// The answer of Create or Reset: the one time the plaintext is shown.
fn print_new_key(response: &Value, json_output: bool, verb: &str) -> anyhow::Result<()> {
    let key = response.get("apiKey").unwrap_or(&Value::Null);
    if json_output {
        print_json(response)?;
    } else {
        // Reset answers fewer fields than Create: show what there is.
        let fields: Vec<(&str, String)> = [
            ("API key id", field(key, "apiKeyId")),
            ("Workspace", field(key, "workspaceId")),
            ("Region", field(key, "region")),
            ("Description", field(key, "description")),
            ("Permission", permission(key)),
        ]
        .into_iter()
        .filter(|(_, value)| value != "-")
        .chain([("API key", field(key, "apiKeyValue"))])
        .collect();
        print_fields(&fields);
    }
    eprintln!("{verb} API key {}. This is the only time the full key is shown: store it now; keygate keeps only a digest and cannot show it again.", field(key, "apiKeyId"));
    Ok(())
}
