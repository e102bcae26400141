//! API keys: create under the region's limit (atomically), import a batch of existing keys
//! (all or nothing), list with filters and paging, get, edit, disable/enable, reset and
//! delete, each with its audit row and change-feed entry in the same transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use keygate_core::access::KeyVisibility;
use keygate_core::key_limits::KeyLimits;
use keygate_core::keys::{KeyDigest, KeyFormat};
use keygate_core::permissions::KeyAuth;
use keygate_core::region::LimitScope;
use keygate_core::verification::RegistryUpdate;

use crate::audit::{write_audit, write_audit_entries, write_audit_rows, AuditContext, AuditEntry};
use crate::compile;
use crate::database::{params, value_rows, Dialect, Row, SqlValue, Transaction};
use crate::group_commit::{change_statements, Committed, CreateRequest, KeyChange, Outcome};
use crate::rows::{auth_columns, auth_from_row, limit_columns, limits_detail, limits_from_row, LIMIT_COLUMNS};
use crate::{Change, Missing, Store, StoreError};

/// The limit a create is checked against, taken from the region's policy.
#[derive(Debug, Clone, Copy)]
pub struct QuotaRule {
    pub limit: u32,
    pub scope: LimitScope,
}

/// A key to insert: the digest and masked form only, never the plaintext.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub region: String,
    pub workspace_id: String,
    pub creator_user_id: Option<i64>,
    pub created_by: String,
    pub description: String,
    pub format: KeyFormat,
    pub digest: KeyDigest,
    pub masked_key: String,
    pub auth: KeyAuth,
    /// Imported legacy keys: the plaintext encrypted with the master key.
    pub legacy_ciphertext: Option<Vec<u8>>,
    /// When the key stops working (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// The key's own limits; `None`: none.
    pub limits: Option<KeyLimits>,
}

/// What an edit changes; `None` keeps a part as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyEdit {
    pub description: Option<String>,
    pub auth: Option<KeyAuth>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<i64>>,
    /// `Some(None)` removes every limit; `Some(Some(..))` replaces them as a whole.
    pub limits: Option<Option<KeyLimits>>,
}

/// A stored key as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub api_key_id: i64,
    pub account_id: i64,
    pub region: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub creator_user_id: Option<i64>,
    pub created_by: String,
    pub description: String,
    pub format: KeyFormat,
    pub masked_key: String,
    pub auth: KeyAuth,
    pub disabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub request_count: i64,
    pub legacy_ciphertext: Option<Vec<u8>>,
    /// When the key stops working (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// When the old secret of a reset with a grace period stops working (Unix seconds);
    /// `None` when the last reset had none or its grace period was ended early. A past
    /// time means the grace period is over.
    pub grace_ends_at: Option<i64>,
    /// The key's own limits (docs/CONTRACT.md#per-key-limits); `None`: none.
    pub limits: Option<KeyLimits>,
}

/// Sort key of ListApiKeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    ApiKeyId,
    GmtCreate,
}

/// ListApiKeys: filters, order and one page.
#[derive(Debug, Clone)]
pub struct ListKeysQuery {
    pub account_id: i64,
    pub region: String,
    pub visibility: KeyVisibility,
    pub api_key_id: Option<i64>,
    /// Substring of the description.
    pub description: Option<String>,
    /// The console's search: a part of the description (in any case), or the start of the
    /// key's id.
    pub search: Option<String>,
    pub workspace_id: Option<String>,
    pub order_by: KeyOrder,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

const KEY_COLUMNS: &str = "k.api_key_id, k.account_id, k.region, k.workspace_id, w.name AS workspace_name, k.creator_user_id, k.created_by, k.description, k.format, k.masked_key, k.auth_type, k.access_ips, k.allow_all_models, k.accessible_models, k.allow_all_apps, k.accessible_apps, k.disabled, k.created_at, k.last_used_at, k.request_count, k.legacy_ciphertext, k.expires_at, k.previous_secret_ends_at, k.limit_requests_per_minute, k.limit_tokens_per_minute, k.limit_max_in_flight, k.budget_period, k.budget_tokens, k.budget_cost_micros";

fn record_from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    let format_name = row.string("format")?;
    Ok(ApiKeyRecord {
        api_key_id: row.i64("api_key_id")?,
        account_id: row.i64("account_id")?,
        region: row.string("region")?,
        workspace_id: row.string("workspace_id")?,
        workspace_name: row.string("workspace_name")?,
        creator_user_id: row.opt_i64("creator_user_id")?,
        created_by: row.string("created_by")?,
        description: row.string("description")?,
        format: KeyFormat::parse(&format_name).ok_or_else(|| StoreError::Corrupt(format!("format {format_name}")))?,
        masked_key: row.string("masked_key")?,
        auth: auth_from_row(row)?,
        disabled: row.boolean("disabled")?,
        created_at: row.i64("created_at")?,
        last_used_at: row.opt_i64("last_used_at")?,
        request_count: row.i64("request_count")?,
        legacy_ciphertext: row.opt_bytes("legacy_ciphertext")?,
        expires_at: row.opt_i64("expires_at")?,
        grace_ends_at: row.opt_i64("previous_secret_ends_at")?,
        limits: limits_from_row(row)?,
    })
}

