//! The verification state of keys held in memory (digest → compiled key) and the
//! authorization decision of docs/CONTRACT.md#order-of-checks, in its order.
//!
//! The registry is plain data behind a lock: the store fills it at start and after every
//! change, and the gateway reads it without touching the database. The lock is sharded by
//! thread (each reader takes only its own thread's shard, a writer takes them all), so
//! readers on different cores never write the same cache line; and a decision that needs
//! only to look at a key ([`KeyRegistry::authenticate_then`]) borrows it under the lock
//! instead of taking a reference count shared by every call of that key. Each entry carries the
//! change-feed version that produced it, and an update older than the entry is ignored, so
//! a slow cache fill can never overwrite a newer revocation. Revoked and deleted keys stay
//! as tombstones for the same reason.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crossbeam_utils::sync::ShardedLock;
use hashbrown::HashTable;
use rustc_hash::FxHashMap;

use crate::key_limits::KeyLimits;
use crate::keys::{parse_permanent_key, KeyDigest, KeyFormat, KeyParseError, TEMPORARY_PREFIX};
use crate::limits::LimitValues;
use crate::permissions::KeyAuth;
use crate::temporary_keys::{verify_temporary_key, TemporaryKeyError, TemporaryKeySecret};

/// Whether a key may be used at all, before any per-request check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStanding {
    Usable,
    Disabled,
    /// Its creator (a RAM user) is disabled.
    CreatorDisabled,
    /// Its creator was removed from the key's workspace.
    CreatorNotMember,
}

/// Everything needed to authorize a call with one key, compiled from the store's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledKey {
    pub key_id: i64,
    pub account_id: i64,
    /// The account's name, region and workspace are shared: the registry holds each
    /// distinct string once, however many keys carry it.
    pub account_name: Arc<str>,
    pub region: Arc<str>,
    pub workspace_id: Arc<str>,
    pub creator_user_id: Option<i64>,
    pub format: KeyFormat,
    pub standing: KeyStanding,
    pub auth: KeyAuth,
    /// When the key stops working (Unix seconds); `None`: never
    /// (docs/CONTRACT.md#expiry-and-grace-periods). Compared with the clock on every use,
    /// so an expiry needs no change-feed event.
    pub expires_at: Option<i64>,
    /// The secret a reset replaced, still accepted until its grace period ends; out of line,
    /// like the limits: few keys are in a grace period.
    pub grace_secret: Option<Box<GraceSecret>>,
    /// The key's own limits (docs/CONTRACT.md#per-key-limits), out of line: most keys have
    /// none, and the registry holds every key of a deployment in memory.
    pub limits: Option<Box<KeyLimits>>,
}

/// The old secret of a key reset with a grace period: its digest and when it stops
/// working (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceSecret {
    pub digest: KeyDigest,
    pub ends_at: i64,
}

/// Whether a key with this expiry has expired at `now` (Unix seconds).
pub fn has_expired(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|expires_at| now >= expires_at)
}

/// The models granted to a workspace, compiled: the default workspace may call every
/// catalog model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceGrants {
    pub workspace_id: String,
    pub is_default: bool,
    /// Sorted model names with `inference` granted (ignored for the default workspace).
    pub inference_models: Vec<String>,
    /// Sorted application ids that belong to the workspace.
    pub applications: Vec<String>,
    /// The workspace's own model limits (UpdateModelLimits), sorted by model name.
    pub model_limits: Vec<(String, LimitValues)>,
}

impl WorkspaceGrants {
    /// The workspace's own limit of `model`, when it sets one.
    pub fn model_limit(&self, model: &str) -> Option<&LimitValues> {
        self.model_limits.binary_search_by(|(name, _)| name.as_str().cmp(model)).ok().map(|index| &self.model_limits[index].1)
    }

    pub fn may_call_model(&self, model: &str) -> bool {
        self.is_default || self.inference_models.binary_search_by(|name| name.as_str().cmp(model)).is_ok()
    }

    pub fn owns_application(&self, app_id: &str) -> bool {
        self.applications.binary_search_by(|id| id.as_str().cmp(app_id)).is_ok()
    }
}

/// What the registry knows of one digest: a live key's current secret, the old secret of a
/// reset in its grace period (both name the key), or a tombstone.
#[derive(Debug, Clone)]
struct Entry {
    digest: KeyDigest,
    version: u64,
    /// `None`: a tombstone (deleted, or the old digest of a reset key).
    key: Option<Arc<CompiledKey>>,
    /// The key's expiry (Unix seconds, `i64::MAX`: never), copied from the key, like its
    /// region and standing below, so that `authenticate` decides from the entry's own
    /// memory: with many keys, every pointer followed to another allocation (the key, then
    /// its region string) is likely a cache miss, and those misses were most of the time
    /// of a verification.
    expires_at: i64,
    /// When this digest stops working although the key lives on (Unix seconds): the end of
    /// a grace period for the old secret of a reset, `i64::MAX` for the current secret.
    secret_ends_at: i64,
    /// An index into `RegistryState::regions`.
    region: u32,
    standing: KeyStanding,
}

impl Entry {
    fn tombstone(digest: KeyDigest, version: u64) -> Entry {
        Entry {
            digest,
            version,
            key: None,
            region: u32::MAX,
            standing: KeyStanding::Disabled,
            expires_at: i64::MIN,
            secret_ends_at: i64::MIN,
        }
    }

    fn key_id(&self) -> Option<i64> {
        self.key.as_ref().map(|key| key.key_id)
    }
}

/// Why a key is refused at authentication (all answer 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticationFailure {
    #[error("No API-key provided.")]
    Missing,
    #[error("Invalid API-key provided.")]
    Malformed,
    #[error("Invalid API-key provided.")]
    Unknown,
    #[error("Invalid API-key provided.")]
    OtherRegion,
    #[error("The API key is disabled.")]
    Disabled,
    #[error("The API key's owner is disabled or no longer a member of its workspace.")]
    CreatorNotActive,
    #[error("The temporary API key has expired.")]
    Expired,
    #[error("The API key has expired.")]
    KeyExpired,
    #[error("Invalid API-key provided: Token Plan and Coding Plan keys (sk-sp-) work only on the plan endpoint.")]
    PlanKeyOnPayAsYouGoEndpoint,
    #[error("Invalid API-key provided: this plan endpoint accepts only Token Plan and Coding Plan keys (sk-sp-).")]
    NotAPlanKey,
}

/// Which keys an endpoint takes (docs/CONTRACT.md#token-plan): an ordinary listener takes
/// pay-as-you-go keys, a plan listener only Token Plan / Coding Plan keys (`sk-sp-`). Each
/// refuses the other kind, so a plan key cannot be spent on pay-as-you-go calls and the
/// reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyEndpoint {
    #[default]
    PayAsYouGo,
    Plan,
}

