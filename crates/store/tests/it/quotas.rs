//! Limits (docs/CONTRACT.md#the-key-limit-is-atomic): the check and the insert are one write transaction, so
//! concurrent creates, through one store or through two on the same database, never pass the
//! limit; disabled keys count and a deleted one frees its place; a per-creator limit counts
//! each owner apart; plan keys count only toward their own rule; workspaces have a limit too.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::access::Role;
use keygate_core::keys::KeyFormat;
use keygate_core::region::LimitScope;
use keygate_core::verification::KeyEndpoint;
use keygate_store::{AuditContext, QuotaRule, Store, StoreError};

use crate::support::{key_ids, new_key, TestDatabase, SINGAPORE, VIRGINIA};

const FIFTY: QuotaRule = QuotaRule { limit: 50, scope: LimitScope::Account };
const TWENTY_EACH: QuotaRule = QuotaRule { limit: 20, scope: LimitScope::Creator };
const ONE_PLAN_KEY_EACH: QuotaRule = QuotaRule { limit: 1, scope: LimitScope::Creator };

/// `count` creates at once, spread over `stores` in turn: (created ids, refusals).
async fn concurrent_creates(
    stores: &[Store],
    context: &AuditContext,
    workspace_id: &str,
    count: usize,
    quota: QuotaRule,
) -> (Vec<i64>, usize) {
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let (store, context) = (stores[index % stores.len()].clone(), context.clone());
            let (key, _) = new_key(&context.region, workspace_id, None, KeyFormat::Secure);
            tokio::spawn(async move { store.create_api_key(&context, key, quota).await })
        })
        .collect();
    let (mut created, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.expect("create task") {
            Ok(record) => created.push(record.api_key_id),
            Err(StoreError::KeyQuotaExceeded { limit }) => {
                assert_eq!(limit, quota.limit);
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    created.sort_unstable();
    (created, refused)
}

async fn create(
    db: &TestDatabase,
    context: &AuditContext,
    creator: Option<i64>,
    format: KeyFormat,
    quota: QuotaRule,
) -> Result<i64, StoreError> {
    let workspace = db.default_workspace(&context.region).await;
    let (key, _) = new_key(&context.region, &workspace, creator, format);
    db.store.create_api_key(context, key, quota).await.map(|record| record.api_key_id)
}

#[track_caller]
fn assert_quota_exceeded(result: Result<i64, StoreError>, expected_limit: u32) {
    assert!(matches!(result, Err(StoreError::KeyQuotaExceeded { limit }) if limit == expected_limit), "{result:?}");
}

on_both_databases! {
    async fn rule_2_the_limit_is_checked_atomically_100_concurrent_creates_make_exactly_50_keys(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        let statements_before = db.store.statements_run();
        let (created, refused) = concurrent_creates(std::slice::from_ref(&db.store), &db.root(), &workspace, 100, FIFTY).await;
        assert_eq!((created.len(), refused), (50, 50));
        if db.postgres_schema().is_some() {
            // The creates that queued up were checked and written by batch: a few statements
            // each batch, not the seven or so of each create on its own.
            let statements = db.store.statements_run() - statements_before;
            assert!(statements < 100, "100 creates in batches took {statements} statements");
        }
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, created);
        assert_eq!(db.store.registry().live_key_count(), 50);
    }

    async fn two_stores_on_one_database_cannot_race_past_the_limit(db: TestDatabase) {
        let other = db.open_another("kg-store-b").await;
        let workspace = db.default_workspace(SINGAPORE).await;
        let (created, refused) = concurrent_creates(&[db.store.clone(), other.clone()], &db.root(), &workspace, 100, FIFTY).await;
        assert_eq!((created.len(), refused), (50, 50));
        assert_eq!(key_ids(&other, db.account_id, SINGAPORE, WholeAccount).await, created);
        // Each refusal wrote nothing: one audit row and one feed entry per key.
        assert_eq!(db.audit_count().await, 50);
        assert_eq!(db.feed_version().await, 1 + 50, "the default workspaces, then one change per key");
    }

    async fn rule_2_disabled_keys_count_and_a_deleted_key_frees_its_place(db: TestDatabase) {
        let three = QuotaRule { limit: 3, scope: LimitScope::Account };
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(create(&db, &db.root(), None, KeyFormat::Secure, three).await.unwrap());
        }
        db.store.set_api_key_disabled(&db.root(), ids[0], WholeAccount, true).await.unwrap();
        assert_quota_exceeded(create(&db, &db.root(), None, KeyFormat::Secure, three).await, 3);
        db.store.delete_api_key(&db.root(), ids[0], WholeAccount).await.unwrap();
        create(&db, &db.root(), None, KeyFormat::Secure, three).await.unwrap();
        assert_quota_exceeded(create(&db, &db.root(), None, KeyFormat::Secure, three).await, 3);
        // A RAM user's keys count toward the account's limit.
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        assert_quota_exceeded(create(&db, &db.root(), Some(kim.user_id), KeyFormat::Secure, three).await, 3);
        // Each region has its own.
        create(&db, &db.root_in(VIRGINIA), None, KeyFormat::Classic, three).await.unwrap();
    }

    async fn rule_2_with_a_per_creator_limit_each_owner_has_its_own(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let virginia = db.root_in(VIRGINIA);
        for _ in 0..20 {
            create(&db, &virginia, None, KeyFormat::Classic, TWENTY_EACH).await.unwrap();
        }
        assert_quota_exceeded(create(&db, &virginia, None, KeyFormat::Classic, TWENTY_EACH).await, 20);
        // The account's 20 do not count against the key-manager's own 20.
        for _ in 0..20 {
            create(&db, &virginia, Some(kim.user_id), KeyFormat::Classic, TWENTY_EACH).await.unwrap();
        }
        assert_quota_exceeded(create(&db, &virginia, Some(kim.user_id), KeyFormat::Classic, TWENTY_EACH).await, 20);
        assert_eq!(key_ids(&db.store, db.account_id, VIRGINIA, WholeAccount).await.len(), 40);
        assert!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.is_empty(), "the keys are in us-east-1 only");
    }

    async fn plan_keys_count_only_toward_the_plan_rule_and_ordinary_keys_only_toward_the_regions(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        // kim's ordinary key does not use up its one plan key ...
        create(&db, &db.root(), Some(kim.user_id), KeyFormat::Secure, FIFTY).await.unwrap();
        create(&db, &db.root(), Some(kim.user_id), KeyFormat::Plan, ONE_PLAN_KEY_EACH).await.unwrap();
        assert_quota_exceeded(create(&db, &db.root(), Some(kim.user_id), KeyFormat::Plan, ONE_PLAN_KEY_EACH).await, 1);
        // ... nor does kim's plan key use up the account's.
        let workspace = db.default_workspace(SINGAPORE).await;
        let (root_plan, root_plan_plaintext) = new_key(SINGAPORE, &workspace, None, KeyFormat::Plan);
        let root_plan = db.store.create_api_key(&db.root(), root_plan, ONE_PLAN_KEY_EACH).await.unwrap();
        assert_eq!(db.store.registry().authenticate_on(&root_plan_plaintext, SINGAPORE, KeyEndpoint::Plan, crate::support::now_millis() / 1000).unwrap().key_id, root_plan.api_key_id);
        // The two plan keys are not among the region's 50.
        for _ in 0..49 {
            create(&db, &db.root(), None, KeyFormat::Secure, FIFTY).await.unwrap();
        }
        assert_quota_exceeded(create(&db, &db.root(), None, KeyFormat::Secure, FIFTY).await, 50);
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 52, "listed with the others");
    }

    async fn workspaces_have_a_limit_that_concurrent_creates_cannot_pass(db: TestDatabase) {
        let other = db.open_another("kg-store-b").await;
        let stores = [db.store.clone(), other];
        let tasks: Vec<_> = (0..20)
            .map(|index| {
                let (store, context) = (stores[index % 2].clone(), db.root());
                tokio::spawn(async move { store.create_workspace(&context, &format!("team-{index}"), 5).await })
            })
            .collect();
        let (mut created, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(StoreError::WorkspaceQuotaExceeded { limit: 5 }) => refused += 1,
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!((created, refused), (4, 16), "the default workspace counts");
        assert_eq!(db.store.list_workspaces(db.account_id, SINGAPORE, None, None).await.unwrap().len(), 5);
        // Each region has its own.
        db.store.create_workspace(&db.root_in(VIRGINIA), "team-0", 5).await.unwrap();
    }
}

