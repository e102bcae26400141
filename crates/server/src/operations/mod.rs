//! The operations layer: what the management surfaces do to keys, users, workspaces,
//! AccessKeys and sessions, written once. The Model Studio API, keygate's own API, the
//! Token Plan operations, the console and `keygate admin` all call these functions, and
//! none of them reaches the store another way.
//!
//! Each operation takes [`Operations`] (the store, master key, settings and clock it works
//! with), an [`Actor`] (the caller whose rules apply, the region it works in and the audit
//! context its changes are recorded with) and input already taken off the wire; it answers
//! with domain results or an [`OperationError`], never an HTTP status or page. The rules
//! themselves are `keygate-core`'s (`access`, `ids`, `permissions`, `key_import`, ...).
//!
//! - [`keys`]: API keys (create, edit, disable/enable, reset, delete, view, list) and plan
//!   keys; [`key_import`]: existing keys brought in; [`leaks`]: reported keys disabled.
//! - [`users`]: RAM users and passwords; [`access_keys`]: AccessKeys, and the key a
//!   signature is checked with; [`sessions`]: login, logout, the caller behind a token.
//! - [`workspaces`]: which workspaces a caller sees and may create keys in, membership,
//!   applications and model grants; [`audit`]: the audit log.
//! - [`billing`]: the model catalog with its prices, and what the caller's usage cost;
//!   [`usage`]: the caller's usage (calls, tokens, cost) filtered and grouped.
//! - [`model_limits`]: requests and tokens per period per workspace and model, beside the
//!   platform default of the catalog.

pub mod access_keys;
pub mod audit;
pub mod billing;
mod error;
pub mod key_import;
pub mod keys;
pub mod leaks;
pub mod model_limits;
pub mod sessions;
pub mod usage;
pub mod users;
pub mod workspaces;

use keygate_core::access::Caller;
use keygate_core::catalog::ModelCatalog;
use keygate_core::region::RegionPolicy;
use keygate_store::Store;

pub use error::{ErrorKind, OperationError};
/// The records operations answer with.
pub use keygate_store::{
    AccessKeyRecord, AccountRecord, ApiKeyRecord, AuditContext, AuditFilter, AuditRecord, KeyOrder, ModelGrant, UserRecord,
    WorkspaceDeletion, WorkspaceRecord,
};

use crate::clock::Clock;
use crate::secrets::MasterKey;
use crate::settings::Settings;

type Result<T, E = OperationError> = std::result::Result<T, E>;

/// What operations work with: the store, the master key, the settings (regions and their
/// listeners, session lifetime), the model catalog and the clock. Cheap to copy: it only
/// borrows them, from the server's state or from a [`Standalone`].
#[derive(Debug, Clone, Copy)]
pub struct Operations<'a> {
    store: &'a Store,
    master_key: &'a MasterKey,
    settings: &'a Settings,
    catalog: &'a ModelCatalog,
    clock: &'a Clock,
}

impl<'a> Operations<'a> {
    pub fn new(
        store: &'a Store,
        master_key: &'a MasterKey,
        settings: &'a Settings,
        catalog: &'a ModelCatalog,
        clock: &'a Clock,
    ) -> Operations<'a> {
        Operations { store, master_key, settings, catalog, clock }
    }

    /// The actor `caller`, working in `region` from `client_address`, now: its changes
    /// are audited at this moment of the clock.
    pub fn actor(&self, caller: Caller, region: &str, client_address: String) -> Actor {
        let audit = AuditContext {
            account_id: caller.account_id,
            actor: caller.audit_actor(),
            client_address,
            region: region.to_string(),
            credential: caller.credential.audit_text(),
            at: self.clock.now_milliseconds(),
        };
        Actor { caller, region: region.to_string(), audit }
    }

    /// The policy of a region this deployment knows.
    pub fn region_policy(&self, region: &str) -> Option<&'a RegionPolicy> {
        self.settings.regions.get(region)
    }

    pub fn catalog(&self) -> &'a ModelCatalog {
        self.catalog
    }

    /// The regions this process serves (asked only by an import, so not kept).
    pub fn served_regions(&self) -> Vec<String> {
        self.settings.served_regions()
    }
}

/// Who acts through an operation: the caller whose rules apply, the region it works in, and
/// the audit context its changes are recorded with.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub region: String,
    pub audit: AuditContext,
}

impl Actor {
    /// The policy of the actor's region.
    pub fn region_policy<'a>(&self, operations: &Operations<'a>) -> Result<&'a RegionPolicy> {
        operations.region_policy(&self.region).ok_or_else(|| OperationError::internal(format!("region {} has no policy", self.region)))
    }
}

/// Operations without a server (`keygate admin`, which acts on the database directly):
/// they own the store, master key and settings, and a clock of their own.
#[derive(Debug)]
pub struct Standalone {
    store: Store,
    master_key: MasterKey,
    settings: Settings,
    catalog: ModelCatalog,
    clock: Clock,
}

impl Standalone {
    pub fn new(store: Store, master_key: MasterKey, settings: Settings) -> Standalone {
        let catalog = settings.catalog();
        Standalone { store, master_key, settings, catalog, clock: Clock::default() }
    }

    pub fn operations(&self) -> Operations<'_> {
        Operations::new(&self.store, &self.master_key, &self.settings, &self.catalog, &self.clock)
    }
}

/// At most 60 characters of user input, for messages; never an API key.
fn shown(text: &str) -> String {
    keygate_core::keys::shown_input(text, 60)
}
