//! `keygate workspaces ...`: workspaces and their model grants through the Model Studio
//! API, their members through keygate's own API.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{confirm, display, field, items, print_json, time_field, Client, ClientOptions, Table};
use super::keys::report;

#[derive(Debug, Args)]
pub struct WorkspacesArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: WorkspacesCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// List the workspaces of the account in the server's region.
    ///
    /// Example: keygate workspaces list
    List,
    /// Create a sub-workspace; it may call only the models granted to it.
    ///
    /// Example: keygate workspaces create team-search
    Create {
        /// The workspace's name.
        name: String,
    },
    /// Delete a sub-workspace (refused while it still has keys or applications). Asks
    /// first on a terminal; scripts pass --yes.
    ///
    /// Example: keygate workspaces delete llm-0123456789abcdef --yes
    Delete {
        /// The workspace id (llm-...).
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List the RAM users that are members of a workspace.
    ///
    /// Example: keygate workspaces members llm-0123456789abcdef
    Members {
        /// The workspace id (llm-...).
        id: String,
    },
    /// Make a RAM user a member of a workspace.
    ///
    /// Example: keygate workspaces add-member llm-0123456789abcdef alice
    AddMember {
        /// The workspace id (llm-...).
        id: String,
        /// The RAM user's name.
        user: String,
    },
    /// Remove a RAM user from a workspace; its keys in that workspace stop working.
    ///
    /// Example: keygate workspaces remove-member llm-0123456789abcdef alice
    RemoveMember {
        /// The workspace id (llm-...).
        id: String,
        /// The RAM user's name.
        user: String,
    },
    /// Allow a sub-workspace to call models (inference); other grants are kept.
    ///
    /// Example: keygate workspaces grant llm-0123456789abcdef qwen-plus qwen-max
    Grant {
        /// The workspace id (llm-...).
        id: String,
        /// Model names from the catalog.
        #[arg(required = true)]
        models: Vec<String>,
    },
    /// List the catalog's models with what a workspace may do with each.
    ///
    /// Example: keygate workspaces models llm-0123456789abcdef
    Models {
        /// The workspace id (llm-...).
        id: String,
    },
}

fn members_path(id: &str) -> Vec<&str> {
    vec!["keygate", "v1", "workspaces", id, "members"]
}