impl KeyEndpoint {
    /// Whether a key of `format` may be presented here.
    pub fn admits(self, format: KeyFormat) -> Result<(), AuthenticationFailure> {
        match (self, format == KeyFormat::Plan) {
            (KeyEndpoint::PayAsYouGo, false) | (KeyEndpoint::Plan, true) => Ok(()),
            (KeyEndpoint::PayAsYouGo, true) => Err(AuthenticationFailure::PlanKeyOnPayAsYouGoEndpoint),
            (KeyEndpoint::Plan, false) => Err(AuthenticationFailure::NotAPlanKey),
        }
    }
}

impl From<KeyParseError> for AuthenticationFailure {
    fn from(error: KeyParseError) -> Self {
        match error {
            KeyParseError::Empty => AuthenticationFailure::Missing,
            KeyParseError::Malformed | KeyParseError::BadChecksum => AuthenticationFailure::Malformed,
        }
    }
}

/// Why an authenticated call is refused (403/404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationFailure {
    #[error("Access denied: this address is not in the API key's IP whitelist.")]
    AddressNotAllowed,
    #[error("Access denied: the workspace header does not name this API key's workspace.")]
    WorkspaceMismatch,
    /// The model is in the catalog but this key may not call it; why, in
    /// [`ModelDenial`] (the gateway's message names the model and the workspace).
    #[error("Model access denied: {0}.")]
    ModelNotAllowed(ModelDenial),
    #[error("Access denied: this application is not available to this API key.")]
    AppNotAllowed,
    #[error("The model does not exist or is not served here.")]
    UnknownModel,
    #[error("Model access denied: this API key may call only some models or applications, and the request does not say which (a proxy must name the model in X-Keygate-Model).")]
    TargetNotNamed,
}

/// Why a key may not call a model the catalog knows: its workspace was not granted the
/// model, its custom permissions do not include it, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModelDenial {
    #[error("the API key's workspace has not been granted this model")]
    NotGranted,
    #[error("the API key's custom permissions do not include this model")]
    NotInKeyScope,
    #[error("the API key's workspace has not been granted this model, and the key's custom permissions do not include it")]
    NeitherGrantedNorInScope,
}

impl ModelDenial {
    /// The denial of a model the workspace has (`granted`) or has not been granted, in or
    /// out of the key's scope (`in_scope`); `None` when both allow it.
    pub fn of(granted: bool, in_scope: bool) -> Option<ModelDenial> {
        match (granted, in_scope) {
            (true, true) => None,
            (false, true) => Some(ModelDenial::NotGranted),
            (true, false) => Some(ModelDenial::NotInKeyScope),
            (false, false) => Some(ModelDenial::NeitherGrantedNorInScope),
        }
    }
}

/// What the call asks for, after authentication.
#[derive(Debug, Clone, Copy)]
pub enum CallTarget<'a> {
    Model(&'a str),
    Application(&'a str),
    /// No model or app is involved: minting a temporary key, listing models.
    Nothing,
    /// A model call whose model or app is not known (`/auth/verify` without a model): it
    /// passes only for a key that may call every model and app of the catalog, so that a
    /// proxy that forgets to name the model cannot widen a key.
    Unnamed,
}

/// The facts of one request that the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    /// The client address, `None` when it could not be parsed (it then matches no
    /// whitelist entry).
    pub client_address: Option<IpAddr>,
    pub workspace_header: Option<&'a str>,
    pub target: CallTarget<'a>,
}

/// Steps 4-6 of docs/CONTRACT.md#order-of-checks for an authenticated key. `model_is_known` says whether the
/// catalog knows the model.
pub fn authorize_call(
    key: &CompiledKey,
    grants: Option<&WorkspaceGrants>,
    facts: &CallFacts<'_>,
    model_is_known: impl Fn(&str) -> bool,
) -> Result<(), AuthorizationFailure> {
    if let KeyAuth::Custom(custom) = &key.auth {
        if !custom.access_ips.is_empty() {
            let allowed = facts.client_address.is_some_and(|address| custom.access_ips.allows(address));
            if !allowed {
                return Err(AuthorizationFailure::AddressNotAllowed);
            }
        }
    }
    if let Some(header) = facts.workspace_header {
        if header.trim() != &*key.workspace_id {
            return Err(AuthorizationFailure::WorkspaceMismatch);
        }
    }
    match facts.target {
        CallTarget::Nothing => Ok(()),
        CallTarget::Unnamed => {
            let scope_is_everything = match &key.auth {
                KeyAuth::All => true,
                KeyAuth::Custom(custom) => custom.model_scope.allow_all_models && custom.app_scope.allow_all_apps,
            };
            // A sub-workspace may call only the models granted to it.
            let workspace_may_call_everything = grants.is_some_and(|grants| grants.is_default);
            if scope_is_everything && workspace_may_call_everything {
                Ok(())
            } else {
                Err(AuthorizationFailure::TargetNotNamed)
            }
        }
        CallTarget::Model(model) => {
            if !model_is_known(model) {
                return Err(AuthorizationFailure::UnknownModel);
            }
            let granted = grants.is_some_and(|grants| grants.may_call_model(model));
            let in_scope = match &key.auth {
                KeyAuth::All => true,
                KeyAuth::Custom(custom) => custom.model_scope.allows(model),
            };
            match ModelDenial::of(granted, in_scope) {
                None => Ok(()),
                Some(denial) => Err(AuthorizationFailure::ModelNotAllowed(denial)),
            }
        }
        CallTarget::Application(app_id) => {
            let owned = grants.is_some_and(|grants| grants.owns_application(app_id));
            let in_scope = match &key.auth {
                KeyAuth::All => true,
                KeyAuth::Custom(custom) => custom.app_scope.allows(app_id),
            };
            if owned && in_scope {
                Ok(())
            } else {
                Err(AuthorizationFailure::AppNotAllowed)
            }
        }
    }
}

