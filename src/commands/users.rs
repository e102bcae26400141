//! `keygate users ...`: RAM users of the logged-in account and AccessKeys, through
//! keygate's own API (`/keygate/v1/users`, `/keygate/v1/access-keys`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use keygate_wire::keygate_api::{
    AccessKeyResponse, CreateAccessKeyRequest, CreateUserRequest, CreatedAccessKey, Deleted, ListAccessKeysResponse, ListUsersResponse,
    SetPasswordRequest, SetRoleRequest, UserResponse,
};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::client::{self, confirm, list, print_fields, print_json, text, time, Client, ClientOptions, RequestBody, Session, Table};
use super::keys::report;

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: UsersCommand,
}

const ROLES: [&str; 3] = ["admin", "key-manager", "member"];

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the RAM users of the account.
    ///
    /// Example: keygate users list
    List,
    /// Create a RAM user
    ///
    /// The password comes from stdin with --password-stdin, else from KEYGATE_USER_PASSWORD;
    /// without one the user cannot log in (AccessKeys still work).
    ///
    /// Examples:
    ///   keygate users create alice --role key-manager --password-stdin < alice-password.txt
    ///   KEYGATE_USER_PASSWORD=... keygate users create bob --role member
    #[command(verbatim_doc_comment)]
    Create {
        /// The user's name.
        name: String,
        /// admin (workspaces, users, keys), key-manager (its own keys) or member (no keys).
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// Read the password as one line of stdin (never pass it as an argument).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show one RAM user.
    ///
    /// Example: keygate users get alice
    Get {
        /// The user's name.
        name: String,
    },
    /// Change a RAM user's role.
    ///
    /// Example: keygate users set-role alice admin
    SetRole {
        /// The user's name.
        name: String,
        /// admin, key-manager or member.
        #[arg(value_parser = ROLES)]
        role: String,
    },
    /// Set another RAM user's password (the account and admins): one line of stdin, or
    /// KEYGATE_USER_PASSWORD. Every session of that user ends.
    ///
    /// To change your own password, use `keygate password`, which asks for the current one.
    ///
    /// Example: keygate users set-password alice < alice-password.txt
    SetPassword {
        /// The user's name.
        name: String,
    },
    /// Disable a RAM user: it cannot log in and its keys stop working until enabled.
    ///
    /// Example: keygate users disable alice
    Disable {
        /// The user's name.
        name: String,
    },
    /// Enable a disabled RAM user.
    ///
    /// Example: keygate users enable alice
    Enable {
        /// The user's name.
        name: String,
    },
    /// Delete a RAM user and its keys, for good. Asks first on a terminal; scripts pass --yes.
    ///
    /// Example: keygate users delete alice --yes
    Delete {
        /// The user's name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// AccessKeys (for signing Model Studio API calls) of the account and its RAM users.
    #[command(subcommand)]
    AccessKeys(AccessKeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccessKeysCommand {
    /// List AccessKeys (never their secrets)
    ///
    /// Examples:
    ///   keygate users access-keys list
    ///   keygate users access-keys list --user alice
    #[command(verbatim_doc_comment)]
    List {
        /// Only the AccessKeys of this RAM user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Create an AccessKey for yourself or a RAM user; prints the secret once
    ///
    /// Examples:
    ///   keygate users access-keys create
    ///   keygate users access-keys create --user alice --json
    #[command(verbatim_doc_comment)]
    Create {
        /// The RAM user that owns it (default: the logged-in account or user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Disable an AccessKey: signatures made with it are refused.
    ///
    /// Example: keygate users access-keys disable LTAI0123456789abcdefghij
    Disable {
        /// The AccessKey id (LTAI...).
        id: String,
    },
    /// Enable a disabled AccessKey.
    ///
    /// Example: keygate users access-keys enable LTAI0123456789abcdefghij
    Enable {
        /// The AccessKey id (LTAI...).
        id: String,
    },
    /// Delete an AccessKey for good. Asks first on a terminal; scripts pass --yes.
    ///
    /// Example: keygate users access-keys delete LTAI0123456789abcdefghij --yes
    Delete {
        /// The AccessKey id (LTAI...).
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// A password from stdin (`--password-stdin`) or `KEYGATE_USER_PASSWORD`.
fn new_password(from_stdin: bool) -> anyhow::Result<Option<SecretString>> {
    if from_stdin {
        return client::read_secret_line("New password: ").map(Some);
    }
    Ok(std::env::var("KEYGATE_USER_PASSWORD").ok().filter(|password| !password.is_empty()).map(SecretString::from))
}

fn users_path<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec!["keygate", "v1", "users"];
    path.extend_from_slice(rest);
    path
}

fn access_keys_path<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec!["keygate", "v1", "access-keys"];
    path.extend_from_slice(rest);
    path
}

pub async fn run(arguments: UsersArgs) -> anyhow::Result<ExitCode> {
    let options = arguments.options;
    let (client, session) = Client::from_session(&options)?;
    let json_output = options.json;
    match arguments.command {
        UsersCommand::List => {
            let answer = client.call::<ListUsersResponse, _>(Method::GET, &users_path(&[]), &[], RequestBody::None).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                let mut table = Table::new(&["NAME", "ROLE", "STATUS", "WORKSPACES", "CREATED"]);
                for user in &answer.body.users {
                    table.row(vec![
                        text(&user.name),
                        text(&user.role),
                        text(&user.status),
                        list(&user.workspaces),
                        time(Some(user.gmt_create)),
                    ]);
                }
                table.print_or("no RAM users");
            }
        }
        UsersCommand::Create { name, role, password_stdin } => {
            let password = new_password(password_stdin)?;
            let request = CreateUserRequest {
                name: name.clone(),
                role: role.clone(),
                password: password.as_ref().map(|password| password.expose_secret().to_string()),
            };
            let answer = client.call::<UserResponse, _>(Method::POST, &users_path(&[]), &[], RequestBody::json(&request)?).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                println!("created RAM user {name} with role {role}");
                if password.is_none() {
                    eprintln!("note: {name} has no password and cannot log in; set one with `keygate users set-password {name}`");
                }
            }
        }
        UsersCommand::Get { name } => {
            let answer = client.call::<UserResponse, _>(Method::GET, &users_path(&[&name]), &[], RequestBody::None).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                let user = &answer.body.user;
                print_fields(&[
                    ("Name", text(&user.name)),
                    ("User id", user.user_id.to_string()),
                    ("Role", text(&user.role)),
                    ("Status", text(&user.status)),
                    ("Workspaces", list(&user.workspaces)),
                    ("Created", time(Some(user.gmt_create))),
                ]);
            }
        }
        UsersCommand::SetRole { name, role } => {
            let request = RequestBody::json(&SetRoleRequest { role: role.clone() })?;
            let answer = client.call::<UserResponse, _>(Method::PUT, &users_path(&[&name, "role"]), &[], request).await?;
            report(&answer.json, json_output, &format!("{name} now has role {role}"))?;
        }
        UsersCommand::SetPassword { name } => {
            let password = match new_password(false)? {
                Some(password) => password,
                None => client::read_secret_line("New password: ")?,
            };
            let request = RequestBody::json(&SetPasswordRequest { password: password.expose_secret().to_string() })?;
            let answer = client.call::<UserResponse, _>(Method::PUT, &users_path(&[&name, "password"]), &[], request).await?;
            report(&answer.json, json_output, &format!("password of {name} changed"))?;
        }
        UsersCommand::Disable { name } => {
            let answer = client.call::<UserResponse, _>(Method::POST, &users_path(&[&name, "disable"]), &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("disabled RAM user {name}; its keys stop working until it is enabled"))?;
        }
        UsersCommand::Enable { name } => {
            let answer = client.call::<UserResponse, _>(Method::POST, &users_path(&[&name, "enable"]), &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("enabled RAM user {name}"))?;
        }
        UsersCommand::Delete { name, yes } => {
            confirm(&format!("delete RAM user {name} and all of its API keys"), yes)?;
            let answer = client.call::<Deleted, _>(Method::DELETE, &users_path(&[&name]), &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("deleted RAM user {name}"))?;
        }
        UsersCommand::AccessKeys(command) => run_access_keys(&client, &session, command, json_output).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_access_keys(client: &Client, session: &Session, command: AccessKeysCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AccessKeysCommand::List { user } => {
            let query: Vec<(String, String)> = user.iter().map(|name| ("user".to_string(), name.clone())).collect();
            let answer = client.call::<ListAccessKeysResponse, _>(Method::GET, &access_keys_path(&[]), &query, RequestBody::None).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                let mut table = Table::new(&["ACCESS KEY ID", "OWNER", "STATUS", "CREATED", "LAST USED"]);
                for access_key in &answer.body.access_keys {
                    table.row(vec![
                        text(&access_key.access_key_id),
                        access_key.user.clone().unwrap_or_else(|| "(account)".into()),
                        text(&access_key.status),
                        time(Some(access_key.gmt_create)),
                        time(access_key.last_used_at),
                    ]);
                }
                table.print_or("no AccessKeys");
            }
        }
        AccessKeysCommand::Create { user } => {
            let request = RequestBody::json(&CreateAccessKeyRequest { user: user.clone() })?;
            let answer = client.call::<CreatedAccessKey, _>(Method::POST, &access_keys_path(&[]), &[], request).await?;
            if json_output {
                print_json(&answer.json)?;
            } else {
                let created = &answer.body;
                let owner = created.user.clone().or(user).unwrap_or_else(|| session.principal());
                print_fields(&[
                    ("Owner", owner),
                    ("AccessKey id", text(&created.access_key_id)),
                    ("AccessKey secret", text(&created.access_key_secret)),
                ]);
            }
            eprintln!("This is the only time the AccessKey secret is shown: store it now.");
        }
        AccessKeysCommand::Disable { id } => {
            let path = access_keys_path(&[&id, "disable"]);
            let answer = client.call::<AccessKeyResponse, _>(Method::POST, &path, &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("disabled AccessKey {id}"))?;
        }
        AccessKeysCommand::Enable { id } => {
            let path = access_keys_path(&[&id, "enable"]);
            let answer = client.call::<AccessKeyResponse, _>(Method::POST, &path, &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("enabled AccessKey {id}"))?;
        }
        AccessKeysCommand::Delete { id, yes } => {
            confirm(&format!("delete AccessKey {id}"), yes)?;
            let answer = client.call::<Deleted, _>(Method::DELETE, &access_keys_path(&[&id]), &[], RequestBody::None).await?;
            report(&answer.json, json_output, &format!("deleted AccessKey {id}"))?;
        }
    }
    Ok(())
}
