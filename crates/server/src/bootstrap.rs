//! First start and every start: open the store, load the master key, make sure the account
//! `root` exists with a default workspace in every known region.

use anyhow::{bail, Context};
use keygate_store::Store;
use secrecy::SecretString;

use crate::operations::users::ensure_account;
use crate::operations::Operations;
use crate::secrets::{generate_password, MasterKey, MASTER_KEY_ENVIRONMENT_VARIABLE, MASTER_KEY_FILE_NAME};
use crate::settings::Settings;
use crate::state::AppState;

/// Name of the account created on first start.
pub const ROOT_ACCOUNT_NAME: &str = "root";

/// The state, and the root password when it was generated (to print once).
pub struct Bootstrapped {
    pub state: AppState,
    pub generated_root_password: Option<SecretString>,
}

/// Opens the data directory's store and master key.
pub async fn open_store_and_master_key(settings: &Settings) -> anyhow::Result<(Store, MasterKey)> {
    let environment_value = std::env::var(MASTER_KEY_ENVIRONMENT_VARIABLE).ok().filter(|value| !value.trim().is_empty());
    if let Some(url) = &settings.database_url {
        // Every node must hold the same master key: temporary keys minted on one node are
        // verified on another, and AccessKey secrets are decrypted wherever a call lands.
        let master_key = match (&environment_value, &settings.master_key_file) {
            (Some(value), _) => MasterKey::from_hex(value)?,
            (None, Some(file)) if file.exists() => MasterKey::load_or_create(None, file)?,
            _ => bail!(
                "with PostgreSQL every node needs the same master key: set {MASTER_KEY_ENVIRONMENT_VARIABLE} (64 hex characters) or --master-key-file to an existing file"
            ),
        };
        let store = Store::open_postgres(url).await.context("connecting to PostgreSQL")?;
        return Ok((store, master_key));
    }
    create_private_directory(&settings.data_dir)?;
    let master_key_file = settings.master_key_file.clone().unwrap_or_else(|| settings.data_dir.join(MASTER_KEY_FILE_NAME));
    let master_key = MasterKey::load_or_create(environment_value.as_deref(), &master_key_file)?;
    let store =
        Store::open_sqlite(&settings.data_dir).await.with_context(|| format!("opening the database in {}", settings.data_dir.display()))?;
    Ok((store, master_key))
}

/// Refuses, naming the path it looked for (made absolute: the default data directory is
/// relative to the working directory), a SQLite data directory, database file or master
/// key file that does not exist. PostgreSQL passes: its database is checked once open.
pub fn require_existing_database(settings: &Settings) -> anyhow::Result<()> {
    if settings.database_url.is_some() {
        return Ok(());
    }
    let absolute = |path: &std::path::Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let data_dir = absolute(&settings.data_dir);
    if !data_dir.is_dir() {
        bail!("no data directory at {}", data_dir.display());
    }
    let database_file = data_dir.join(keygate_store::DATABASE_FILE_NAME);
    if !database_file.is_file() {
        bail!("no database at {}", database_file.display());
    }
    let master_key_in_environment = std::env::var(MASTER_KEY_ENVIRONMENT_VARIABLE).is_ok_and(|value| !value.trim().is_empty());
    let master_key_file = settings.master_key_file.clone().unwrap_or_else(|| data_dir.join(MASTER_KEY_FILE_NAME));
    if !master_key_in_environment && !master_key_file.is_file() {
        bail!("no master key at {} and {MASTER_KEY_ENVIRONMENT_VARIABLE} is not set", absolute(&master_key_file).display());
    }
    Ok(())
}

/// Creates the data directory when missing and makes it 0700 whatever the umask: it
/// holds the master key and the database, which nobody else on the machine may read.
fn create_private_directory(directory: &std::path::Path) -> anyhow::Result<()> {
    let context = || format!("creating data directory {}", directory.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory).with_context(context)?;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700)).with_context(context)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(directory).with_context(context)?;
    Ok(())
}

/// Makes sure the root account and its default workspaces exist. `root_password` (from
/// `KEYGATE_ROOT_PASSWORD`) is used only when the account is created.
pub async fn ensure_root_account(
    operations: Operations<'_>,
    root_password: Option<SecretString>,
) -> anyhow::Result<(i64, Option<SecretString>)> {
    let (password, generated) = match root_password {
        Some(password) => (password, false),
        None => (generate_password(), true),
    };
    let (account, created) = ensure_account(operations, ROOT_ACCOUNT_NAME, password.clone()).await?;
    Ok((account.account_id, (created && generated).then_some(password)))
}

pub async fn bootstrap(settings: Settings, root_password: Option<SecretString>) -> anyhow::Result<Bootstrapped> {
    let (store, master_key) = open_store_and_master_key(&settings).await?;
    let region = settings.listeners.first().map(|listener| listener.region.clone()).unwrap_or_else(|| settings.default_region.clone());
    let state = AppState::new(store, settings, master_key, region)?;
    let (_, generated_root_password) = ensure_root_account(state.operations(), root_password).await?;
    Ok(Bootstrapped { state, generated_root_password })
}
