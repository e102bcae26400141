//! `keygate admin ...`: commands that act on the database directly, for bootstrap, scripts
//! and recovery, through the same operations as the APIs (`keygate_server::operations`,
//! as the account, without a server). They work while `keygate serve` runs on the same
//! data directory (SQLite WAL); a running server picks up users and AccessKeys on their
//! next use. They refuse a data directory or database that does not exist (a typo, or
//! another working directory, would otherwise make a second database with an account the
//! server never sees) unless given `--init`, the bootstrap before the first `serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use keygate_core::access::Role;
use keygate_core::ids::PrincipalName;
use keygate_server::bootstrap::{ensure_root_account, open_store_and_master_key, require_existing_database, ROOT_ACCOUNT_NAME};
use keygate_server::operations::access_keys::{create_access_key, AccessKeyOwner};
use keygate_server::operations::sessions::direct_actor;
use keygate_server::operations::users::{create_user, find_account, set_account_password, NewUser};
use keygate_server::operations::{AccountRecord, Actor, Operations, Standalone};
use keygate_server::settings::{Settings, DEFAULT_DATA_DIR};
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
    /// Create the data directory, database, master key and account root when missing (a
    /// bootstrap before the first `keygate serve`); without it a missing one is an error.
    #[arg(long)]
    pub init: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a RAM user in an account.
    ///
    /// Example: keygate admin create-user --name alice --role key-manager --password-stdin < alice-password.txt
    /// Before the first `keygate serve`: keygate admin create-user --init --name alice --password-stdin < alice-password.txt
    /// The password is one line of stdin with --password-stdin, else KEYGATE_USER_PASSWORD
    /// (never an argument); a user without one cannot log in until it is given one.
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
        /// Read the user's password as one line of stdin.
        #[arg(long)]
        password_stdin: bool,
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
    /// Set the account's password from KEYGATE_ROOT_PASSWORD (recovery); the account's sessions end.
    ///
    /// To change a password you know, use `keygate password`, which asks for the current one.
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

/// How the audit log names changes made by `keygate admin`.
const ADMIN_ACTOR: &str = "keygate admin (local)";

/// Opens the data directory's store and master key: the operations of `keygate admin`, on
/// the database directly.
async fn open(database: &DatabaseArgs) -> anyhow::Result<Standalone> {
    let mut settings = Settings::with_data_dir(database.data_dir.clone());
    settings.database_url = database.database_url.clone().filter(|url| !url.is_empty());
    settings.master_key_file = database.master_key_file.clone();
    if !database.init {
        require_existing_database(&settings).map_err(|missing| {
            anyhow::anyhow!(
                "{missing}: run keygate admin where `keygate serve` runs, with the --data-dir (or KEYGATE_DATA_DIR) it has, or pass --init to create it"
            )
        })?;
    }
    let (store, master_key) = open_store_and_master_key(&settings).await?;
    let standalone = Standalone::new(store, master_key, settings);
    if !database.init && find_account(standalone.operations(), ROOT_ACCOUNT_NAME).await?.is_none() {
        bail!("the database has no account '{ROOT_ACCOUNT_NAME}': start `keygate serve` on it once, or pass --init to create the account here");
    }
    // With --init, a fresh data directory gets its root account here, so scripts can start with admin.
    let root_password = std::env::var("KEYGATE_ROOT_PASSWORD").ok().filter(|value| !value.is_empty()).map(SecretString::from);
    let (_, generated) = ensure_root_account(standalone.operations(), root_password).await?;
    if let Some(password) = generated {
        eprintln!("keygate: created account 'root' with password: {}", password.expose_secret());
    }
    Ok(standalone)
}

/// The account named `account`, acting as `keygate admin`.
async fn account_actor(operations: Operations<'_>, account: &str) -> anyhow::Result<(AccountRecord, Actor)> {
    let record = find_account(operations, account).await?.with_context(|| format!("no account named '{account}'"))?;
    let actor = direct_actor(operations, &record, ADMIN_ACTOR);
    Ok((record, actor))
}

pub async fn run(command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::CreateUser { database, account, name, role, password_stdin, json } => {
            let standalone = open(&database).await?;
            let operations = standalone.operations();
            let role = Role::parse(&role).with_context(|| format!("unknown role '{role}': use admin, key-manager or member"))?;
            let name = PrincipalName::parse(&name)?;
            let (account, actor) = account_actor(operations, &account).await?;
            let password = if password_stdin {
                Some(super::client::read_secret_line("Password: ")?)
            } else {
                std::env::var("KEYGATE_USER_PASSWORD").ok().filter(|value| !value.is_empty()).map(SecretString::from)
            };
            let has_password = password.is_some();
            let user = create_user(operations, &actor, NewUser { name, role, password }).await?;
            if !has_password {
                eprintln!(
                    "note: {} has no password and cannot log in; give one with --password-stdin or KEYGATE_USER_PASSWORD when creating, or `keygate users set-password {}`",
                    user.name, user.name
                );
            }
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
            let standalone = open(&database).await?;
            let operations = standalone.operations();
            let (account, actor) = account_actor(operations, &account).await?;
            // A name that is not a RAM user's (malformed too) is refused as the store's lookup was.
            let no_such_user = |name: &str| {
                anyhow::Error::msg("User not found").context(format!("no RAM user named '{name}' in account {}", account.name))
            };
            let user_name = user.as_deref().map(|name| PrincipalName::parse(name).map_err(|_| no_such_user(name))).transpose()?;
            let owner = user_name.as_ref().map_or(AccessKeyOwner::Account, AccessKeyOwner::User);
            let created = create_access_key(operations, &actor, owner).await.map_err(|error| match (&user_name, error.code) {
                (Some(name), "User.NotFound") => no_such_user(name.as_str()),
                _ => error.into(),
            })?;
            let (access_key_id, secret) = (&created.record.access_key_id, &created.secret);
            if json {
                println!("{}", json!({"accessKeyId": access_key_id, "accessKeySecret": secret.expose_secret()}));
            } else {
                println!("AccessKey id:     {access_key_id}");
                println!("AccessKey secret: {}", secret.expose_secret());
                println!("The secret is shown only now; store it safely.");
            }
        }
        AdminCommand::SetAccountPassword { database, account } => {
            let standalone = open(&database).await?;
            let operations = standalone.operations();
            let password = std::env::var("KEYGATE_ROOT_PASSWORD")
                .ok()
                .filter(|value| !value.is_empty())
                .context("set KEYGATE_ROOT_PASSWORD to the new password")?;
            let (account, actor) = account_actor(operations, &account).await?;
            let sessions_ended = set_account_password(operations, &actor, SecretString::from(password)).await?;
            println!("password of account {} changed; {sessions_ended} of its sessions ended", account.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