/// The hash of a digest in the registry's table: its first 64 bits, which are already
/// uniformly distributed (SHA-256), as they are. This does not open the table to hash
/// flooding: its entries are digests of keys that keygate generated (or an administrator
/// imported), and a presented key only probes, never inserts.
fn digest_hash(digest: &KeyDigest) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The hash of a key id in the table by id: ids are small sequential integers, spread over
/// the 64 bits by one multiplication (the table takes its control bits from the top).
fn key_id_hash(key_id: i64) -> u64 {
    (key_id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The registry's contents, sized for millions of keys: one vector of entries, one per
/// digest, and two tables of 4-byte indices into it (by digest, and by key id for the
/// current digest of each live key), instead of maps that each hold their own copy of a
/// digest or an entry.
#[derive(Debug, Default)]
struct RegistryState {
    /// Every digest's entry. An entry is overwritten in place and never removed (revoked
    /// digests stay as tombstones) until a full resync builds a new state.
    entries: Vec<Entry>,
    /// The index in `entries` of each digest, hashed by [`digest_hash`].
    by_digest: HashTable<u32>,
    /// The index in `entries` of the current digest of each live key, hashed by
    /// [`key_id_hash`]. Every index here names an entry that holds a key of that id.
    by_key_id: HashTable<u32>,
    /// By workspace id, looked up on every call with the key's own workspace id (FxHash:
    /// the ids are the store's, never chosen by a client).
    workspaces: FxHashMap<String, (u64, Arc<WorkspaceGrants>)>,
    /// The region names that keys carry, each stored once (a handful; never shrinks).
    regions: Vec<Arc<str>>,
    /// The account names, regions and workspace ids that keys carry, each stored once.
    shared_strings: HashSet<Arc<str>>,
    /// The highest change-feed version applied.
    applied_version: u64,
}

impl RegistryState {
    /// An empty state with room for `keys` digests without growing.
    fn with_capacity(keys: usize) -> RegistryState {
        RegistryState {
            entries: Vec::with_capacity(keys),
            by_digest: HashTable::with_capacity(keys),
            by_key_id: HashTable::with_capacity(keys),
            ..RegistryState::default()
        }
    }

    fn region_index(&mut self, region: &str) -> u32 {
        let index = match self.regions.iter().position(|known| &**known == region) {
            Some(index) => index,
            None => {
                self.regions.push(Arc::from(region));
                self.regions.len() - 1
            }
        };
        u32::try_from(index).expect("fewer than 2^32 regions")
    }

    fn shared_string(&mut self, text: &Arc<str>) -> Arc<str> {
        match self.shared_strings.get(&**text) {
            Some(shared) => shared.clone(),
            None => {
                self.shared_strings.insert(text.clone());
                text.clone()
            }
        }
    }

    /// The key with its strings replaced by the registry's shared copies (when nothing
    /// else holds the key yet, as when the store has just compiled it).
    fn with_shared_strings(&mut self, mut key: Arc<CompiledKey>) -> Arc<CompiledKey> {
        if let Some(unshared) = Arc::get_mut(&mut key) {
            unshared.account_name = self.shared_string(&unshared.account_name);
            unshared.region = self.shared_string(&unshared.region);
            unshared.workspace_id = self.shared_string(&unshared.workspace_id);
        }
        key
    }

    fn live_entry(&mut self, digest: KeyDigest, version: u64, key: Arc<CompiledKey>, secret_ends_at: i64) -> Entry {
        Entry {
            digest,
            version,
            region: self.region_index(&key.region),
            standing: key.standing,
            expires_at: key.expires_at.unwrap_or(i64::MAX),
            secret_ends_at,
            key: Some(key),
        }
    }

    fn index_of(&self, digest: &KeyDigest) -> Option<u32> {
        self.by_digest.find(digest_hash(digest), |&index| self.entries[index as usize].digest == *digest).copied()
    }

    fn entry(&self, digest: &KeyDigest) -> Option<&Entry> {
        self.index_of(digest).map(|index| &self.entries[index as usize])
    }

    /// The index of the current digest's entry of the live key `key_id`.
    fn index_of_key(&self, key_id: i64) -> Option<u32> {
        self.by_key_id.find(key_id_hash(key_id), |&index| self.entries[index as usize].key_id() == Some(key_id)).copied()
    }

    fn entry_of_key(&self, key_id: i64) -> Option<&Entry> {
        self.index_of_key(key_id).map(|index| &self.entries[index as usize])
    }

    /// Stores `entry` under its digest, over the digest's entry if it has one, and returns
    /// its index. An entry that named a key no longer does, so the key's index by id goes
    /// if it pointed here.
    fn put(&mut self, entry: Entry) -> u32 {
        let hash = digest_hash(&entry.digest);
        let RegistryState { entries, by_digest, by_key_id, .. } = self;
        match by_digest.find(hash, |&index| entries[index as usize].digest == entry.digest).copied() {
            Some(index) => {
                let slot = &mut entries[index as usize];
                if let Some(previous_key_id) = slot.key_id().filter(|&previous| Some(previous) != entry.key_id()) {
                    if let Ok(by_id) = by_key_id.find_entry(key_id_hash(previous_key_id), |&other| other == index) {
                        by_id.remove();
                    }
                }
                *slot = entry;
                index
            }
            None => {
                let index = u32::try_from(entries.len()).expect("fewer than 2^32 digests");
                entries.push(entry);
                by_digest.insert_unique(hash, index, |&other| digest_hash(&entries[other as usize].digest));
                index
            }
        }
    }

    /// Makes `index` (an entry holding the key `key_id`) the key's current digest.
    fn point_key_at(&mut self, key_id: i64, index: u32) {
        let RegistryState { entries, by_key_id, .. } = self;
        let hash = key_id_hash(key_id);
        match by_key_id.find_mut(hash, |&other| entries[other as usize].key_id() == Some(key_id)) {
            Some(current) => *current = index,
            None => {
                by_key_id.insert_unique(hash, index, |&other| {
                    key_id_hash(entries[other as usize].key_id().expect("an index by key id names a live entry"))
                });
            }
        }
    }

    /// Applies one update produced at change-feed `version` (see [`KeyRegistry::apply`]).
    fn apply_update(&mut self, version: u64, update: RegistryUpdate) {
        match update {
            RegistryUpdate::Key { digest, key } => {
                if self.entry(&digest).is_some_and(|entry| entry.version > version) {
                    return;
                }
                let key = self.with_shared_strings(key);
                let key_id = key.key_id;
                let previous = self.index_of_key(key_id);
                // The old secret of a reset in its grace period works beside the new one.
                let grace = key.grace_secret.as_deref().copied().filter(|grace| grace.digest != digest);
                let entry = self.live_entry(digest, version, key.clone(), i64::MAX);
                let index = self.put(entry);
                // A key that moved to a new digest (reset) leaves its old one revoked.
                if let Some(previous) = previous.filter(|&previous| previous != index) {
                    let previous_digest = self.entries[previous as usize].digest;
                    self.put(Entry::tombstone(previous_digest, version));
                }
                self.point_key_at(key_id, index);
                if let Some(grace) = grace {
                    if self.entry(&grace.digest).is_none_or(|entry| entry.version <= version) {
                        let entry = self.live_entry(grace.digest, version, key, grace.ends_at);
                        self.put(entry);
                    }
                }
            }
            RegistryUpdate::Revoked { digest } => {
                if self.entry(&digest).is_some_and(|entry| entry.version > version) {
                    return;
                }
                self.put(Entry::tombstone(digest, version));
            }
            RegistryUpdate::Workspace(grants) => {
                let newer_present = self.workspaces.get(&grants.workspace_id).is_some_and(|(present, _)| *present > version);
                if !newer_present {
                    self.workspaces.insert(grants.workspace_id.clone(), (version, grants));
                }
            }
            RegistryUpdate::WorkspaceRemoved { workspace_id } => {
                self.workspaces.remove(&workspace_id);
            }
        }
    }
}

/// A full load of the registry (the initial fill, or a resync) from one snapshot taken at
/// `version`, filled batch by batch as the store reads the rows and then put in place by
/// [`KeyRegistry::install`]. Sized up front from the number of keys, so that the tables
/// do not grow (and briefly double) while a million keys arrive.
#[derive(Debug)]
pub struct RegistryLoad {
    version: u64,
    state: RegistryState,
}

impl RegistryLoad {
    /// A load of a snapshot taken at `version` that expects about `keys` digests.
    pub fn new(version: u64, keys: usize) -> RegistryLoad {
        RegistryLoad { version, state: RegistryState::with_capacity(keys) }
    }

    /// The version of the snapshot this load holds.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Adds a batch of the snapshot's state.
    pub fn add(&mut self, updates: impl IntoIterator<Item = RegistryUpdate>) {
        for update in updates {
            self.state.apply_update(self.version, update);
        }
        self.state.applied_version = self.state.applied_version.max(self.version);
    }
}

/// The in-memory verification state of one node.
#[derive(Debug, Default)]
pub struct KeyRegistry {
    state: ShardedLock<RegistryState>,
}

/// One change to apply to the registry.
#[derive(Debug, Clone)]
pub enum RegistryUpdate {
    /// The key's current state under its current digest.
    Key {
        digest: KeyDigest,
        key: Arc<CompiledKey>,
    },
    /// The digest no longer authenticates anything (deleted key, or old secret of a reset).
    Revoked {
        digest: KeyDigest,
    },
    Workspace(Arc<WorkspaceGrants>),
    WorkspaceRemoved {
        workspace_id: String,
    },
}

impl KeyRegistry {
    pub fn new() -> KeyRegistry {
        KeyRegistry::default()
    }

    /// Applies updates produced at change-feed `version`. An update older than what an
    /// entry already holds is ignored.
    pub fn apply(&self, version: u64, updates: Vec<RegistryUpdate>) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for update in updates {
            state.apply_update(version, update);
        }
        state.applied_version = state.applied_version.max(version);
    }

    /// Replaces everything with a snapshot taken at `version` (a full resync): see
    /// [`KeyRegistry::install`].
    pub fn replace_all(&self, version: u64, updates: Vec<RegistryUpdate>) {
        let mut load = RegistryLoad::new(version, updates.len());
        load.add(updates);
        self.install(load);
    }

    /// Replaces everything with a full load. Entries newer than its snapshot (applied by
    /// this node after the snapshot was read) are kept, so a resync cannot undo a newer
    /// revocation; keys absent from the snapshot are gone.
    pub fn install(&self, load: RegistryLoad) {
        let RegistryLoad { version, state: mut fresh_state } = load;
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for mut entry in std::mem::take(&mut state.entries) {
            if entry.version > version {
                let key_id = entry.key_id();
                if let Some(key) = &entry.key {
                    // The region index is into the old state's list: re-intern it.
                    entry.region = fresh_state.region_index(&key.region);
                }
                let index = fresh_state.put(entry);
                if let Some(key_id) = key_id {
                    fresh_state.point_key_at(key_id, index);
                }
            }
        }
        for (workspace_id, (entry_version, grants)) in state.workspaces.drain() {
            if entry_version > version {
                fresh_state.workspaces.insert(workspace_id, (entry_version, grants));
            }
        }
        fresh_state.applied_version = fresh_state.applied_version.max(state.applied_version);
        *state = fresh_state;
    }

    /// The highest version applied so far.
    pub fn applied_version(&self) -> u64 {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).applied_version
    }

    /// Number of live keys held.
    pub fn live_key_count(&self) -> usize {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entries.iter().filter(|entry| entry.key.is_some()).count()
    }

    /// The key with this digest, if live.
    pub fn lookup(&self, digest: &KeyDigest) -> Option<Arc<CompiledKey>> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry(digest).and_then(|entry| entry.key.clone())
    }

    /// The live key with this id (for temporary keys, which name their parent by id).
    pub fn lookup_by_id(&self, key_id: i64) -> Option<Arc<CompiledKey>> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry_of_key(key_id).and_then(|entry| entry.key.clone())
    }

    /// The change-feed version at which the live key `key_id` was last applied, if it is
    /// held: a follower need not read again a key this node has already applied at that
    /// version or later (a node's own writes come back to it through the feed).
    pub fn key_version(&self, key_id: i64) -> Option<u64> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry_of_key(key_id).map(|entry| entry.version)
    }

    pub fn workspace(&self, workspace_id: &str) -> Option<Arc<WorkspaceGrants>> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.workspaces.get(workspace_id).map(|(_, grants)| grants.clone())
    }

    /// Steps 1-3 of docs/CONTRACT.md#order-of-checks for a permanent key presented in `region`
    /// at `now` (Unix seconds). The same decision as [`KeyRegistry::lookup`] then
    /// [`standing_check`], from the entry's copies of the region, standing and times.
    pub fn authenticate(&self, presented: &str, region: &str, now: i64) -> Result<Arc<CompiledKey>, AuthenticationFailure> {
        self.authenticate_on(presented, region, KeyEndpoint::PayAsYouGo, now)
    }

    /// [`KeyRegistry::authenticate`] on an endpoint of `endpoint`'s kind: the key's format
    /// (its prefix) is checked before the lookup.
    pub fn authenticate_on(
        &self,
        presented: &str,
        region: &str,
        endpoint: KeyEndpoint,
        now: i64,
    ) -> Result<Arc<CompiledKey>, AuthenticationFailure> {
        self.authenticate_permanent(presented, region, endpoint, now).map(|(key, _)| key)
    }

    /// [`KeyRegistry::authenticate_on`], with when the presented secret stops working
    /// (Unix seconds, `i64::MAX`: never): the key's expiry, or the end of the grace period
    /// of an old secret, whichever is first.
    fn authenticate_permanent(
        &self,
        presented: &str,
        region: &str,
        endpoint: KeyEndpoint,
        now: i64,
    ) -> Result<(Arc<CompiledKey>, i64), AuthenticationFailure> {
        let parsed = parse_permanent_key(presented)?;
        endpoint.admits(parsed.format)?;
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = state.entry(&parsed.digest).ok_or(AuthenticationFailure::Unknown)?;
        let key = entry.key.as_ref().ok_or(AuthenticationFailure::Unknown)?;
        // An old secret past its grace period is refused like any wrong key.
        if now >= entry.secret_ends_at {
            return Err(AuthenticationFailure::Unknown);
        }
        if state.regions.get(entry.region as usize).map(|known| &**known) != Some(region) {
            return Err(AuthenticationFailure::OtherRegion);
        }
        standing_allows(entry.standing)?;
        if now >= entry.expires_at {
            return Err(AuthenticationFailure::KeyExpired);
        }
        Ok((key.clone(), entry.expires_at.min(entry.secret_ends_at)))
    }

    /// Checks 1-3 for any key, permanent or temporary (`st-`), at `now` (Unix seconds).
    pub fn authenticate_any(
        &self,
        presented: &str,
        region: &str,
        endpoint: KeyEndpoint,
        temporary_secret: &TemporaryKeySecret,
        now: i64,
    ) -> Result<AuthenticatedKey, AuthenticationFailure> {
        if !presented.starts_with(TEMPORARY_PREFIX) {
            return self.authenticate_permanent(presented, region, endpoint, now).map(|(key, works_until)| AuthenticatedKey {
                key,
                temporary: false,
                works_until,
            });
        }
        // A temporary key is not a plan key, whatever its parent.
        endpoint.admits(KeyFormat::Temporary)?;
        let claims = verify_temporary_key(temporary_secret, presented, now).map_err(|error| match error {
            TemporaryKeyError::Invalid => AuthenticationFailure::Malformed,
            TemporaryKeyError::Expired => AuthenticationFailure::Expired,
        })?;
        let (digest, key) = {
            let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = state.entry_of_key(claims.parent_key_id).ok_or(AuthenticationFailure::Unknown)?;
            (entry.digest, entry.key.clone().ok_or(AuthenticationFailure::Unknown)?)
        };
        // A reset gives the parent a new digest: tokens minted from the old secret die, at
        // once or when the old secret's grace period ends.
        let from_current_secret = claims.matches_parent_digest(&digest);
        let from_grace_secret =
            key.grace_secret.as_deref().is_some_and(|grace| now < grace.ends_at && claims.matches_parent_digest(&grace.digest));
        if !from_current_secret && !from_grace_secret {
            return Err(AuthenticationFailure::Unknown);
        }
        endpoint.admits(key.format)?;
        standing_check(&key, region, now)?;
        Ok(AuthenticatedKey { key, temporary: true, works_until: claims.expires_at })
    }

    /// [`KeyRegistry::authenticate_any`], then `decide` on the key, its workspace's grants
    /// and when the presented secret stops working, with the key borrowed under the
    /// registry's lock: no reference count is taken, and the workspace is found under the
    /// same lock. Every call of one key would otherwise add to and take from that key's
    /// one reference count, a cache line written by every core (docs/PERFORMANCE.md).
    /// `decide` runs under the read lock: it must not call the registry.
    pub fn authenticate_then<R>(
        &self,
        presented: &str,
        region: &str,
        endpoint: KeyEndpoint,
        temporary_secret: &TemporaryKeySecret,
        now: i64,
        decide: impl FnOnce(AuthenticatedView<'_>) -> R,
    ) -> Result<R, AuthenticationFailure> {
        if presented.starts_with(TEMPORARY_PREFIX) {
            // Rare next to permanent keys: the owned path, then the workspace.
            let authenticated = self.authenticate_any(presented, region, endpoint, temporary_secret, now)?;
            let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let workspace = state.workspaces.get(&*authenticated.key.workspace_id).map(|(_, grants)| grants);
            return Ok(decide(AuthenticatedView {
                key: &authenticated.key,
                temporary: true,
                works_until: authenticated.works_until,
                workspace,
            }));
        }
        let parsed = parse_permanent_key(presented)?;
        endpoint.admits(parsed.format)?;
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = state.entry(&parsed.digest).ok_or(AuthenticationFailure::Unknown)?;
        let key = entry.key.as_ref().ok_or(AuthenticationFailure::Unknown)?;
        // The same checks, in the same order, as `authenticate_permanent`.
        if now >= entry.secret_ends_at {
            return Err(AuthenticationFailure::Unknown);
        }
        if state.regions.get(entry.region as usize).map(|known| &**known) != Some(region) {
            return Err(AuthenticationFailure::OtherRegion);
        }
        standing_allows(entry.standing)?;
        if now >= entry.expires_at {
            return Err(AuthenticationFailure::KeyExpired);
        }
        let workspace = state.workspaces.get(&*key.workspace_id).map(|(_, grants)| grants);
        Ok(decide(AuthenticatedView { key, temporary: false, works_until: entry.expires_at.min(entry.secret_ends_at), workspace }))
    }

    /// The current digest of a live key (to mint temporary keys from it).
    pub fn digest_of(&self, key_id: i64) -> Option<KeyDigest> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry_of_key(key_id).map(|entry| entry.digest)
    }
}

