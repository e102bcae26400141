//! `keygate workspaces ...`: workspaces and their model grants through the Model Studio
//! API, their members through keygate's own API.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use keygate_wire::envelope::Empty;
use keygate_wire::keygate_api::{AddMemberRequest, ListMembersResponse, MemberAdded, MemberRemoved};
use keygate_wire::model_studio::{DeleteWorkspaceResponse, ListModelPermissionsResponse, ListWorkspacesResponse, WorkspaceResponse};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{confirm, print_json, text, time, Client, ClientOptions, RequestBody, Table};
use super::keys::report;
use super::pages::fetch_pages;

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

/// `yes` or `no`.
fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

pub async fn run(arguments: WorkspacesArgs) -> anyhow::Result<ExitCode> {
    let options = arguments.options;
    let (client, _session) = Client::from_session(&options)?;
    let json_output = options.json;
    match arguments.command {
        WorkspacesCommand::List => {
            let path = ["modelstudio", "workspaces"];
            if json_output {
                let workspaces = fetch_pages::<ListWorkspacesResponse<Value>>(&client, &path, &[], true).await?.items;
                print_json(&json!({"workspaces": workspaces, "totalCount": workspaces.len()}))?;
            } else {
                let mut table = Table::new(&["ID", "NAME", "DEFAULT", "REGION", "CREATED"]);
                for workspace in fetch_pages::<ListWorkspacesResponse>(&client, &path, &[], true).await?.items {
                    table.row(vec![
                        text(&workspace.workspace_id),
                        text(&workspace.workspace_name),
                        yes_no(workspace.is_default),
                        text(&workspace.region),
                        time(Some(workspace.gmt_create)),
                    ]);
                }
                table.print();
            }
        }
        WorkspacesCommand::Create { name } => {
            let query = [("workspaceName".to_string(), name.clone())];
            let answer =
                client.call::<WorkspaceResponse, _>(Method::POST, &["modelstudio", "workspaces"], &query, RequestBody::None).await?;
            let workspace = &answer.body.workspace;
            let line = format!("created workspace {} ({name}) in {}", text(&workspace.workspace_id), text(&workspace.region));
            report(&answer.json, json_output, &line)?;
        }
        WorkspacesCommand::Delete { id, yes } => {
            confirm(&format!("delete workspace {id}"), yes)?;
            let path = ["modelstudio", "workspaces", &id];
            let answer = client.call::<DeleteWorkspaceResponse, _>(Method::DELETE, &path, &[], RequestBody::None).await?;
            let deleted = answer.body.is_deleted;
            if json_output {
                print_json(&answer.json)?;
            } else if deleted {
                println!("deleted workspace {id}");
            }
            if !deleted {
                let reasons: Vec<String> = answer
                    .body
                    .fail_reasons
                    .iter()
                    .map(|reason| format!("{} ({})", text(&reason.reason), text(&reason.resource_type)))
                    .collect();
                bail!("workspace {id} was not deleted: {}", if reasons.is_empty() { "no reason given".into() } else { reasons.join("; ") });
            }
        }
        WorkspacesCommand::Members { id } => {
            let answer = client.call::<ListMembersResponse, _>(Method::GET, &members_path(&id), &[], RequestBody::None).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                let mut table = Table::new(&["NAME", "ROLE", "STATUS"]);
                for member in &answer.body.members {
                    table.row(vec![text(&member.name), text(&member.role), text(&member.status)]);
                }
                table.print_or("no members");
            }
        }
        WorkspacesCommand::AddMember { id, user } => {
            let request = RequestBody::json(&AddMemberRequest { user: user.clone() })?;
            let answer = client.call::<MemberAdded, _>(Method::POST, &members_path(&id), &[], request).await?;
            report(&answer.json, json_output, &format!("{user} is now a member of {id}"))?;
        }
        WorkspacesCommand::RemoveMember { id, user } => {
            let mut path = members_path(&id);
            path.push(&user);
            let answer = client.call::<MemberRemoved, _>(Method::DELETE, &path, &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("removed {user} from {id}; its keys in that workspace stop working"))?;
        }
        WorkspacesCommand::Grant { id, models } => {
            let mut form = vec![("workspaceId".to_string(), id.clone())];
            for (index, model) in models.iter().enumerate() {
                form.push((format!("models.{}.model", index + 1), model.clone()));
                form.push((format!("models.{}.inference", index + 1), "true".into()));
            }
            let path = ["modelstudio", "models", "permissions"];
            let answer = client.call::<Empty, _>(Method::POST, &path, &[], RequestBody::Form(&form)).await?;
            report(&answer.json, json_output, &format!("workspace {id} may now call {}", models.join(", ")))?;
        }
        WorkspacesCommand::Models { id } => {
            let path = ["modelstudio", "models", "permissions"];
            let query = [("workspaceId".to_string(), id)];
            if json_output {
                let models = fetch_pages::<ListModelPermissionsResponse<Value>>(&client, &path, &query, true).await?.items;
                print_json(&json!({"list": models, "totalCount": models.len()}))?;
            } else {
                let mut table = Table::new(&["MODEL", "NAME", "INFERENCE", "DEMO"]);
                for model in fetch_pages::<ListModelPermissionsResponse>(&client, &path, &query, true).await?.items {
                    table.row(vec![text(&model.model), text(&model.name), yes_no(model.permissions.inference), yes_no(model.demo)]);
                }
                table.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