/// The expiry in an audit row's detail: ` expires_at=<Unix seconds>` or ` expires_at=never`.
fn expiry_detail(expires_at: Option<i64>) -> String {
    match expires_at {
        Some(at) => format!(" expires_at={at}"),
        None => " expires_at=never".to_string(),
    }
}

/// The visibility condition on `k` for a caller, as SQL using parameter `$n`, and its value.
fn visibility_clause(visibility: KeyVisibility, parameter: usize) -> (String, Option<SqlValue>) {
    match visibility {
        KeyVisibility::WholeAccount => ("TRUE".to_string(), None),
        KeyVisibility::CreatedBy(user_id) => (format!("k.creator_user_id = ${parameter}"), Some(user_id.into())),
    }
}

async fn fetch_visible_key(
    transaction: &mut Transaction,
    account_id: i64,
    region: &str,
    key_id: i64,
    visibility: KeyVisibility,
) -> Result<ApiKeyRecord, StoreError> {
    // Found by its id alone, and the account, region and caller's view checked here: with
    // them in the WHERE clause, PostgreSQL, its statistics a few thousand keys behind a
    // burst of creates, combined the primary key with the (account, region) index and
    // read every key of the account for the one asked for, in every change of the group
    // commit, under the change feed's lock (docs/PERFORMANCE.md, "Plans made when the
    // tables were small").
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE k.api_key_id = $1");
    let row = transaction.fetch_optional(&sql, &params![key_id]).await?.ok_or(StoreError::NotFound(Missing::ApiKey))?;
    let record = record_from_row(&row)?;
    let visible = match visibility {
        KeyVisibility::WholeAccount => true,
        KeyVisibility::CreatedBy(user_id) => record.creator_user_id == Some(user_id),
    };
    if record.account_id != account_id || record.region != region || !visible {
        return Err(StoreError::NotFound(Missing::ApiKey));
    }
    Ok(record)
}

/// The keys that count toward a limit for a new key of `creator_user_id`: every key of the
/// account in the region, or (per-creator scope) the creator's, of the new key's kind: plan
/// keys (`sk-sp-`) count only toward the plan-key rule, every other key only toward the
/// region's limit.
async fn count_toward_limit(
    transaction: &mut Transaction,
    account_id: i64,
    region: &str,
    creator_user_id: Option<i64>,
    scope: LimitScope,
    new_key_format: KeyFormat,
) -> Result<i64, StoreError> {
    let plan = new_key_format == KeyFormat::Plan;
    if transaction.dialect() == Dialect::Postgres {
        // The counts a trigger keeps (migration 0008): a few rows, however many keys.
        let creator = match scope {
            LimitScope::Account => "",
            LimitScope::Creator => " AND creator_user_id = COALESCE($4, 0)",
        };
        let mut values = params![account_id, region, plan].to_vec();
        if scope == LimitScope::Creator {
            values.push(SqlValue::from(creator_user_id));
        }
        let sql = format!(
            "SELECT COALESCE(SUM(keys), 0)::BIGINT AS n FROM api_key_counts WHERE account_id = $1 AND region = $2 AND plan = $3{creator}"
        );
        return transaction.fetch_one(&sql, &values).await?.i64("n");
    }
    let same_kind = if plan { "format = 'plan'" } else { "format <> 'plan'" };
    let row = match scope {
        LimitScope::Account => {
            transaction
                .fetch_one(
                    &format!("SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND region = $2 AND {same_kind}"),
                    &params![account_id, region],
                )
                .await?
        }
        LimitScope::Creator => {
            transaction
                .fetch_one(
                    &format!("SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND region = $2 AND creator_user_id IS NOT DISTINCT FROM $3 AND {same_kind}"),
                    &params![account_id, region, creator_user_id],
                )
                .await?
        }
    };
    row.i64("n")
}

/// Rows per multi-row statement of an import (25 parameters each: well under both
/// databases' parameter limits).
const IMPORT_ROWS_PER_STATEMENT: usize = 100;
/// Digests per `IN (...)` lookup.
const DIGESTS_PER_LOOKUP: usize = 500;

/// The columns an API key row is inserted with, in the order of [`inserted_values`].
const INSERTED_COLUMNS: &str = "account_id, region, workspace_id, creator_user_id, created_by, description, format, key_digest, masked_key, auth_type, access_ips, allow_all_models, accessible_models, allow_all_apps, accessible_apps, disabled, created_at, legacy_ciphertext, expires_at, limit_requests_per_minute, limit_tokens_per_minute, limit_max_in_flight, budget_period, budget_tokens, budget_cost_micros";
const INSERTED_COLUMN_COUNT: usize = 25;

