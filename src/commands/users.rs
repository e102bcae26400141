//! `keygate users ...`: RAM users of the logged-in account and AccessKeys, through
//! keygate's own API (`/keygate/v1/users`, `/keygate/v1/access-keys`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::client::{self, confirm, field, items, print_fields, print_json, time_field, Client, ClientOptions, Session, Table};
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
    /// Set a RAM user's password: one line of stdin, or KEYGATE_USER_PASSWORD.
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
            let response = client.keygate(Method::GET, &users_path(&[]), &[], None).await?;
            if json_output {
                print_json(&response)?;
            } else {
                print_user_table(items(&response, "users"));
            }
        }
        UsersCommand::Create { name, role, password_stdin } => {
            let password = new_password(password_stdin)?;
            let mut body = json!({"name": name, "role": role});
            if let Some(password) = &password {
                body["password"] = Value::String(password.expose_secret().to_string());
            }
            let response = client.keygate(Method::POST, &users_path(&[]), &[], Some(&body)).await?;
            if json_output {
                print_json(&response)?;
            } else {
                println!("created RAM user {name} with role {role}");
                if password.is_none() {
                    eprintln!("note: {name} has no password and cannot log in; set one with `keygate users set-password {name}`");
                }
            }
        }
        UsersCommand::Get { name } => {
            let response = client.keygate(Method::GET, &users_path(&[&name]), &[], None).await?;
            if json_output {
                print_json(&response)?;
            } else {
                let user = response.get("user").unwrap_or(&Value::Null);
                print_fields(&[
                    ("Name", field(user, "name")),
                    ("User id", field(user, "userId")),
                    ("Role", field(user, "role")),
                    ("Status", field(user, "status")),
                    ("Workspaces", field(user, "workspaces")),
                    ("Created", time_field(user, "gmtCreate")),
                ]);
            }
        }
        UsersCommand::SetRole { name, role } => {
            let response = client.keygate(Method::PUT, &users_path(&[&name, "role"]), &[], Some(&json!({"role": role}))).await?;
            report(&response, json_output, &format!("{name} now has role {role}"))?;
        }
        UsersCommand::SetPassword { name } => {
            let password = match new_password(false)? {
                Some(password) => password,
                None => client::read_secret_line("New password: ")?,
            };
            let body = json!({"password": password.expose_secret()});
            let response = client.keygate(Method::PUT, &users_path(&[&name, "password"]), &[], Some(&body)).await?;
            report(&response, json_output, &format!("password of {name} changed"))?;
        }
        UsersCommand::Disable { name } => {
            let response = client.keygate(Method::POST, &users_path(&[&name, "disable"]), &[], None).await?;
            report(&response, json_output, &format!("disabled RAM user {name}; its keys stop working until it is enabled"))?;
        }
        UsersCommand::Enable { name } => {
            let response = client.keygate(Method::POST, &users_path(&[&name, "enable"]), &[], None).await?;
            report(&response, json_output, &format!("enabled RAM user {name}"))?;
        }
        UsersCommand::Delete { name, yes } => {
            confirm(&format!("delete RAM user {name} and all of its API keys"), yes)?;
            let response = client.keygate(Method::DELETE, &users_path(&[&name]), &[], None).await?;
            report(&response, json_output, &format!("deleted RAM user {name}"))?;
        }
        UsersCommand::AccessKeys(command) => run_access_keys(&client, &session, command, json_output).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_access_keys(client: &Client, session: &Session, command: AccessKeysCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AccessKeysCommand::List { user } => {
            let query: Vec<(String, String)> = user.iter().map(|name| ("user".to_string(), name.clone())).collect();
            let response = client.keygate(Method::GET, &access_keys_path(&[]), &query, None).await?;
            if json_output {
                print_json(&response)?;
            } else {
                print_access_key_table(items(&response, "accessKeys"));
            }
        }
        AccessKeysCommand::Create { user } => {
            let body = json!({"user": user});
            let response = client.keygate(Method::POST, &access_keys_path(&[]), &[], Some(&body)).await?;
            if json_output {
                print_json(&response)?;
            } else {
                let owner =
                    response.get("user").and_then(Value::as_str).map(str::to_string).or(user).unwrap_or_else(|| session.principal());
                print_fields(&[
                    ("Owner", owner),
                    ("AccessKey id", field(&response, "accessKeyId")),
                    ("AccessKey secret", field(&response, "accessKeySecret")),
                ]);
            }
            eprintln!("This is the only time the AccessKey secret is shown: store it now.");
        }
        AccessKeysCommand::Disable { id } => {
            let response = client.keygate(Method::POST, &access_keys_path(&[&id, "disable"]), &[], None).await?;
            report(&response, json_output, &format!("disabled AccessKey {id}"))?;
        }
        AccessKeysCommand::Enable { id } => {
            let response = client.keygate(Method::POST, &access_keys_path(&[&id, "enable"]), &[], None).await?;
            report(&response, json_output, &format!("enabled AccessKey {id}"))?;
        }
        AccessKeysCommand::Delete { id, yes } => {
            confirm(&format!("delete AccessKey {id}"), yes)?;
            let response = client.keygate(Method::DELETE, &access_keys_path(&[&id]), &[], None).await?;
            report(&response, json_output, &format!("deleted AccessKey {id}"))?;
        }
    }
    Ok(())
}

fn print_user_table(users: &[Value]) {
    if users.is_empty() {
        println!("no RAM users");
        return;
    }
    let mut table = Table::new(&["NAME", "ROLE", "STATUS", "WORKSPACES", "CREATED"]);
    for user in users {
        table.row(vec![
            field(user, "name"),
            field(user, "role"),
            field(user, "status"),
            field(user, "workspaces"),
            time_field(user, "gmtCreate"),
        ]);
    }
    table.print();
}

fn print_access_key_table(access_keys: &[Value]) {
    if access_keys.is_empty() {
        println!("no AccessKeys");
        return;
    }
    let mut table = Table::new(&["ACCESS KEY ID", "OWNER", "STATUS", "CREATED", "LAST USED"]);
    for access_key in access_keys {
        let owner = match access_key.get("user").and_then(Value::as_str) {
            Some(user) => user.to_string(),
            None => "(account)".into(),
        };
        table.row(vec![
            field(access_key, "accessKeyId"),
            owner,
            field(access_key, "status"),
            time_field(access_key, "gmtCreate"),
            time_field(access_key, "lastUsedAt"),
        ]);
    }
    table.print();
}
