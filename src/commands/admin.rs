//! `keygate admin ...`: commands that act on the database directly, for bootstrap, scripts
//! and recovery. They work while `keygate serve` runs on the same data directory (SQLite
//! WAL); a running server picks up users and AccessKeys on their next use.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use keygate_core::access::Role;
use keygate_core::ids::{generate_access_key_secret, AccessKeyId, PrincipalName};
use keygate_server::bootstrap::{ensure_root_account, open_store_and_master_key};
use keygate_server::secrets::hash_password;
use keygate_server::settings::{Settings, DEFAULT_DATA_DIR};
use keygate_store::AuditContext;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Data directory of the server (SQLite database and master key).
    #[arg(long, env = "KEYGATE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// PostgreSQL URL of a multi-node deployment (needs KEYGATE_MASTER_KEY or --master-key-file).
    #[arg(long, env = "KEYGATE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Master key file (64 hex characters); KEYGATE_MASTER_KEY wins.
    #[arg(long, env = "KEYGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a RAM user in an account.
    ///
    /// Example: keygate admin create-user --account root --name alice --role key-manager --json
    /// The password is read from KEYGATE_USER_PASSWORD when set (never from an argument).
    #[command(verbatim_doc_comment)]
    CreateUser {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "root")]
        account: String,
        #[arg(long)]
        name: String,
        /// admin, key-manager or member
        #[arg(long, default_value = "key-manager")]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Create an AccessKey for the account or one of its RAM users; prints the secret once.
    ///
    /// Example: keygate admin create-access-key --account root --user alice --json
    #[command(verbatim_doc_comment)]
    CreateAccessKey {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "root")]
        account: String,
        /// The RAM user; the account itself when omitted.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set the account's password from KEYGATE_ROOT_PASSWORD (recovery).
    ///
    /// Example: KEYGATE_ROOT_PASSWORD=... keygate admin set-account-password --account root
    #[command(verbatim_doc_comment)]
    SetAccountPassword {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long, default_value = "root")]
        account: String,
    },
}

fn admin_audit(account_id: i64) -> AuditContext {
    AuditContext {
        account_id,
        actor: "keygate admin (local)".into(),
        client_address: "local".into(),
        region: String::new(),
        credential: String::new(),
    }
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<(keygate_store::Store, keygate_server::secrets::MasterKey, Settings)> {
    let mut settings = Settings::with_data_dir(database.data_dir.clone());
    settings.database_url = database.database_url.clone().filter(|url| !url.is_empty());
    settings.master_key_file = database.master_key_file.clone();
    let (store, master_key) = open_store_and_master_key(&settings).await?;
    // A fresh data directory gets its root account here too, so scripts can start with admin.
    let root_password = std::env::var("KEYGATE_ROOT_PASSWORD").ok().filter(|value| !value.is_empty()).map(SecretString::from);
    let (_, generated) = ensure_root_account(&store, &settings, root_password).await?;
    if let Some(password) = generated {
        eprintln!("keygate: created account 'root' with password: {}", password.expose_secret());
    }
    Ok((store, master_key, settings))
}

pub async fn run(command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::CreateUser { database, account, name, role, json } => {
            let (store, _, _) = open(&database).await?;
            let role = Role::parse(&role).with_context(|| format!("unknown role '{role}': use admin, key-manager or member"))?;
            let name = PrincipalName::parse(&name)?;
            let account = store.find_account(&account).await?.with_context(|| format!("no account named '{account}'"))?;
            let password_hash = match std::env::var("KEYGATE_USER_PASSWORD").ok().filter(|value| !value.is_empty()) {
                Some(password) => Some(tokio::task::spawn_blocking(move || hash_password(&SecretString::from(password))).await?),
                None => None,
            };
            let user = store.create_user(&admin_audit(account.account_id), name.as_str(), role, password_hash.as_deref()).await?;
            if json {
                println!(
                    "{}",
                    json!({"userId": user.user_id, "account": account.name, "name": user.name, "role": user.role.as_str(), "status": user.status.as_str()})
                );
            } else {
                println!("created RAM user {} in account {} with role {}", user.name, account.name, user.role.as_str());
            }
        }
        AdminCommand::CreateAccessKey { database, account, user, json } => {
            let (store, master_key, _) = open(&database).await?;
            let account = store.find_account(&account).await?.with_context(|| format!("no account named '{account}'"))?;
            let user_id = match &user {
                None => None,
                Some(name) => Some(
                    store
                        .find_user(account.account_id, name)
                        .await
                        .with_context(|| format!("no RAM user named '{name}' in account {}", account.name))?
                        .user_id,
                ),
            };
            let access_key_id = AccessKeyId::generate();
            let secret = generate_access_key_secret();
            let ciphertext = master_key.encrypt(secret.expose_secret());
            store.create_access_key(&admin_audit(account.account_id), access_key_id.as_str(), user_id, &ciphertext).await?;
            if json {
                println!("{}", json!({"accessKeyId": access_key_id.as_str(), "accessKeySecret": secret.expose_secret()}));
            } else {
                println!("AccessKey id:     {}", access_key_id.as_str());
                println!("AccessKey secret: {}", secret.expose_secret());
                println!("The secret is shown only now; store it safely.");
            }
        }
        AdminCommand::SetAccountPassword { database, account } => {
            let (store, _, _) = open(&database).await?;
            let password = std::env::var("KEYGATE_ROOT_PASSWORD")
                .ok()
                .filter(|value| !value.is_empty())
                .context("set KEYGATE_ROOT_PASSWORD to the new password")?;
            let account = store.find_account(&account).await?.with_context(|| format!("no account named '{account}'"))?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&SecretString::from(password))).await?;
            store.set_account_password(account.account_id, &hash).await?;
            println!("password of account {} changed", account.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