/// The values of a new key's row, for [`INSERTED_COLUMNS`].
fn inserted_values(account_id: i64, key: &NewApiKey, created_at: i64) -> [SqlValue; INSERTED_COLUMN_COUNT] {
    let columns = auth_columns(&key.auth);
    let [requests_per_minute, tokens_per_minute, max_in_flight, budget_period, budget_tokens, budget_cost] =
        limit_columns(key.limits.as_ref());
    params![
        account_id,
        &key.region,
        &key.workspace_id,
        key.creator_user_id,
        &key.created_by,
        &key.description,
        key.format.as_str(),
        key.digest.as_bytes().as_slice(),
        &key.masked_key,
        columns.auth_type,
        &columns.access_ips,
        columns.allow_all_models,
        &columns.accessible_models,
        columns.allow_all_apps,
        &columns.accessible_apps,
        false,
        created_at,
        key.legacy_ciphertext.clone(),
        key.expires_at,
        requests_per_minute,
        tokens_per_minute,
        max_in_flight,
        budget_period,
        budget_tokens,
        budget_cost,
    ]
}

/// Which of `digests` some stored key (of any account) already has, read in `transaction`.
async fn stored_digests(transaction: &mut Transaction, digests: &[KeyDigest]) -> Result<HashSet<KeyDigest>, StoreError> {
    let mut found = HashSet::new();
    for chunk in digests.chunks(DIGESTS_PER_LOOKUP) {
        let sql = format!("SELECT key_digest FROM api_keys WHERE key_digest IN {}", value_rows(1, chunk.len()));
        let values: Vec<SqlValue> = chunk.iter().map(|digest| SqlValue::from(digest.as_bytes().as_slice())).collect();
        for row in transaction.fetch_all(&sql, &values).await? {
            if let Some(digest) = KeyDigest::from_bytes(&row.bytes("key_digest")?) {
                found.insert(digest);
            }
        }
    }
    Ok(found)
}

/// The detail of a new key's audit row.
fn created_detail(key: &NewApiKey) -> String {
    format!(
        "workspace={} auth={} masked={}{}{}",
        key.workspace_id,
        auth_columns(&key.auth).auth_type,
        key.masked_key,
        key.expires_at.map(|at| format!(" expires_at={at}")).unwrap_or_default(),
        key.limits.as_ref().map(|limits| limits_detail(Some(limits))).unwrap_or_default()
    )
}

/// The audit action of a new key.
fn created_action(key: &NewApiKey) -> &'static str {
    if key.legacy_ciphertext.is_some() {
        "ApiKey.Import"
    } else {
        "ApiKey.Create"
    }
}

/// The owners' key counts a batch's limits are checked against, by (account, region,
/// creator or 0, plan), as the trigger keeps them in `api_key_counts` (PostgreSQL).
type OwnerCounts = HashMap<(i64, String, i64, bool), i64>;

/// The keys that count toward `quota` for `key`, from `counts` (see [`count_toward_limit`]).
fn counted_toward_limit(counts: &OwnerCounts, account_id: i64, key: &NewApiKey, scope: LimitScope) -> i64 {
    let plan = key.format == KeyFormat::Plan;
    let creator = key.creator_user_id.unwrap_or(0);
    counts
        .iter()
        .filter(|((account, region, owner, is_plan), _)| {
            *account == account_id && *region == key.region && *is_plan == plan && (scope == LimitScope::Account || *owner == creator)
        })
        .map(|(_, keys)| *keys)
        .sum()
}