pub async fn run(arguments: WorkspacesArgs) -> anyhow::Result<ExitCode> {
    let options = arguments.options;
    let (client, _session) = Client::from_session(&options)?;
    let json_output = options.json;
    match arguments.command {
        WorkspacesCommand::List => {
            let workspaces = all_pages(&client, &["modelstudio", "workspaces"], &[], "workspaces").await?;
            if json_output {
                print_json(&json!({"workspaces": workspaces, "totalCount": workspaces.len()}))?;
            } else {
                let mut table = Table::new(&["ID", "NAME", "DEFAULT", "REGION", "CREATED"]);
                for workspace in &workspaces {
                    let is_default = if workspace.get("isDefault").and_then(Value::as_bool) == Some(true) { "yes" } else { "no" };
                    table.row(vec![
                        field(workspace, "workspaceId"),
                        field(workspace, "workspaceName"),
                        is_default.into(),
                        field(workspace, "region"),
                        time_field(workspace, "gmtCreate"),
                    ]);
                }
                table.print();
            }
        }
        WorkspacesCommand::Create { name } => {
            let response =
                client.model_studio(Method::POST, &["modelstudio", "workspaces"], &[("workspaceName".into(), name.clone())], None).await?;
            let workspace = response.get("workspace").unwrap_or(&Value::Null);
            report(
                &response,
                json_output,
                &format!("created workspace {} ({name}) in {}", field(workspace, "workspaceId"), field(workspace, "region")),
            )?;
        }
        WorkspacesCommand::Delete { id, yes } => {
            confirm(&format!("delete workspace {id}"), yes)?;
            let response = client.model_studio(Method::DELETE, &["modelstudio", "workspaces", &id], &[], None).await?;
            let deleted = response.get("isDeleted").and_then(Value::as_bool) != Some(false);
            if json_output {
                print_json(&response)?;
            } else if deleted {
                println!("deleted workspace {id}");
            }
            if !deleted {
                let reasons: Vec<String> = items(&response, "failReasons")
                    .iter()
                    .map(|reason| format!("{} ({})", field(reason, "reason"), field(reason, "resourceType")))
                    .collect();
                bail!("workspace {id} was not deleted: {}", if reasons.is_empty() { "no reason given".into() } else { reasons.join("; ") });
            }
        }
        WorkspacesCommand::Members { id } => {
            let response = client.keygate(Method::GET, &members_path(&id), &[], None).await?;
            if json_output {
                print_json(&response)?;
            } else {
                let members = items(&response, "members");
                if members.is_empty() {
                    println!("no members");
                } else {
                    let mut table = Table::new(&["NAME", "ROLE", "STATUS"]);
                    for member in members {
                        // A member may be given as a name or as a user object.
                        match member {
                            Value::String(name) => table.row(vec![name.clone(), "-".into(), "-".into()]),
                            _ => table.row(vec![field(member, "name"), field(member, "role"), field(member, "status")]),
                        }
                    }
                    table.print();
                }
            }
        }
        WorkspacesCommand::AddMember { id, user } => {
            let response = client.keygate(Method::POST, &members_path(&id), &[], Some(&json!({"user": user}))).await?;
            report(&response, json_output, &format!("{user} is now a member of {id}"))?;
        }
        WorkspacesCommand::RemoveMember { id, user } => {
            let mut path = members_path(&id);
            path.push(&user);
            let response = client.keygate(Method::DELETE, &path, &[], None).await?;
            report(&response, json_output, &format!("removed {user} from {id}; its keys in that workspace stop working"))?;
        }
        WorkspacesCommand::Grant { id, models } => {
            let mut form = vec![("workspaceId".to_string(), id.clone())];
            for (index, model) in models.iter().enumerate() {
                form.push((format!("models.{}.model", index + 1), model.clone()));
                form.push((format!("models.{}.inference", index + 1), "true".into()));
            }
            let response = client.model_studio(Method::POST, &["modelstudio", "models", "permissions"], &[], Some(&form)).await?;
            report(&response, json_output, &format!("workspace {id} may now call {}", models.join(", ")))?;
        }
        WorkspacesCommand::Models { id } => {
            let models = all_pages(&client, &["modelstudio", "models", "permissions"], &[("workspaceId".into(), id)], "list").await?;
            if json_output {
                print_json(&json!({"list": models, "totalCount": models.len()}))?;
            } else {
                let mut table = Table::new(&["MODEL", "NAME", "INFERENCE", "DEMO"]);
                for model in &models {
                    let permissions = model.get("permissions").unwrap_or(&Value::Null);
                    let yes_no = |value: Option<&Value>| {
                        if value.and_then(Value::as_bool) == Some(true) {
                            "yes".to_string()
                        } else {
                            "no".to_string()
                        }
                    };
                    table.row(vec![
                        field(model, "model"),
                        field(model, "name"),
                        yes_no(permissions.get("inference")),
                        yes_no(model.get("demo")),
                    ]);
                }
                table.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every item of a paged Model Studio list.
async fn all_pages(client: &Client, path: &[&str], query: &[(String, String)], list_name: &str) -> anyhow::Result<Vec<Value>> {
    let mut collected = Vec::new();
    let mut next_token = String::new();
    loop {
        let mut page_query = query.to_vec();
        page_query.push(("maxResults".into(), "100".into()));
        if !next_token.is_empty() {
            page_query.push(("nextToken".into(), next_token.clone()));
        }
        let page = client.model_studio(Method::GET, path, &page_query, None).await?;
        let page_items = items(&page, list_name);
        collected.extend(page_items.iter().cloned());
        next_token = display(page.get("nextToken"));
        if next_token == "-" || page_items.is_empty() {
            return Ok(collected);
        }
    }
}
