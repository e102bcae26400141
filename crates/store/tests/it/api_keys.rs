//! API keys in the store: what a created key holds, edit, disable and enable, reset (the
//! old digest revoked at once), delete (final; ids never reused), what a RAM user may see
//! (another's key is not found and stays as it was), the list's filters and paging, and the
//! usage counters.

use keygate_core::access::KeyVisibility::{CreatedBy, WholeAccount};
use keygate_core::access::Role;
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::verification::{AuthenticationFailure, KeyStanding};
use keygate_store::{ApiKeyRecord, KeyEdit, KeyOrder, ListKeysQuery, StoreError};

use crate::support::{
    assert_not_found, authenticate, create_key, create_key_in, key_ids, new_key, now_millis, TestDatabase, NO_LIMIT, SINGAPORE, VIRGINIA,
};

fn custom_auth() -> KeyAuth {
    KeyAuth::Custom(Box::new(CustomPermissions {
        access_ips: IpAllowlist::parse(&["10.1.2.3/8".to_string(), "192.168.1.1".to_string()]).unwrap(),
        model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-max".into(), "qwen-plus".into()] },
        app_scope: AppScope { allow_all_apps: false, accessible_apps: vec!["app-1".into()] },
    }))
}

fn list_query(db: &TestDatabase) -> ListKeysQuery {
    ListKeysQuery {
        search: None,
        account_id: db.account_id,
        region: SINGAPORE.into(),
        visibility: WholeAccount,
        api_key_id: None,
        description: None,
        workspace_id: None,
        order_by: KeyOrder::ApiKeyId,
        descending: false,
        offset: 0,
        limit: 100,
    }
}

async fn listed(db: &TestDatabase, query: &ListKeysQuery) -> (Vec<i64>, u64) {
    let (records, total) = db.store.list_api_keys(query).await.unwrap();
    (records.iter().map(|record| record.api_key_id).collect(), total)
}