/// A key that passed authentication, borrowed from the registry for one decision
/// ([`KeyRegistry::authenticate_then`]). The key and the grants are lent as the registry
/// holds them (`Arc`s), for a caller that keeps a handle of its own on them.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedView<'a> {
    pub key: &'a Arc<CompiledKey>,
    /// Presented as an `st-` temporary key.
    pub temporary: bool,
    /// As [`AuthenticatedKey::works_until`].
    pub works_until: i64,
    /// The grants of the key's workspace, when the registry holds them.
    pub workspace: Option<&'a Arc<WorkspaceGrants>>,
}

/// A key that passed authentication.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub key: Arc<CompiledKey>,
    /// Presented as an `st-` temporary key.
    pub temporary: bool,
    /// When the presented secret stops working (Unix seconds, `i64::MAX`: never): the
    /// key's expiry or the end of an old secret's grace period, whichever is first. A
    /// temporary key minted from it may not outlive it.
    pub works_until: i64,
}

/// Checks the region, the standing and the expiry of a live key at `now` (Unix seconds).
pub fn standing_check(key: &CompiledKey, region: &str, now: i64) -> Result<(), AuthenticationFailure> {
    if &*key.region != region {
        return Err(AuthenticationFailure::OtherRegion);
    }
    standing_allows(key.standing)?;
    if has_expired(key.expires_at, now) {
        return Err(AuthenticationFailure::KeyExpired);
    }
    Ok(())
}