/// The creates of a group commit's batch in `transaction` (PostgreSQL, holding the change
/// feed's lock), with a fixed number of statements however many they are: the accounts
/// locked once; the owners' counts read once and each request's limit checked in order
/// against them and the keys accepted before it in the batch (a refused request writes
/// nothing and is answered [`StoreError::KeyQuotaExceeded`]); the keys, their audit rows and
/// their change-feed rows (consecutive versions, in the requests' order) in one multi-row
/// statement each; the registry's and the answers' reads in one statement each. An error
/// of any statement is the batch's: the caller rolls back and runs the requests one at a
/// time ([`insert_api_key`]), which tells whose it was.
pub(crate) async fn insert_api_keys_together(
    transaction: &mut Transaction,
    requests: &[CreateRequest],
) -> Result<Vec<Outcome>, StoreError> {
    let mut account_ids: Vec<i64> = requests.iter().map(|request| request.context.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    transaction.lock_accounts(&account_ids).await?;
    let mut owners: Vec<(i64, &str)> = requests.iter().map(|request| (request.context.account_id, request.key.region.as_str())).collect();
    owners.sort_unstable();
    owners.dedup();
    let values: Vec<SqlValue> = owners.iter().flat_map(|&(account_id, region)| params![account_id, region]).collect();
    let sql = format!(
        "SELECT account_id, region, creator_user_id, plan, keys FROM api_key_counts WHERE (account_id, region) IN ({})",
        value_rows(owners.len(), 2)
    );
    let mut counts = OwnerCounts::new();
    for row in transaction.fetch_all(&sql, &values).await? {
        counts.insert((row.i64("account_id")?, row.string("region")?, row.i64("creator_user_id")?, row.boolean("plan")?), row.i64("keys")?);
    }
    // Each request's limit, in order, against the counts and the keys accepted before it.
    let mut accepted = Vec::with_capacity(requests.len());
    for request in requests {
        let (account_id, key) = (request.context.account_id, &request.key);
        let refused = counted_toward_limit(&counts, account_id, key, request.quota.scope) >= i64::from(request.quota.limit);
        if !refused {
            let owner = (account_id, key.region.clone(), key.creator_user_id.unwrap_or(0), key.format == KeyFormat::Plan);
            *counts.entry(owner).or_insert(0) += 1;
        }
        accepted.push(!refused);
    }
    let inserted: Vec<&CreateRequest> =
        requests.iter().zip(&accepted).filter(|(_, accepted)| **accepted).map(|(request, _)| request).collect();
    let created = if inserted.is_empty() { Vec::new() } else { insert_accepted(transaction, &inserted).await? };
    let mut created = created.into_iter();
    accepted
        .iter()
        .zip(requests)
        .map(|(accepted, request)| {
            if *accepted {
                created.next().ok_or_else(|| StoreError::Corrupt("a batch answered fewer keys than it created".into()))
            } else {
                Ok(Err(StoreError::KeyQuotaExceeded { limit: request.quota.limit }))
            }
        })
        .collect()
}

/// The rows of a batch's accepted creates: keys, audit rows and changes in one statement
/// each, then the registry's and the answers' reads. Answers each key, in order.
async fn insert_accepted(transaction: &mut Transaction, inserted: &[&CreateRequest]) -> Result<Vec<Outcome>, StoreError> {
    let values: Vec<SqlValue> =
        inserted.iter().flat_map(|request| inserted_values(request.context.account_id, &request.key, request.context.at)).collect();
    let sql = format!(
        "INSERT INTO api_keys ({INSERTED_COLUMNS}) VALUES {} RETURNING api_key_id, key_digest",
        value_rows(inserted.len(), INSERTED_COLUMN_COUNT)
    );
    let mut ids_by_digest = HashMap::with_capacity(inserted.len());
    for row in transaction.fetch_all(&sql, &values).await? {
        ids_by_digest.insert(row.bytes("key_digest")?, row.i64("api_key_id")?);
    }
    let key_ids = inserted
        .iter()
        .map(|request| {
            ids_by_digest
                .get(request.key.digest.as_bytes().as_slice())
                .copied()
                .ok_or_else(|| StoreError::Corrupt("a created key has no id".into()))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let entries: Vec<AuditEntry> = inserted
        .iter()
        .zip(&key_ids)
        .map(|(request, key_id)| AuditEntry {
            context: &request.context,
            action: created_action(&request.key),
            target: format!("apiKey:{key_id}"),
            detail: created_detail(&request.key),
        })
        .collect();
    write_audit_entries(transaction, &entries).await?;
    let subjects: Vec<String> = key_ids.iter().map(i64::to_string).collect();
    let changes: Vec<Change> = inserted
        .iter()
        .zip(&subjects)
        .map(|(request, subject)| Change { at: request.context.at, kind: "api_key", subject, revoked: &[] })
        .collect();
    let versions = Store::record_changes(transaction, &changes).await?;
    let mut updates = compile::keys_by_ids(transaction, &key_ids).await?;
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE k.api_key_id IN {}",
        value_rows(1, key_ids.len())
    );
    let values: Vec<SqlValue> = key_ids.iter().map(|&key_id| SqlValue::from(key_id)).collect();
    let mut records = HashMap::with_capacity(key_ids.len());
    for row in transaction.fetch_all(&sql, &values).await? {
        let record = record_from_row(&row)?;
        records.insert(record.api_key_id, record);
    }
    key_ids
        .iter()
        .zip(versions)
        .map(|(key_id, version)| {
            let value = records.remove(key_id).ok_or_else(|| StoreError::Corrupt(format!("created key {key_id} was not read back")))?;
            Ok(Ok(Committed { value, version, updates: updates.remove(key_id).into_iter().collect() }))
        })
        .collect()
}

/// A new key's statements in `transaction` (which holds the change feed's lock): the
/// account locked, the region's limit checked, the row, its audit entry and its change;
/// nothing committed.
pub(crate) async fn insert_api_key(
    transaction: &mut Transaction,
    context: &AuditContext,
    key: NewApiKey,
    quota: QuotaRule,
) -> Result<Committed<ApiKeyRecord>, StoreError> {
    transaction.lock_account(context.account_id).await?;
    let existing = count_toward_limit(transaction, context.account_id, &key.region, key.creator_user_id, quota.scope, key.format).await?;
    if existing >= i64::from(quota.limit) {
        return Err(StoreError::KeyQuotaExceeded { limit: quota.limit });
    }
    let inserted = transaction
        .fetch_one(
            &format!("INSERT INTO api_keys ({INSERTED_COLUMNS}) VALUES {} RETURNING api_key_id", value_rows(1, INSERTED_COLUMN_COUNT)),
            &inserted_values(context.account_id, &key, context.at),
        )
        .await;
    let key_id = match inserted {
        Ok(row) => row.i64("api_key_id")?,
        Err(error) if error.is_unique_violation() => return Err(StoreError::Conflict("this key already exists".into())),
        Err(error) => return Err(error),
    };
    write_audit(transaction, context, created_action(&key), &format!("apiKey:{key_id}"), &created_detail(&key)).await?;
    let version =
        Store::record_change(transaction, Change { at: context.at, kind: "api_key", subject: &key_id.to_string(), revoked: &[] }).await?;
    let updates = compile::key_by_id(transaction, key_id).await?;
    let record = fetch_visible_key(transaction, context.account_id, &key.region, key_id, KeyVisibility::WholeAccount).await?;
    Ok(Committed { value: record, version, updates })
}

impl Store {
    /// Checks the region's limit and inserts the key in one write transaction: on
    /// PostgreSQL, a request of this node's group commit (many creates in one transaction
    /// under one hold of the change feed's lock, each in a savepoint of its own).
    pub async fn create_api_key(&self, context: &AuditContext, key: NewApiKey, quota: QuotaRule) -> Result<ApiKeyRecord, StoreError> {
        if let Some(committer) = &self.committer {
            let context = context.clone();
            return committer.create(CreateRequest { context, key, quota }).await;
        }
        let mut transaction = self.database.begin_change().await?;
        let committed = insert_api_key(&mut transaction, context, key, quota).await?;
        transaction.commit().await?;
        self.publish(committed.version, committed.updates);
        Ok(committed.value)
    }

    /// Which of `digests` are already stored, in any account (an import refuses them).
    pub async fn existing_key_digests(&self, digests: &[KeyDigest]) -> Result<HashSet<KeyDigest>, StoreError> {
        let mut snapshot = self.database.begin_snapshot().await?;
        let found = stored_digests(&mut snapshot, digests).await?;
        snapshot.commit().await?;
        Ok(found)
    }

    /// Imports `keys` all-or-nothing in one write transaction: refuses the batch when a
    /// digest repeats an earlier one of the batch or is already stored
    /// ([`StoreError::KeysExist`] with their positions), or when the keys would take an
    /// owner past `quota` ([`StoreError::ImportQuotaExceeded`]); otherwise inserts every
    /// key with its `ApiKey.Import` audit row (the masked key only), records one
    /// change-feed entry for the whole batch and publishes the keys. Answers the records in
    /// the order of `keys`.
    pub async fn import_api_keys(
        &self,
        context: &AuditContext,
        keys: Vec<NewApiKey>,
        quota: QuotaRule,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut first_position: HashMap<KeyDigest, usize> = HashMap::with_capacity(keys.len());
        let mut repeated = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            if first_position.insert(key.digest, position).is_some() {
                repeated.push(position);
            }
        }
        if !repeated.is_empty() {
            return Err(StoreError::KeysExist { positions: repeated });
        }
        let mut transaction = self.database.begin_change().await?;
        transaction.lock_account(context.account_id).await?;
        let digests: Vec<KeyDigest> = keys.iter().map(|key| key.digest).collect();
        let stored = stored_digests(&mut transaction, &digests).await?;
        if !stored.is_empty() {
            let positions = keys.iter().enumerate().filter(|(_, key)| stored.contains(&key.digest)).map(|(position, _)| position).collect();
            return Err(StoreError::KeysExist { positions });
        }
        // The limit applies per owner: the account (or, per-creator, each creator) in a region.
        let mut importing: BTreeMap<(String, Option<i64>), u64> = BTreeMap::new();
        for key in &keys {
            let owner = match quota.scope {
                LimitScope::Account => None,
                LimitScope::Creator => key.creator_user_id,
            };
            *importing.entry((key.region.clone(), owner)).or_default() += 1;
        }
        for ((region, owner), count) in &importing {
            let existing = count_toward_limit(&mut transaction, context.account_id, region, *owner, quota.scope, KeyFormat::Legacy).await?;
            let existing = u64::try_from(existing).unwrap_or(0);
            if existing + count > u64::from(quota.limit) {
                return Err(StoreError::ImportQuotaExceeded { limit: quota.limit, existing, importing: *count });
            }
        }
        let created_at = context.at;
        let mut key_ids: HashMap<KeyDigest, i64> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(IMPORT_ROWS_PER_STATEMENT) {
            let values: Vec<SqlValue> = chunk.iter().flat_map(|key| inserted_values(context.account_id, key, created_at)).collect();
            let sql = format!(
                "INSERT INTO api_keys ({INSERTED_COLUMNS}) VALUES {} RETURNING api_key_id, key_digest",
                value_rows(chunk.len(), INSERTED_COLUMN_COUNT)
            );
            let rows = match transaction.fetch_all(&sql, &values).await {
                Ok(rows) => rows,
                // Another account stored one of these keys since the check above.
                Err(error) if error.is_unique_violation() => {
                    return Err(StoreError::Conflict(
                        "a key of this import was stored by another request meanwhile; nothing was imported, try again".into(),
                    ))
                }
                Err(error) => return Err(error),
            };
            for row in rows {
                let digest =
                    KeyDigest::from_bytes(&row.bytes("key_digest")?).ok_or_else(|| StoreError::Corrupt("key digest length".into()))?;
                key_ids.insert(digest, row.i64("api_key_id")?);
            }
        }
        let ids_in_order = keys
            .iter()
            .map(|key| key_ids.get(&key.digest).copied().ok_or_else(|| StoreError::Corrupt("an imported key has no id".into())))
            .collect::<Result<Vec<i64>, _>>()?;
        let audit_rows: Vec<(String, String)> = keys
            .iter()
            .zip(&ids_in_order)
            .map(|(key, key_id)| {
                let auth_type = auth_columns(&key.auth).auth_type;
                (format!("apiKey:{key_id}"), format!("workspace={} auth={auth_type} masked={}", key.workspace_id, key.masked_key))
            })
            .collect();
        write_audit_rows(&mut transaction, context, "ApiKey.Import", &audit_rows).await?;
        let first = ids_in_order.iter().copied().min().unwrap_or(0);
        let last = ids_in_order.iter().copied().max().unwrap_or(0);
        let version = Self::record_change(
            &mut transaction,
            Change { at: context.at, kind: compile::KEY_RANGE_CHANGE, subject: &format!("{first}-{last}"), revoked: &[] },
        )
        .await?;
        let updates = compile::keys_in_id_range(&mut transaction, first, last).await?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE k.account_id = $1 AND k.api_key_id >= $2 AND k.api_key_id <= $3"
        );
        let rows = transaction.fetch_all(&sql, &params![context.account_id, first, last]).await?;
        transaction.commit().await?;
        self.publish(version, updates);
        let mut records: HashMap<i64, ApiKeyRecord> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let record = record_from_row(row)?;
            records.insert(record.api_key_id, record);
        }
        ids_in_order
            .iter()
            .map(|key_id| records.remove(key_id).ok_or_else(|| StoreError::Corrupt(format!("imported key {key_id} was not read back"))))
            .collect()
    }

    /// One key, if it exists in `region` and `visibility` allows it.
    pub async fn get_api_key(
        &self,
        account_id: i64,
        region: &str,
        key_id: i64,
        visibility: KeyVisibility,
    ) -> Result<ApiKeyRecord, StoreError> {
        let mut snapshot = self.database.begin_snapshot().await?;
        let record = fetch_visible_key(&mut snapshot, account_id, region, key_id, visibility).await;
        snapshot.commit().await?;
        record
    }

    /// One page of keys and the total number matching the filters.
    pub async fn list_api_keys(&self, query: &ListKeysQuery) -> Result<(Vec<ApiKeyRecord>, u64), StoreError> {
        let dialect = self.database.dialect();
        let mut values = params![query.account_id, &query.region].to_vec();
        let mut conditions = "k.account_id = $1 AND k.region = $2".to_string();
        let (clause, bound_user) = visibility_clause(query.visibility, values.len() + 1);
        if let Some(user) = bound_user {
            values.push(user);
            conditions.push_str(&format!(" AND {clause}"));
        }
        if let Some(key_id) = query.api_key_id {
            values.push(key_id.into());
            conditions.push_str(&format!(" AND k.api_key_id = ${}", values.len()));
        }
        if let Some(description) = &query.description {
            values.push(description.into());
            conditions.push_str(&format!(" AND {}", dialect.contains("k.description", &format!("${}", values.len()))));
        }
        if let Some(search) = &query.search {
            values.push(search.into());
            let parameter = format!("${}", values.len());
            let in_description = dialect.contains("lower(k.description)", &format!("lower({parameter})"));
            conditions
                .push_str(&format!(" AND ({in_description} OR substr(CAST(k.api_key_id AS TEXT), 1, length({parameter})) = {parameter})"));
        }
        if let Some(workspace_id) = &query.workspace_id {
            values.push(workspace_id.into());
            conditions.push_str(&format!(" AND k.workspace_id = ${}", values.len()));
        }
        let order_column = match query.order_by {
            KeyOrder::ApiKeyId => "k.api_key_id",
            KeyOrder::GmtCreate => "k.created_at",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let count_sql = format!("SELECT COUNT(*) AS n FROM api_keys k WHERE {conditions}");
        let select_sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.workspace_id = k.workspace_id WHERE {conditions} ORDER BY {order_column} {direction}, k.api_key_id {direction} LIMIT ${} OFFSET ${}",
            values.len() + 1,
            values.len() + 2
        );
        let mut snapshot = self.database.begin_snapshot().await?;
        let total = snapshot.fetch_one(&count_sql, &values).await?.i64("n")?;
        let mut page_values = values.clone();
        page_values.push(i64::from(query.limit).into());
        page_values.push(i64::from(query.offset).into());
        let rows = snapshot.fetch_all(&select_sql, &page_values).await?;
        snapshot.commit().await?;
        let records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
    }

    /// Edit: a new description, permission mode and/or expiry.
    pub async fn update_api_key(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        edit: KeyEdit,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.change_key(context, key_id, visibility, move |transaction, context, before| {
            Box::pin(update_key_in(transaction, context, before, edit))
        })
        .await
    }

    /// Disable (`true`) or enable (`false`).
    pub async fn set_api_key_disabled(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        disabled: bool,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.change_key(context, key_id, visibility, move |transaction, context, _| {
            Box::pin(async move {
                transaction.execute("UPDATE api_keys SET disabled = $1 WHERE api_key_id = $2", &params![disabled, key_id]).await?;
                let action = if disabled { "ApiKey.Disable" } else { "ApiKey.Enable" };
                finish_key_change(transaction, context, key_id, action, "", &[]).await
            })
        })
        .await
    }

    /// Reset: a new digest for the same id. Without `grace_ends_at` the old digest is
    /// revoked at the same version; with it (Unix seconds) the old digest keeps working
    /// until then. An earlier reset's old secret still in its grace period is revoked either
    /// way: a key has at most one old secret.
    #[allow(clippy::too_many_arguments)]
    pub async fn reset_api_key(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        format: KeyFormat,
        digest: KeyDigest,
        masked_key: String,
        grace_ends_at: Option<i64>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let reset = KeyReset { format, digest, masked_key, grace_ends_at };
        self.change_key(context, key_id, visibility, move |transaction, context, _| {
            Box::pin(reset_key_in(transaction, context, key_id, reset))
        })
        .await
    }

    /// Ends the grace period of a reset key's old secret now: the old digest is revoked.
    pub async fn end_api_key_grace(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.change_key(context, key_id, visibility, move |transaction, context, _| {
            Box::pin(async move {
                let previous = transaction
                    .fetch_one("SELECT previous_key_digest FROM api_keys WHERE api_key_id = $1", &params![key_id])
                    .await?
                    .opt_bytes("previous_key_digest")?;
                let revoked: Vec<KeyDigest> = previous.and_then(|bytes| KeyDigest::from_bytes(&bytes)).into_iter().collect();
                transaction
                    .execute(
                        "UPDATE api_keys SET previous_key_digest = NULL, previous_secret_ends_at = NULL WHERE api_key_id = $1",
                        &params![key_id],
                    )
                    .await?;
                finish_key_change(transaction, context, key_id, "ApiKey.EndGrace", "", &revoked).await
            })
        })
        .await
    }

    /// Delete (final); the id is never reused.
    pub async fn delete_api_key(&self, context: &AuditContext, key_id: i64, visibility: KeyVisibility) -> Result<ApiKeyRecord, StoreError> {
        self.change_key(context, key_id, visibility, |transaction, context, before| Box::pin(delete_key_in(transaction, context, before)))
            .await
    }

    /// Runs a change to one stored key: first the key as `visibility` lets the caller see it
    /// (not found otherwise: nothing changes), then `statements` with that record. On
    /// PostgreSQL in this node's next group commit (with the creates and other changes
    /// queued meanwhile, under one hold of the change feed's lock); on SQLite in a write
    /// transaction of its own. Answers once committed and published.
    async fn change_key<F>(
        &self,
        context: &AuditContext,
        key_id: i64,
        visibility: KeyVisibility,
        statements: F,
    ) -> Result<ApiKeyRecord, StoreError>
    where
        F: for<'t> FnOnce(&'t mut Transaction, &'t AuditContext, ApiKeyRecord) -> Pin<Box<dyn Future<Output = Outcome> + Send + 't>>
            + Send
            + 'static,
    {
        let context = context.clone();
        let statements = change_statements(move |transaction| {
            Box::pin(async move {
                let before = fetch_visible_key(transaction, context.account_id, &context.region, key_id, visibility).await?;
                statements(transaction, &context, before).await
            })
        });
        if let Some(committer) = &self.committer {
            return committer.change(KeyChange { key_id, statements }).await;
        }
        let mut transaction = self.database.begin_change().await?;
        let committed = statements(&mut transaction).await?;
        transaction.commit().await?;
        self.publish(committed.version, committed.updates);
        Ok(committed.value)
    }

    /// Adds batched usage counts (from the gateway's in-memory counters): (key id, count,
    /// last used at), in one statement.
    pub async fn add_key_usage(&self, usage: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let keys: Vec<crate::usage::KeyCalls> =
            usage.iter().map(|&(key_id, calls, last_used_at)| crate::usage::KeyCalls { key_id, calls, last_used_at }).collect();
        self.flush_usage(&keys, &[]).await
    }
}