on_both_databases! {
    async fn a_created_key_is_stored_as_given_and_compiled_for_its_region(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        let (mut key, plaintext) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
        key.description = "for the batch jobs".into();
        key.auth = custom_auth();
        let masked = key.masked_key.clone();
        let started = now_millis();
        let record = db.store.create_api_key(&db.root(), key.clone(), NO_LIMIT).await.unwrap();
        assert_eq!(
            (record.account_id, record.region.as_str(), record.workspace_id.as_str(), record.workspace_name.as_str()),
            (db.account_id, SINGAPORE, workspace.as_str(), "Default workspace")
        );
        assert_eq!((record.creator_user_id, record.created_by.as_str(), record.description.as_str()), (None, "root", "for the batch jobs"));
        assert_eq!((record.format, record.masked_key.as_str(), &record.auth), (KeyFormat::Secure, masked.as_str(), &custom_auth()));
        assert_eq!((record.disabled, record.last_used_at, record.request_count, &record.legacy_ciphertext), (false, None, 0, &None));
        assert!(record.created_at >= started, "{record:?}");
        assert_eq!(db.store.get_api_key(db.account_id, SINGAPORE, record.api_key_id, WholeAccount).await.unwrap(), record);

        let compiled = db.store.registry().authenticate(&plaintext, SINGAPORE, now_millis() / 1000).unwrap();
        assert_eq!((compiled.key_id, &*compiled.account_name, compiled.standing), (record.api_key_id, "root", KeyStanding::Usable));
        assert_eq!((&*compiled.workspace_id, &compiled.auth), (workspace.as_str(), &custom_auth()));
        assert_eq!(authenticate(&db.store, &plaintext, VIRGINIA), Err(AuthenticationFailure::OtherRegion));
        assert_eq!(db.store.registry().digest_of(record.api_key_id), Some(key.digest));
        // Not in the other region's view.
        assert_not_found(db.store.get_api_key(db.account_id, VIRGINIA, record.api_key_id, WholeAccount).await);

        // A digest is stored once, in any account.
        let again = db.store.create_api_key(&db.root(), key.clone(), NO_LIMIT).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        assert_eq!(db.store.existing_key_digests(&[key.digest, generate_key(KeyFormat::Secure).digest]).await.unwrap().into_iter().collect::<Vec<_>>(), [key.digest]);
    }

    async fn rule_5_edit_changes_what_it_is_given_and_nothing_else(db: TestDatabase) {
        let (created, plaintext) = create_key(&db, &db.root(), None).await;
        let id = created.api_key_id;
        let edited = db.store.update_api_key(&db.root(), id, WholeAccount, KeyEdit { description: Some("second".into()), auth: Some(custom_auth()), expires_at: None, limits: None }).await.unwrap();
        assert_eq!((edited.description.as_str(), &edited.auth), ("second", &custom_auth()));
        assert_eq!(db.store.registry().authenticate(&plaintext, SINGAPORE, now_millis() / 1000).unwrap().auth, custom_auth());

        // A description alone leaves the permissions; permissions alone the description.
        let renamed = db.store.update_api_key(&db.root(), id, WholeAccount, KeyEdit { description: Some("third".into()), auth: None, expires_at: None, limits: None }).await.unwrap();
        assert_eq!((renamed.description.as_str(), &renamed.auth), ("third", &custom_auth()));
        let opened = db.store.update_api_key(&db.root(), id, WholeAccount, KeyEdit { description: None, auth: Some(KeyAuth::All), expires_at: None, limits: None }).await.unwrap();
        assert_eq!((opened.description.as_str(), &opened.auth), ("third", &KeyAuth::All));
        assert_eq!(db.store.registry().authenticate(&plaintext, SINGAPORE, now_millis() / 1000).unwrap().auth, KeyAuth::All);
        // Identity fields never change on edit.
        let identity = |record: &ApiKeyRecord| (record.api_key_id, record.masked_key.clone(), record.created_by.clone(), record.created_at, record.workspace_id.clone());
        assert_eq!(identity(&opened), identity(&created));
    }

    async fn rule_5_disable_and_enable_change_the_record_and_what_authenticates(db: TestDatabase) {
        let (created, plaintext) = create_key(&db, &db.root(), None).await;
        let id = created.api_key_id;
        let disabled = db.store.set_api_key_disabled(&db.root(), id, WholeAccount, true).await.unwrap();
        assert!(disabled.disabled);
        assert!(db.store.get_api_key(db.account_id, SINGAPORE, id, WholeAccount).await.unwrap().disabled);
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::Disabled));
        // Disabling twice is harmless.
        db.store.set_api_key_disabled(&db.root(), id, WholeAccount, true).await.unwrap();
        let enabled = db.store.set_api_key_disabled(&db.root(), id, WholeAccount, false).await.unwrap();
        assert!(!enabled.disabled);
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Ok(id));
    }

    async fn rule_5_reset_gives_a_new_secret_for_the_same_id_and_revokes_the_old_digest(db: TestDatabase) {
        let workspace = db.default_workspace(SINGAPORE).await;
        let (mut imported, imported_plaintext) = crate::support::legacy_key(SINGAPORE, &workspace, None);
        imported.description = "kept".into();
        let created = db.store.create_api_key(&db.root(), imported, NO_LIMIT).await.unwrap();
        assert_eq!((created.format, created.legacy_ciphertext.is_some()), (KeyFormat::Legacy, true));
        let old_digest = db.store.registry().digest_of(created.api_key_id).unwrap();

        let new = generate_key(KeyFormat::Secure);
        let reset = db.store.reset_api_key(&db.root(), created.api_key_id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), None).await.unwrap();
        assert_eq!((reset.api_key_id, reset.format, reset.masked_key.as_str()), (created.api_key_id, KeyFormat::Secure, new.masked.as_str()));
        assert_eq!((reset.legacy_ciphertext, reset.description.as_str()), (None, "kept"), "the imported plaintext is gone; the rest stays");
        assert_eq!(authenticate(&db.store, &imported_plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(db.store.registry().lookup(&old_digest).is_none());
        assert_eq!(authenticate(&db.store, expose(&new.plaintext), SINGAPORE), Ok(created.api_key_id));
        assert_eq!(db.store.registry().digest_of(created.api_key_id), Some(new.digest));
        // The old digest may be stored again (keygate keeps no digest of it).
        assert!(db.store.existing_key_digests(&[old_digest]).await.unwrap().is_empty());
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [created.api_key_id]);
    }

    async fn rule_5_delete_is_final_and_ids_are_never_reused(db: TestDatabase) {
        let (kept, _) = create_key(&db, &db.root(), None).await;
        let (deleted, plaintext) = create_key(&db, &db.root(), None).await;
        let before = db.store.delete_api_key(&db.root(), deleted.api_key_id, WholeAccount).await.unwrap();
        assert_eq!(before, deleted, "delete answers the key as it was");
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        // Nothing brings it back.
        let id = deleted.api_key_id;
        let new = generate_key(KeyFormat::Secure);
        assert_not_found(db.store.get_api_key(db.account_id, SINGAPORE, id, WholeAccount).await);
        assert_not_found(db.store.set_api_key_disabled(&db.root(), id, WholeAccount, false).await);
        assert_not_found(db.store.set_api_key_disabled(&db.root(), id, WholeAccount, true).await);
        assert_not_found(db.store.update_api_key(&db.root(), id, WholeAccount, KeyEdit { description: Some("back".into()), auth: None, expires_at: None, limits: None }).await);
        assert_not_found(db.store.reset_api_key(&db.root(), id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), None).await);
        assert_not_found(db.store.delete_api_key(&db.root(), id, WholeAccount).await);
        assert_eq!(authenticate(&db.store, expose(&new.plaintext), SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [kept.api_key_id]);

        // The deleted key had the largest id; the next key still gets a larger one, on a
        // store opened afresh too.
        let (next, _) = create_key(&db, &db.root(), None).await;
        assert!(next.api_key_id > id, "id {} after deleting {id}", next.api_key_id);
        db.store.delete_api_key(&db.root(), next.api_key_id, WholeAccount).await.unwrap();
        let reopened = db.open_another("kg-store-b").await;
        let (after_reopen, _) = create_key_in(&reopened, &db.root(), &db.default_workspace(SINGAPORE).await, None).await;
        assert!(after_reopen.api_key_id > next.api_key_id, "id {} after deleting {}", after_reopen.api_key_id, next.api_key_id);
    }

    async fn rule_4_a_ram_user_sees_and_touches_only_keys_it_created(db: TestDatabase) {
        let ada = db.store.create_user(&db.root(), "ada", Role::Admin, None).await.unwrap();
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (root_key, root_plaintext) = create_key(&db, &db.root(), None).await;
        let (ada_key, _) = create_key(&db, &db.root(), Some(ada.user_id)).await;
        let (kim_key, _) = create_key(&db, &db.root(), Some(kim.user_id)).await;

        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [root_key.api_key_id, ada_key.api_key_id, kim_key.api_key_id]);
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, CreatedBy(ada.user_id)).await, [ada_key.api_key_id]);
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, CreatedBy(kim.user_id)).await, [kim_key.api_key_id]);

        // Every operation on another's key (the account's included) is NotFound and changes nothing.
        let ada_sees = CreatedBy(ada.user_id);
        for other in [&root_key, &kim_key] {
            let id = other.api_key_id;
            let new = generate_key(KeyFormat::Secure);
            assert_not_found(db.store.get_api_key(db.account_id, SINGAPORE, id, ada_sees).await);
            assert_not_found(db.store.update_api_key(&db.root(), id, ada_sees, KeyEdit { description: Some("mine now".into()), auth: None, expires_at: None, limits: None }).await);
            assert_not_found(db.store.set_api_key_disabled(&db.root(), id, ada_sees, true).await);
            assert_not_found(db.store.reset_api_key(&db.root(), id, ada_sees, KeyFormat::Secure, new.digest, new.masked.clone(), None).await);
            assert_not_found(db.store.delete_api_key(&db.root(), id, ada_sees).await);
            let mut filtered = ListKeysQuery { visibility: ada_sees, api_key_id: Some(id), ..list_query(&db) };
            assert_eq!(listed(&db, &filtered).await, (vec![], 0));
            filtered.visibility = WholeAccount;
            assert_eq!(listed(&db, &filtered).await, (vec![id], 1));
            assert_eq!(&db.store.get_api_key(db.account_id, SINGAPORE, id, WholeAccount).await.unwrap(), other, "untouched");
        }
        assert_eq!(authenticate(&db.store, &root_plaintext, SINGAPORE), Ok(root_key.api_key_id));
        // Its own key it may change.
        db.store.set_api_key_disabled(&db.root(), ada_key.api_key_id, ada_sees, true).await.unwrap();
        // Another account sees none of them.
        let (other, _) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        assert_not_found(db.store.get_api_key(other.account_id, SINGAPORE, root_key.api_key_id, WholeAccount).await);
        let mut foreign = db.root();
        foreign.account_id = other.account_id;
        assert_not_found(db.store.delete_api_key(&foreign, root_key.api_key_id, WholeAccount).await);
        assert!(key_ids(&db.store, other.account_id, SINGAPORE, WholeAccount).await.is_empty());
    }

    async fn the_list_filters_orders_and_pages(db: TestDatabase) {
        let workspace = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap().workspace_id;
        let default = db.default_workspace(SINGAPORE).await;
        let descriptions = ["nightly 50% batch", "under_score", "Nightly", "plain", "nightly 50% batch too"];
        let mut ids = Vec::new();
        for (index, description) in descriptions.iter().enumerate() {
            let in_workspace = if index % 2 == 0 { &default } else { &workspace };
            let (mut key, _) = new_key(SINGAPORE, in_workspace, None, KeyFormat::Secure);
            key.description = (*description).into();
            ids.push(db.store.create_api_key(&db.root(), key, NO_LIMIT).await.unwrap().api_key_id);
        }
        let base = list_query(&db);
        assert_eq!(listed(&db, &base).await, (ids.clone(), 5));

        // The description matches as a substring, case-sensitively, and literally: neither
        // `%` nor `_` is a wildcard.
        let by = |text: &str| ListKeysQuery { description: Some(text.into()), ..base.clone() };
        assert_eq!(listed(&db, &by("50% b")).await, (vec![ids[0], ids[4]], 2));
        assert_eq!(listed(&db, &by("nightly")).await, (vec![ids[0], ids[4]], 2));
        assert_eq!(listed(&db, &by("_")).await, (vec![ids[1]], 1));
        assert_eq!(listed(&db, &by("%")).await, (vec![ids[0], ids[4]], 2));
        assert_eq!(listed(&db, &by("n_ght")).await, (vec![], 0));
        // The console's search: a part of the description in any case, literally, or the
        // start of the id; with the other filters.
        let search = |text: &str| ListKeysQuery { search: Some(text.into()), ..base.clone() };
        assert_eq!(listed(&db, &search("NIGHTLY")).await, (vec![ids[0], ids[2], ids[4]], 3));
        assert_eq!(listed(&db, &search("_")).await, (vec![ids[1]], 1));
        let id_text = ids[3].to_string();
        let starting = ids.iter().filter(|id| id.to_string().starts_with(&id_text)).copied().collect::<Vec<_>>();
        assert_eq!(listed(&db, &search(&id_text)).await, (starting.clone(), starting.len() as u64));
        let searched_in_team = ListKeysQuery { workspace_id: Some(workspace.clone()), ..search("nightly") };
        assert_eq!(listed(&db, &searched_in_team).await, (vec![], 0));
        // The workspace, and one id.
        let in_team = ListKeysQuery { workspace_id: Some(workspace.clone()), ..base.clone() };
        assert_eq!(listed(&db, &in_team).await, (vec![ids[1], ids[3]], 2));
        assert_eq!(listed(&db, &ListKeysQuery { api_key_id: Some(ids[2]), ..base.clone() }).await, (vec![ids[2]], 1));
        // Order and pages: the total counts every match, the page holds `limit` from `offset`.
        let descending = ListKeysQuery { descending: true, ..base.clone() };
        assert_eq!(listed(&db, &descending).await.0, ids.iter().rev().copied().collect::<Vec<_>>());
        let by_creation = ListKeysQuery { order_by: KeyOrder::GmtCreate, descending: true, ..base.clone() };
        assert_eq!(listed(&db, &by_creation).await.0, ids.iter().rev().copied().collect::<Vec<_>>(), "ties in created_at go by id");
        let page = ListKeysQuery { offset: 1, limit: 2, ..base.clone() };
        assert_eq!(listed(&db, &page).await, (vec![ids[1], ids[2]], 5));
        let past_the_end = ListKeysQuery { offset: 5, limit: 2, ..base.clone() };
        assert_eq!(listed(&db, &past_the_end).await, (vec![], 5));
        // Another region has none.
        assert_eq!(listed(&db, &ListKeysQuery { region: VIRGINIA.into(), ..base.clone() }).await, (vec![], 0));
    }

    async fn usage_counts_add_up_and_the_last_use_only_moves_forward(db: TestDatabase) {
        let (first, _) = create_key(&db, &db.root(), None).await;
        let (second, _) = create_key(&db, &db.root(), None).await;
        let (version, audit_rows) = (db.feed_version().await, db.audit_count().await);
        db.store.add_key_usage(&[(first.api_key_id, 3, 2_000), (second.api_key_id, 1, 1_000)]).await.unwrap();
        db.store.add_key_usage(&[(first.api_key_id, 4, 1_500)]).await.unwrap();
        let stored = db.store.get_api_key(db.account_id, SINGAPORE, first.api_key_id, WholeAccount).await.unwrap();
        assert_eq!((stored.request_count, stored.last_used_at), (7, Some(2_000)), "an older last use does not move it back");
        // Usage is not a change: nothing in the feed or the audit log.
        assert_eq!((db.feed_version().await, db.audit_count().await), (version, audit_rows));
        // A deleted key's usage is dropped without failing the batch.
        db.store.delete_api_key(&db.root(), second.api_key_id, WholeAccount).await.unwrap();
        db.store.add_key_usage(&[(second.api_key_id, 9, 9_000), (first.api_key_id, 1, 2_500)]).await.unwrap();
        let stored = db.store.get_api_key(db.account_id, SINGAPORE, first.api_key_id, WholeAccount).await.unwrap();
        assert_eq!((stored.request_count, stored.last_used_at), (8, Some(2_500)));
    }

    async fn changes_queued_beside_creates_each_land_or_fail_alone(db: TestDatabase) {
        // On PostgreSQL the creates, disables, edits and deletes that queue up meanwhile
        // share a group commit: each must still land, or fail alone, as if it ran by itself.
        let mut existing = Vec::new();
        for _ in 0..8 {
            existing.push(create_key(&db, &db.root(), None).await);
        }
        let feed_before = db.feed_version().await;
        let audit_before = db.audit_count().await;
        let workspace = db.default_workspace(SINGAPORE).await;
        let mut tasks = Vec::new();
        for (index, (record, _)) in existing.iter().enumerate() {
            let (store, context, id) = (db.store.clone(), db.root(), record.api_key_id);
            let (key, _) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
            let creator = (store.clone(), context.clone());
            tasks.push(tokio::spawn(async move { creator.0.create_api_key(&creator.1, key, NO_LIMIT).await.map(|_| "created") }));
            tasks.push(tokio::spawn(async move {
                match index % 3 {
                    0 => store.set_api_key_disabled(&context, id, WholeAccount, true).await.map(|_| "disabled"),
                    1 => {
                        let edit = KeyEdit { description: Some(format!("edited {index}")), auth: None, expires_at: None, limits: None };
                        store.update_api_key(&context, id, WholeAccount, edit).await.map(|_| "edited")
                    }
                    _ => store.delete_api_key(&context, id, WholeAccount).await.map(|_| "deleted"),
                }
            }));
        }
        // A change to a key that does not exist fails alone.
        let (store, context) = (db.store.clone(), db.root());
        tasks.push(tokio::spawn(async move { store.set_api_key_disabled(&context, 987_654_321, WholeAccount, true).await.map(|_| "disabled") }));
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("write task"));
        }
        let missing = answers.pop().unwrap();
        assert_not_found(missing);
        let answers: Vec<&str> = answers.into_iter().map(|answer| answer.expect("every other write lands")).collect();
        assert_eq!(answers.iter().filter(|answer| **answer == "created").count(), 8);

        for (index, (record, plaintext)) in existing.iter().enumerate() {
            let id = record.api_key_id;
            let stored = db.store.get_api_key(db.account_id, SINGAPORE, id, WholeAccount).await;
            match index % 3 {
                0 => {
                    assert!(stored.unwrap().disabled);
                    assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Err(AuthenticationFailure::Disabled));
                }
                1 => {
                    assert_eq!(stored.unwrap().description, format!("edited {index}"));
                    assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Ok(id));
                }
                _ => {
                    assert_not_found(stored);
                    assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
                }
            }
        }
        // One feed entry and one audit row for each write that landed; none for the one
        // that failed. A store opened afresh reads the same.
        assert_eq!(db.feed_version().await, feed_before + 16);
        assert_eq!(db.audit_count().await, audit_before + 16);
        let reopened = db.open_another("kg-store-b").await;
        assert_eq!(key_ids(&reopened, db.account_id, SINGAPORE, WholeAccount).await, key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await);
        assert_eq!(reopened.registry().live_key_count(), db.store.registry().live_key_count());
    }
}
