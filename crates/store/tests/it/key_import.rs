//! Importing existing keys: all or nothing. A batch that repeats a digest, names a stored
//! one or would pass an owner's limit writes nothing and says which; otherwise every key is
//! stored with its audit row (the masked key only) and the batch is one change-feed entry.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::access::Role;
use keygate_core::keys::KeyFormat;
use keygate_core::region::LimitScope;
use keygate_core::verification::AuthenticationFailure;
use keygate_store::{NewApiKey, QuotaRule, StoreError};

use crate::support::{authenticate, create_key, key_ids, legacy_key, now_millis, NO_LIMIT, SINGAPORE, VIRGINIA};

const FIFTY: QuotaRule = QuotaRule { limit: 50, scope: LimitScope::Account };

fn legacy_keys(db_workspace: &str, count: usize) -> (Vec<NewApiKey>, Vec<String>) {
    (0..count).map(|_| legacy_key(SINGAPORE, db_workspace, None)).unzip()
}

on_both_databases! {
    async fn an_import_stores_every_key_in_order_with_its_audit_row_and_one_feed_entry(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        // More than one multi-row statement's worth.
        let (keys, plaintexts) = legacy_keys(&workspace, 230);
        let version = db.feed_version().await;
        let records = db.store.import_api_keys(&db.root(), keys.clone(), NO_LIMIT).await.unwrap();
        assert_eq!(records.len(), 230);
        for ((record, key), plaintext) in records.iter().zip(&keys).zip(&plaintexts) {
            assert_eq!((record.masked_key.as_str(), record.format, &record.legacy_ciphertext), (key.masked_key.as_str(), KeyFormat::Legacy, &key.legacy_ciphertext));
            assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Ok(record.api_key_id));
        }
        assert_eq!(db.feed_version().await, version + 1, "one change-feed entry for the batch");
        let audit = db.store.list_audit(db.account_id, 1000, None).await.unwrap();
        assert_eq!(audit.len(), 230);
        for (row, record) in audit.iter().rev().zip(&records) {
            assert_eq!((row.action.as_str(), row.target.clone()), ("ApiKey.Import", format!("apiKey:{}", record.api_key_id)));
            assert!(row.detail.contains(&record.masked_key), "{row:?}");
        }
        for plaintext in &plaintexts {
            assert!(audit.iter().all(|row| !format!("{row:?}").contains(plaintext.as_str())), "an audit row holds a plaintext");
        }
        // An empty import does nothing.
        assert!(db.store.import_api_keys(&db.root(), Vec::new(), NO_LIMIT).await.unwrap().is_empty());
        assert_eq!(db.feed_version().await, version + 1);
    }

    async fn repeats_and_keys_already_stored_are_named_and_nothing_is_imported(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        let (first, first_plaintexts) = legacy_keys(&workspace, 1);
        db.store.import_api_keys(&db.root(), first.clone(), NO_LIMIT).await.unwrap();
        // A key keygate made, in another region and account, is taken too.
        let (other, _) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        db.store.ensure_default_workspaces(other.account_id, &[VIRGINIA.to_string()], now_millis()).await.unwrap();
        let mut foreign = db.root_in(VIRGINIA);
        foreign.account_id = other.account_id;
        let foreign_workspace = db.store.default_workspace(other.account_id, VIRGINIA).await.unwrap().workspace_id;
        let (made, _) = crate::support::create_key_in(&db.store, &foreign, &foreign_workspace, None).await;
        let made_digest = db.store.registry().digest_of(made.api_key_id).unwrap();

        let (fresh, fresh_plaintexts) = legacy_keys(&workspace, 3);
        let mut taken_by_keygate = fresh[2].clone();
        taken_by_keygate.digest = made_digest;
        let batch = vec![first[0].clone(), fresh[0].clone(), taken_by_keygate, fresh[1].clone(), fresh[0].clone()];
        let audit_rows = db.audit_count().await;
        // Repeats within the batch are refused before the database is asked.
        let refused = db.store.import_api_keys(&db.root(), batch.clone(), NO_LIMIT).await;
        assert!(matches!(&refused, Err(StoreError::KeysExist { positions }) if positions == &[4]), "{refused:?}");
        let refused = db.store.import_api_keys(&db.root(), batch[..4].to_vec(), NO_LIMIT).await;
        assert!(matches!(&refused, Err(StoreError::KeysExist { positions }) if positions == &[0, 2]), "{refused:?}");
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 1, "only the first import");
        assert_eq!(db.audit_count().await, audit_rows);
        for plaintext in &fresh_plaintexts {
            assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        }
        assert!(authenticate(&db.store, &first_plaintexts[0], SINGAPORE).is_ok());
    }

    async fn an_import_past_the_limit_imports_nothing_and_says_by_how_much(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        for _ in 0..5 {
            create_key(&db, &db.root(), None).await;
        }
        db.store.import_api_keys(&db.root(), legacy_keys(&workspace, 40).0, FIFTY).await.unwrap();
        let (more, more_plaintexts) = legacy_keys(&workspace, 10);
        let refused = db.store.import_api_keys(&db.root(), more.clone(), FIFTY).await;
        assert!(matches!(refused, Err(StoreError::ImportQuotaExceeded { limit: 50, existing: 45, importing: 10 })), "{refused:?}");
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 45);
        assert_eq!(authenticate(&db.store, &more_plaintexts[0], SINGAPORE), Err(AuthenticationFailure::Unknown));
        // Up to the limit is fine.
        db.store.import_api_keys(&db.root(), more[..5].to_vec(), FIFTY).await.unwrap();
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 50);
    }

    async fn with_a_per_creator_limit_each_owner_of_the_batch_is_counted_apart(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let workspace = db.default_workspace(VIRGINIA).await;
        let twenty_each = QuotaRule { limit: 20, scope: LimitScope::Creator };
        let batch = |root: usize, kims: usize| -> Vec<NewApiKey> {
            (0..root).map(|_| legacy_key(VIRGINIA, &workspace, None).0).chain((0..kims).map(|_| legacy_key(VIRGINIA, &workspace, Some(kim.user_id)).0)).collect()
        };
        let virginia = db.root_in(VIRGINIA);
        db.store.import_api_keys(&virginia, batch(15, 20), twenty_each).await.unwrap();
        let refused = db.store.import_api_keys(&virginia, batch(5, 1), twenty_each).await;
        assert!(matches!(refused, Err(StoreError::ImportQuotaExceeded { limit: 20, existing: 20, importing: 1 })), "{refused:?}");
        db.store.import_api_keys(&virginia, batch(5, 0), twenty_each).await.unwrap();
        assert_eq!(key_ids(&db.store, db.account_id, VIRGINIA, WholeAccount).await.len(), 40);
    }

    async fn concurrent_imports_cannot_race_past_the_limit(db: TestDatabase) {
        let other = db.open_another("kg-store-b").await;
        let workspace = db.default_workspace(SINGAPORE).await;
        let tasks: Vec<_> = (0..10)
            .map(|index| {
                let store = if index % 2 == 0 { db.store.clone() } else { other.clone() };
                let (context, keys) = (db.root(), legacy_keys(&workspace, 10).0);
                tokio::spawn(async move { store.import_api_keys(&context, keys, FIFTY).await })
            })
            .collect();
        let (mut imported, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(records) => imported += records.len(),
                Err(StoreError::ImportQuotaExceeded { .. }) => refused += 1,
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!((imported, refused), (50, 5));
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await.len(), 50);
    }
}