/// What a reset writes: the new secret's digest, format and mask, and the old secret's
/// grace period (none: revoked at once).
struct KeyReset {
    format: KeyFormat,
    digest: KeyDigest,
    masked_key: String,
    grace_ends_at: Option<i64>,
}

/// An edit's statements ([`Store::update_api_key`]), given the key as it was.
async fn update_key_in(
    transaction: &mut Transaction,
    context: &AuditContext,
    before: ApiKeyRecord,
    edit: KeyEdit,
) -> Result<Committed<ApiKeyRecord>, StoreError> {
    let key_id = before.api_key_id;
    let description = edit.description.unwrap_or_else(|| before.description.clone());
    let auth = edit.auth.unwrap_or_else(|| before.auth.clone());
    let expires_at = edit.expires_at.unwrap_or(before.expires_at);
    let limits = edit.limits.unwrap_or(before.limits);
    let columns = auth_columns(&auth);
    transaction
        .execute(
            "UPDATE api_keys SET description = $1, auth_type = $2, access_ips = $3, allow_all_models = $4, accessible_models = $5, allow_all_apps = $6, accessible_apps = $7, expires_at = $8 WHERE api_key_id = $9",
            &params![&description, columns.auth_type, &columns.access_ips, columns.allow_all_models, &columns.accessible_models, columns.allow_all_apps, &columns.accessible_apps, expires_at, key_id],
        )
        .await?;
    if limits != before.limits {
        let assignments: Vec<String> =
            LIMIT_COLUMNS.iter().enumerate().map(|(index, column)| format!("{column} = ${}", index + 1)).collect();
        let mut values = limit_columns(limits.as_ref()).to_vec();
        values.push(SqlValue::from(key_id));
        let sql = format!("UPDATE api_keys SET {} WHERE api_key_id = ${}", assignments.join(", "), LIMIT_COLUMNS.len() + 1);
        transaction.execute(&sql, &values).await?;
    }
    let detail = format!(
        "auth={}{}{}",
        columns.auth_type,
        if expires_at == before.expires_at { String::new() } else { expiry_detail(expires_at) },
        if limits == before.limits { String::new() } else { limits_detail(limits.as_ref()) }
    );
    finish_key_change(transaction, context, key_id, "ApiKey.Update", &detail, &[]).await
}