fn standing_allows(standing: KeyStanding) -> Result<(), AuthenticationFailure> {
    match standing {
        KeyStanding::Usable => Ok(()),
        KeyStanding::Disabled => Err(AuthenticationFailure::Disabled),
        KeyStanding::CreatorDisabled | KeyStanding::CreatorNotMember => Err(AuthenticationFailure::CreatorNotActive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip_allowlist::IpAllowlist;
    use crate::keys::{expose, generate_key};
    use crate::permissions::{AppScope, CustomPermissions, ModelScope};

    fn compiled(key_id: i64, standing: KeyStanding, auth: KeyAuth) -> Arc<CompiledKey> {
        Arc::new(CompiledKey {
            key_id,
            account_id: 1,
            account_name: "root".into(),
            region: "ap-southeast-1".into(),
            workspace_id: "llm-aaaaaaaaaaaaaaaa".into(),
            creator_user_id: None,
            format: KeyFormat::Secure,
            standing,
            auth,
            expires_at: None,
            grace_secret: None,
            limits: None,
        })
    }

    #[test]
    fn an_older_fill_never_overwrites_a_newer_revocation() {
        let registry = KeyRegistry::new();
        let key = generate_key(KeyFormat::Secure);
        registry.apply(5, vec![RegistryUpdate::Revoked { digest: key.digest }]);
        registry.apply(3, vec![RegistryUpdate::Key { digest: key.digest, key: compiled(1, KeyStanding::Usable, KeyAuth::All) }]);
        assert_eq!(registry.authenticate(expose(&key.plaintext), "ap-southeast-1", 0), Err(AuthenticationFailure::Unknown));
        registry.apply(4, vec![RegistryUpdate::Key { digest: key.digest, key: compiled(1, KeyStanding::Usable, KeyAuth::All) }]);
        assert!(registry.lookup(&key.digest).is_none());
    }

    #[test]
    fn the_digest_table_hashes_a_digest_as_its_first_64_bits() {
        let digest = KeyDigest::of("sk-anything");
        let expected = u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap());
        assert_eq!(digest_hash(&digest), expected);
    }

    #[test]
    fn a_full_resync_drops_vanished_keys_but_keeps_newer_entries() {
        let registry = KeyRegistry::new();
        let (vanished, newer, kept) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        registry.apply(1, vec![RegistryUpdate::Key { digest: vanished.digest, key: compiled(1, KeyStanding::Usable, KeyAuth::All) }]);
        registry.apply(9, vec![RegistryUpdate::Revoked { digest: newer.digest }]);
        // A snapshot at version 5 still had `newer` live and no longer had `vanished`.
        registry.replace_all(
            5,
            vec![
                RegistryUpdate::Key { digest: newer.digest, key: compiled(2, KeyStanding::Usable, KeyAuth::All) },
                RegistryUpdate::Key { digest: kept.digest, key: compiled(3, KeyStanding::Usable, KeyAuth::All) },
            ],
        );
        assert!(registry.lookup(&vanished.digest).is_none());
        assert!(registry.lookup(&newer.digest).is_none(), "the newer revocation survives the resync");
        assert!(registry.lookup(&kept.digest).is_some());
        assert_eq!(registry.applied_version(), 9);
    }

    #[test]
    fn a_reset_revokes_the_old_digest() {
        let registry = KeyRegistry::new();
        let (old, new) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        registry.apply(1, vec![RegistryUpdate::Key { digest: old.digest, key: compiled(9, KeyStanding::Usable, KeyAuth::All) }]);
        registry.apply(2, vec![RegistryUpdate::Key { digest: new.digest, key: compiled(9, KeyStanding::Usable, KeyAuth::All) }]);
        assert!(registry.authenticate(expose(&old.plaintext), "ap-southeast-1", 0).is_err());
        assert!(registry.authenticate(expose(&new.plaintext), "ap-southeast-1", 0).is_ok());
        assert_eq!(registry.lookup_by_id(9).unwrap().key_id, 9);
    }

    #[test]
    fn the_index_by_key_id_follows_resets_revocations_and_resyncs() {
        let registry = KeyRegistry::new();
        let (first, second, third) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        registry.apply(1, vec![RegistryUpdate::Key { digest: first.digest, key: compiled(7, KeyStanding::Usable, KeyAuth::All) }]);
        assert_eq!(registry.digest_of(7), Some(first.digest));
        registry.apply(2, vec![RegistryUpdate::Key { digest: second.digest, key: compiled(7, KeyStanding::Usable, KeyAuth::All) }]);
        assert_eq!(registry.digest_of(7), Some(second.digest));
        assert!(registry.lookup(&first.digest).is_none());
        registry.apply(3, vec![RegistryUpdate::Revoked { digest: second.digest }]);
        assert_eq!(registry.digest_of(7), None);
        assert!(registry.lookup_by_id(7).is_none());
        // A key applied after the snapshot survives the resync and is found by its id; the
        // snapshot's keys are found by theirs.
        registry.apply(6, vec![RegistryUpdate::Key { digest: third.digest, key: compiled(7, KeyStanding::Usable, KeyAuth::All) }]);
        registry.replace_all(5, vec![RegistryUpdate::Key { digest: second.digest, key: compiled(8, KeyStanding::Usable, KeyAuth::All) }]);
        assert_eq!(registry.digest_of(7), Some(third.digest));
        assert_eq!(registry.digest_of(8), Some(second.digest));
        assert_eq!(registry.lookup_by_id(8).map(|key| key.key_id), Some(8));
        assert_eq!(registry.live_key_count(), 2);
    }

    #[test]
    fn keys_share_one_copy_of_their_account_region_and_workspace() {
        let registry = KeyRegistry::new();
        let (one, two) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        registry.apply(1, vec![RegistryUpdate::Key { digest: one.digest, key: compiled(1, KeyStanding::Usable, KeyAuth::All) }]);
        registry.apply(2, vec![RegistryUpdate::Key { digest: two.digest, key: compiled(2, KeyStanding::Usable, KeyAuth::All) }]);
        let (one, two) = (registry.lookup(&one.digest).unwrap(), registry.lookup(&two.digest).unwrap());
        assert!(Arc::ptr_eq(&one.account_name, &two.account_name));
        assert!(Arc::ptr_eq(&one.region, &two.region));
        assert!(Arc::ptr_eq(&one.workspace_id, &two.workspace_id));
    }

    #[test]
    fn authentication_checks_region_and_standing() {
        let registry = KeyRegistry::new();
        let key = generate_key(KeyFormat::Secure);
        registry.apply(1, vec![RegistryUpdate::Key { digest: key.digest, key: compiled(1, KeyStanding::Disabled, KeyAuth::All) }]);
        let text = expose(&key.plaintext);
        assert_eq!(registry.authenticate(text, "us-east-1", 0), Err(AuthenticationFailure::OtherRegion));
        assert_eq!(registry.authenticate(text, "ap-southeast-1", 0), Err(AuthenticationFailure::Disabled));
        assert_eq!(registry.authenticate("", "ap-southeast-1", 0), Err(AuthenticationFailure::Missing));
        assert_eq!(registry.authenticate("sk-ws-nope", "ap-southeast-1", 0), Err(AuthenticationFailure::Malformed));
    }

    #[test]
    fn authentication_follows_every_change_of_standing_and_region() {
        let registry = KeyRegistry::new();
        let key = generate_key(KeyFormat::Secure);
        let text = expose(&key.plaintext);
        let in_region = |region: &str, standing| {
            let mut compiled = (*compiled(1, standing, KeyAuth::All)).clone();
            compiled.region = region.into();
            Arc::new(compiled)
        };
        registry.apply(1, vec![RegistryUpdate::Key { digest: key.digest, key: in_region("ap-southeast-1", KeyStanding::Usable) }]);
        assert!(registry.authenticate(text, "ap-southeast-1", 0).is_ok());
        registry
            .apply(2, vec![RegistryUpdate::Key { digest: key.digest, key: in_region("ap-southeast-1", KeyStanding::CreatorNotMember) }]);
        assert_eq!(registry.authenticate(text, "ap-southeast-1", 0), Err(AuthenticationFailure::CreatorNotActive));
        registry.apply(3, vec![RegistryUpdate::Key { digest: key.digest, key: in_region("us-east-1", KeyStanding::Usable) }]);
        assert_eq!(registry.authenticate(text, "ap-southeast-1", 0), Err(AuthenticationFailure::OtherRegion));
        assert!(registry.authenticate(text, "us-east-1", 0).is_ok());
        registry.apply(4, vec![RegistryUpdate::Revoked { digest: key.digest }]);
        assert_eq!(registry.authenticate(text, "us-east-1", 0), Err(AuthenticationFailure::Unknown));
    }

    #[test]
    fn authorization_follows_the_spec_order() {
        let custom = KeyAuth::Custom(Box::new(CustomPermissions {
            access_ips: IpAllowlist::parse(&["10.0.0.0/8"]).unwrap(),
            model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-plus".into()] },
            app_scope: AppScope { allow_all_apps: false, accessible_apps: vec![] },
        }));
        let key = compiled(1, KeyStanding::Usable, custom);
        let grants = WorkspaceGrants {
            workspace_id: key.workspace_id.to_string(),
            is_default: false,
            inference_models: vec!["qwen-max".into(), "qwen-plus".into()],
            applications: vec!["a".repeat(32)],
            model_limits: Vec::new(),
        };
        let known = |model: &str| model.starts_with("qwen");
        let facts = |address: &str, header: Option<&'static str>, target: CallTarget<'static>| CallFacts {
            client_address: address.parse().ok(),
            workspace_header: header,
            target,
        };
        let check = |facts: CallFacts<'_>| authorize_call(&key, Some(&grants), &facts, known);
        assert_eq!(check(facts("10.1.1.1", None, CallTarget::Model("qwen-plus"))), Ok(()));
        assert_eq!(check(facts("11.1.1.1", Some("llm-other"), CallTarget::Model("nope"))), Err(AuthorizationFailure::AddressNotAllowed));
        assert_eq!(check(facts("bad", None, CallTarget::Nothing)), Err(AuthorizationFailure::AddressNotAllowed));
        assert_eq!(
            check(facts("10.1.1.1", Some("llm-other"), CallTarget::Model("qwen-plus"))),
            Err(AuthorizationFailure::WorkspaceMismatch)
        );
        assert_eq!(check(facts("10.1.1.1", None, CallTarget::Model("nope"))), Err(AuthorizationFailure::UnknownModel));
        let denied = |denial| Err(AuthorizationFailure::ModelNotAllowed(denial));
        assert_eq!(check(facts("10.1.1.1", None, CallTarget::Model("qwen-max"))), denied(ModelDenial::NotInKeyScope));
        assert_eq!(check(facts("10.1.1.1", None, CallTarget::Model("qwen-turbo"))), denied(ModelDenial::NeitherGrantedNorInScope));
        let all = compiled(1, KeyStanding::Usable, KeyAuth::All);
        let any_address = facts("192.0.2.1", None, CallTarget::Model("qwen-turbo"));
        assert_eq!(authorize_call(&all, Some(&grants), &any_address, known), denied(ModelDenial::NotGranted));
        assert_eq!(
            check(facts("10.1.1.1", None, CallTarget::Application(&"a".repeat(32).leak()[..]))),
            Err(AuthorizationFailure::AppNotAllowed)
        );
    }

    #[test]
    fn a_call_that_names_no_target_passes_only_for_a_key_that_may_call_everything() {
        let scoped = |allow_all_models: bool, allow_all_apps: bool| {
            KeyAuth::Custom(Box::new(CustomPermissions {
                access_ips: IpAllowlist::parse::<&str>(&[]).unwrap(),
                model_scope: ModelScope { allow_all_models, accessible_models: vec!["qwen-plus".into()] },
                app_scope: AppScope { allow_all_apps, accessible_apps: vec![] },
            }))
        };
        let grants = |is_default: bool| WorkspaceGrants {
            workspace_id: "llm-aaaaaaaaaaaaaaaa".into(),
            is_default,
            inference_models: vec!["qwen-plus".into()],
            applications: vec![],
            model_limits: Vec::new(),
        };
        let unnamed = CallFacts { client_address: None, workspace_header: None, target: CallTarget::Unnamed };
        let decide = |auth: KeyAuth, default_workspace: bool| {
            authorize_call(&compiled(1, KeyStanding::Usable, auth), Some(&grants(default_workspace)), &unnamed, |_| true)
        };
        assert_eq!(decide(KeyAuth::All, true), Ok(()));
        assert_eq!(decide(scoped(true, true), true), Ok(()));
        assert_eq!(decide(scoped(false, true), true), Err(AuthorizationFailure::TargetNotNamed));
        assert_eq!(decide(scoped(true, false), true), Err(AuthorizationFailure::TargetNotNamed));
        assert_eq!(decide(KeyAuth::All, false), Err(AuthorizationFailure::TargetNotNamed), "a sub-workspace calls only granted models");
        let no_grants = authorize_call(&compiled(1, KeyStanding::Usable, KeyAuth::All), None, &unnamed, |_| true);
        assert_eq!(no_grants, Err(AuthorizationFailure::TargetNotNamed));
    }

    #[test]
    fn an_expired_key_is_refused_by_the_clock_alone_and_so_are_its_temporary_keys() {
        use crate::temporary_keys::mint_temporary_key;
        let registry = KeyRegistry::new();
        let key = generate_key(KeyFormat::Secure);
        let mut expiring = (*compiled(1, KeyStanding::Usable, KeyAuth::All)).clone();
        expiring.expires_at = Some(1_000);
        registry.apply(1, vec![RegistryUpdate::Key { digest: key.digest, key: Arc::new(expiring) }]);
        let secret = TemporaryKeySecret::new([7; 32]);
        let at = |presented: &str, now| registry.authenticate_any(presented, "ap-southeast-1", KeyEndpoint::PayAsYouGo, &secret, now);
        assert_eq!(at(expose(&key.plaintext), 999).map(|authenticated| authenticated.works_until), Ok(1_000));
        assert_eq!(at(expose(&key.plaintext), 1_000).map(|_| ()), Err(AuthenticationFailure::KeyExpired));
        let token = mint_temporary_key(&secret, 1, &key.digest, 1_500);
        assert!(at(&token, 999).is_ok());
        assert_eq!(at(&token, 1_000).map(|_| ()), Err(AuthenticationFailure::KeyExpired), "a temporary key dies with its parent");
    }

    #[test]
    fn an_old_secret_works_beside_the_new_one_until_its_grace_period_ends() {
        use crate::temporary_keys::mint_temporary_key;
        let registry = KeyRegistry::new();
        let (old, new) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        let secret = TemporaryKeySecret::new([7; 32]);
        let old_token = mint_temporary_key(&secret, 9, &old.digest, 5_000);
        registry.apply(1, vec![RegistryUpdate::Key { digest: old.digest, key: compiled(9, KeyStanding::Usable, KeyAuth::All) }]);
        let mut reset = (*compiled(9, KeyStanding::Usable, KeyAuth::All)).clone();
        reset.grace_secret = Some(Box::new(GraceSecret { digest: old.digest, ends_at: 2_000 }));
        registry.apply(2, vec![RegistryUpdate::Key { digest: new.digest, key: Arc::new(reset) }]);
        let at = |presented: &str, now| {
            registry
                .authenticate_any(presented, "ap-southeast-1", KeyEndpoint::PayAsYouGo, &secret, now)
                .map(|authenticated| authenticated.works_until)
        };
        assert_eq!(at(expose(&old.plaintext), 1_999), Ok(2_000));
        assert_eq!(at(expose(&new.plaintext), 1_999), Ok(i64::MAX));
        assert_eq!(at(&old_token, 1_999), Ok(5_000));
        assert_eq!(at(expose(&old.plaintext), 2_000), Err(AuthenticationFailure::Unknown));
        assert_eq!(at(&old_token, 2_000), Err(AuthenticationFailure::Unknown));
        assert_eq!(at(expose(&new.plaintext), 2_000), Ok(i64::MAX));
        // Cut short: the old digest is revoked and the key no longer names it.
        registry.apply(
            3,
            vec![
                RegistryUpdate::Revoked { digest: old.digest },
                RegistryUpdate::Key { digest: new.digest, key: compiled(9, KeyStanding::Usable, KeyAuth::All) },
            ],
        );
        assert_eq!(at(expose(&old.plaintext), 1_000), Err(AuthenticationFailure::Unknown));
        assert_eq!(at(expose(&new.plaintext), 1_000), Ok(i64::MAX));
    }

    #[test]
    fn plan_keys_and_pay_as_you_go_keys_each_work_only_on_their_own_endpoint() {
        use crate::temporary_keys::mint_temporary_key;
        let registry = KeyRegistry::new();
        let (plan, ordinary) = (generate_key(KeyFormat::Plan), generate_key(KeyFormat::Secure));
        let mut plan_key = (*compiled(1, KeyStanding::Usable, KeyAuth::All)).clone();
        plan_key.format = KeyFormat::Plan;
        registry.apply(1, vec![RegistryUpdate::Key { digest: plan.digest, key: Arc::new(plan_key) }]);
        registry.apply(2, vec![RegistryUpdate::Key { digest: ordinary.digest, key: compiled(2, KeyStanding::Usable, KeyAuth::All) }]);
        let secret = TemporaryKeySecret::new([7; 32]);
        let on = |presented: &str, endpoint| {
            registry.authenticate_any(presented, "ap-southeast-1", endpoint, &secret, 1_000).map(|authenticated| authenticated.key.key_id)
        };
        assert_eq!(on(expose(&plan.plaintext), KeyEndpoint::Plan), Ok(1));
        assert_eq!(on(expose(&plan.plaintext), KeyEndpoint::PayAsYouGo), Err(AuthenticationFailure::PlanKeyOnPayAsYouGoEndpoint));
        assert_eq!(on(expose(&ordinary.plaintext), KeyEndpoint::PayAsYouGo), Ok(2));
        assert_eq!(on(expose(&ordinary.plaintext), KeyEndpoint::Plan), Err(AuthenticationFailure::NotAPlanKey));
        // Temporary keys are pay-as-you-go keys, and one minted from a plan key works nowhere.
        let from_ordinary = mint_temporary_key(&secret, 2, &ordinary.digest, 1_060);
        assert_eq!(on(&from_ordinary, KeyEndpoint::PayAsYouGo), Ok(2));
        assert_eq!(on(&from_ordinary, KeyEndpoint::Plan), Err(AuthenticationFailure::NotAPlanKey));
        let from_plan = mint_temporary_key(&secret, 1, &plan.digest, 1_060);
        assert_eq!(on(&from_plan, KeyEndpoint::PayAsYouGo), Err(AuthenticationFailure::PlanKeyOnPayAsYouGoEndpoint));
        assert_eq!(on(&from_plan, KeyEndpoint::Plan), Err(AuthenticationFailure::NotAPlanKey));
    }

    #[test]
    fn the_borrowing_decision_authenticates_exactly_as_the_owning_one_and_finds_the_workspace() {
        use crate::temporary_keys::mint_temporary_key;
        let registry = KeyRegistry::new();
        let secret = TemporaryKeySecret::new([7; 32]);
        let (usable, disabled, elsewhere, expiring, old, new) = (
            generate_key(KeyFormat::Secure),
            generate_key(KeyFormat::Secure),
            generate_key(KeyFormat::Secure),
            generate_key(KeyFormat::Secure),
            generate_key(KeyFormat::Secure),
            generate_key(KeyFormat::Secure),
        );
        let mut in_other_region = (*compiled(3, KeyStanding::Usable, KeyAuth::All)).clone();
        in_other_region.region = "cn-beijing".into();
        let mut with_expiry = (*compiled(4, KeyStanding::Usable, KeyAuth::All)).clone();
        with_expiry.expires_at = Some(1_500);
        let mut reset = (*compiled(5, KeyStanding::Usable, KeyAuth::All)).clone();
        reset.grace_secret = Some(Box::new(GraceSecret { digest: old.digest, ends_at: 1_200 }));
        registry.apply(
            1,
            vec![
                RegistryUpdate::Key { digest: usable.digest, key: compiled(1, KeyStanding::Usable, KeyAuth::All) },
                RegistryUpdate::Key { digest: disabled.digest, key: compiled(2, KeyStanding::Disabled, KeyAuth::All) },
                RegistryUpdate::Key { digest: elsewhere.digest, key: Arc::new(in_other_region) },
                RegistryUpdate::Key { digest: expiring.digest, key: Arc::new(with_expiry) },
                RegistryUpdate::Key { digest: new.digest, key: Arc::new(reset) },
                RegistryUpdate::Workspace(Arc::new(WorkspaceGrants {
                    workspace_id: "llm-aaaaaaaaaaaaaaaa".into(),
                    is_default: true,
                    inference_models: Vec::new(),
                    applications: Vec::new(),
                    model_limits: Vec::new(),
                })),
            ],
        );
        let token = mint_temporary_key(&secret, 1, &usable.digest, 1_300);
        let presented = [
            expose(&usable.plaintext).to_string(),
            expose(&disabled.plaintext).to_string(),
            expose(&elsewhere.plaintext).to_string(),
            expose(&expiring.plaintext).to_string(),
            expose(&old.plaintext).to_string(),
            expose(&new.plaintext).to_string(),
            expose(&generate_key(KeyFormat::Secure).plaintext).to_string(),
            "sk-not-a-key".to_string(),
            token,
        ];
        let mut outcomes = std::collections::BTreeSet::new();
        for now in [1_000, 1_250, 1_400, 1_600] {
            for endpoint in [KeyEndpoint::PayAsYouGo, KeyEndpoint::Plan] {
                for key in &presented {
                    let owning = registry.authenticate_any(key, "ap-southeast-1", endpoint, &secret, now).map(|authenticated| {
                        let workspace = registry.workspace(&authenticated.key.workspace_id).map(|grants| grants.workspace_id.clone());
                        (authenticated.key.key_id, authenticated.temporary, authenticated.works_until, workspace)
                    });
                    let borrowing = registry.authenticate_then(key, "ap-southeast-1", endpoint, &secret, now, |view| {
                        (view.key.key_id, view.temporary, view.works_until, view.workspace.map(|grants| grants.workspace_id.clone()))
                    });
                    assert_eq!(borrowing, owning, "{key} at {now} on {endpoint:?}");
                    outcomes.insert(format!("{owning:?}"));
                }
            }
        }
        // The cases above reach successes and each kind of refusal, not one outcome.
        assert!(outcomes.len() >= 8, "{outcomes:?}");
    }
}