on_both_databases! {
    async fn concurrent_creates_of_two_owners_and_two_kinds_each_stop_at_their_own_limit(db: TestDatabase) {
        // On PostgreSQL the creates that queue up on a store are checked together, one
        // read of the owners' counts for the batch: each request must still count the
        // keys of its own owner and kind, those accepted before it in the batch included.
        let other = db.open_another("kg-store-b").await;
        let stores = [db.store.clone(), other];
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let workspace = db.default_workspace(SINGAPORE).await;
        let ten_each = QuotaRule { limit: 10, scope: LimitScope::Creator };
        let two_plan_keys_each = QuotaRule { limit: 2, scope: LimitScope::Creator };
        let asks = [(None, KeyFormat::Secure, ten_each), (Some(kim.user_id), KeyFormat::Secure, ten_each), (None, KeyFormat::Plan, two_plan_keys_each), (Some(kim.user_id), KeyFormat::Plan, two_plan_keys_each)];
        let tasks: Vec<_> = (0..120)
            .map(|index| {
                let (creator, format, quota) = asks[index % asks.len()];
                let (store, context) = (stores[index % stores.len()].clone(), db.root());
                let (key, _) = new_key(SINGAPORE, &workspace, creator, format);
                tokio::spawn(async move { (index % asks.len(), store.create_api_key(&context, key, quota).await) })
            })
            .collect();
        let mut created = [0; 4];
        for task in tasks {
            match task.await.unwrap() {
                (ask, Ok(_)) => created[ask] += 1,
                (ask, Err(StoreError::KeyQuotaExceeded { limit })) => assert_eq!(limit, asks[ask].2.limit),
                (_, Err(other)) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(created, [10, 10, 2, 2]);
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 24);
        assert_eq!(db.audit_count().await, 1 + 24, "kim's creation, then one row per key");
    }
}