/// A reset's statements ([`Store::reset_api_key`]).
async fn reset_key_in(
    transaction: &mut Transaction,
    context: &AuditContext,
    key_id: i64,
    reset: KeyReset,
) -> Result<Committed<ApiKeyRecord>, StoreError> {
    let KeyReset { format, digest, masked_key, grace_ends_at } = reset;
    let secrets =
        transaction.fetch_one("SELECT key_digest, previous_key_digest FROM api_keys WHERE api_key_id = $1", &params![key_id]).await?;
    let old_digest = KeyDigest::from_bytes(&secrets.bytes("key_digest")?);
    let mut revoked: Vec<KeyDigest> =
        secrets.opt_bytes("previous_key_digest")?.and_then(|bytes| KeyDigest::from_bytes(&bytes)).into_iter().collect();
    let previous_digest = match grace_ends_at {
        Some(_) => old_digest,
        None => {
            revoked.extend(old_digest);
            None
        }
    };
    transaction
        .execute(
            "UPDATE api_keys SET key_digest = $1, masked_key = $2, format = $3, legacy_ciphertext = NULL, previous_key_digest = $4, previous_secret_ends_at = $5 WHERE api_key_id = $6",
            &params![
                digest.as_bytes().as_slice(),
                &masked_key,
                format.as_str(),
                previous_digest.as_ref().map(|digest| digest.as_bytes().as_slice()),
                grace_ends_at,
                key_id
            ],
        )
        .await?;
    let detail = match grace_ends_at {
        Some(ends_at) => format!("masked={masked_key} grace_ends_at={ends_at}"),
        None => format!("masked={masked_key}"),
    };
    finish_key_change(transaction, context, key_id, "ApiKey.Reset", &detail, &revoked).await
}

/// A delete's statements ([`Store::delete_api_key`]), given the key as it was, which it
/// answers.
async fn delete_key_in(
    transaction: &mut Transaction,
    context: &AuditContext,
    before: ApiKeyRecord,
) -> Result<Committed<ApiKeyRecord>, StoreError> {
    let key_id = before.api_key_id;
    let deleted = transaction
        .fetch_one("DELETE FROM api_keys WHERE api_key_id = $1 RETURNING key_digest, previous_key_digest", &params![key_id])
        .await?;
    // The old secret of a reset in its grace period goes with the key.
    let revoked: Vec<KeyDigest> = [Some(deleted.bytes("key_digest")?), deleted.opt_bytes("previous_key_digest")?]
        .into_iter()
        .flatten()
        .filter_map(|bytes| KeyDigest::from_bytes(&bytes))
        .collect();
    write_audit(transaction, context, "ApiKey.Delete", &format!("apiKey:{key_id}"), &format!("masked={}", before.masked_key)).await?;
    let version =
        Store::record_change(transaction, Change { at: context.at, kind: "api_key", subject: &key_id.to_string(), revoked: &revoked })
            .await?;
    Ok(Committed { value: before, version, updates: revoked.into_iter().map(|digest| RegistryUpdate::Revoked { digest }).collect() })
}

/// Audits a key change, records it in the feed and reads the key back (for the registry
/// and the answer); nothing committed.
async fn finish_key_change(
    transaction: &mut Transaction,
    context: &AuditContext,
    key_id: i64,
    action: &str,
    detail: &str,
    revoked: &[KeyDigest],
) -> Result<Committed<ApiKeyRecord>, StoreError> {
    write_audit(transaction, context, action, &format!("apiKey:{key_id}"), detail).await?;
    let version =
        Store::record_change(transaction, Change { at: context.at, kind: "api_key", subject: &key_id.to_string(), revoked }).await?;
    let mut updates: Vec<RegistryUpdate> = revoked.iter().map(|digest| RegistryUpdate::Revoked { digest: *digest }).collect();
    updates.extend(compile::key_by_id(transaction, key_id).await?);
    let value = fetch_visible_key(transaction, context.account_id, &context.region, key_id, KeyVisibility::WholeAccount).await?;
    Ok(Committed { value, version, updates })
}
