//! docs/CONTRACT.md#expiry-and-grace-periods in the store: a key's expiry and a reset's grace
//! period are stored, shown in the key's record, compiled into the registry, read again by
//! another node or after a restart, and audited.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::verification::AuthenticationFailure;
use keygate_store::{KeyEdit, Store};

use crate::support::{new_key, now_millis, NO_LIMIT, SINGAPORE};

/// What `store`'s registry says about a plaintext at `now` (Unix seconds).
fn authenticate_at(store: &Store, plaintext: &str, now: i64) -> Result<i64, AuthenticationFailure> {
    store.registry().authenticate(plaintext, SINGAPORE, now).map(|key| key.key_id)
}

on_both_databases! {
    async fn an_expiry_is_stored_at_create_changed_at_edit_and_enforced_by_time(db: TestDatabase) {
        let now = now_millis() / 1000;
        let workspace = db.default_workspace(SINGAPORE).await;
        let (mut key, plaintext) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
        key.expires_at = Some(now + 100);
        let record = db.store.create_api_key(&db.root(), key, NO_LIMIT).await.unwrap();
        assert_eq!(record.expires_at, Some(now + 100));
        let id = record.api_key_id;
        assert_eq!(authenticate_at(&db.store, &plaintext, now + 99), Ok(id));
        assert_eq!(authenticate_at(&db.store, &plaintext, now + 100), Err(AuthenticationFailure::KeyExpired));

        let edit = |expires_at| KeyEdit { expires_at: Some(expires_at), ..KeyEdit::default() };
        let edited = db.store.update_api_key(&db.root(), id, WholeAccount, edit(Some(now + 500))).await.unwrap();
        assert_eq!(edited.expires_at, Some(now + 500));
        assert_eq!(authenticate_at(&db.store, &plaintext, now + 100), Ok(id));
        // Another node (or this one after a restart) reads the expiry from the database.
        let other = db.open_another("other").await;
        assert_eq!(authenticate_at(&other, &plaintext, now + 499), Ok(id));
        assert_eq!(authenticate_at(&other, &plaintext, now + 500), Err(AuthenticationFailure::KeyExpired));
        // A description-only edit keeps the expiry; `Some(None)` removes it.
        let renamed = KeyEdit { description: Some("x".into()), ..KeyEdit::default() };
        assert_eq!(db.store.update_api_key(&db.root(), id, WholeAccount, renamed).await.unwrap().expires_at, Some(now + 500));
        let cleared = db.store.update_api_key(&db.root(), id, WholeAccount, edit(None)).await.unwrap();
        assert_eq!(cleared.expires_at, None);
        assert_eq!(authenticate_at(&db.store, &plaintext, i64::MAX - 1), Ok(id));

        let audit = db.store.list_audit(db.account_id, 10, None).await.unwrap();
        let details: Vec<(&str, &str)> = audit.iter().map(|row| (row.action.as_str(), row.detail.as_str())).collect();
        assert!(details.contains(&("ApiKey.Update", "auth=All expires_at=never")), "{details:?}");
        assert!(details.contains(&("ApiKey.Update", &*format!("auth=All expires_at={}", now + 500))), "{details:?}");
        assert!(details.iter().any(|(action, detail)| *action == "ApiKey.Create" && detail.ends_with(&format!(" expires_at={}", now + 100))), "{details:?}");
    }

    async fn an_old_secret_works_through_its_grace_period_on_every_node(db: TestDatabase) {
        let now = now_millis() / 1000;
        let workspace = db.default_workspace(SINGAPORE).await;
        let (key, old_plaintext) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
        let id = db.store.create_api_key(&db.root(), key, NO_LIMIT).await.unwrap().api_key_id;
        let new = generate_key(KeyFormat::Secure);
        let reset = db
            .store
            .reset_api_key(&db.root(), id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), Some(now + 60))
            .await
            .unwrap();
        assert_eq!(reset.grace_ends_at, Some(now + 60));
        let new_plaintext = expose(&new.plaintext);
        for store in [&db.store, &db.open_another("restarted").await] {
            assert_eq!(authenticate_at(store, &old_plaintext, now + 59), Ok(id));
            assert_eq!(authenticate_at(store, new_plaintext, now + 59), Ok(id));
            assert_eq!(authenticate_at(store, &old_plaintext, now + 60), Err(AuthenticationFailure::Unknown));
            assert_eq!(authenticate_at(store, new_plaintext, now + 60), Ok(id));
        }
        // A disable reaches the old secret too.
        db.store.set_api_key_disabled(&db.root(), id, WholeAccount, true).await.unwrap();
        assert_eq!(authenticate_at(&db.store, &old_plaintext, now), Err(AuthenticationFailure::Disabled));
        db.store.set_api_key_disabled(&db.root(), id, WholeAccount, false).await.unwrap();

        let ended = db.store.end_api_key_grace(&db.root(), id, WholeAccount).await.unwrap();
        assert_eq!(ended.grace_ends_at, None);
        for store in [&db.store, &db.open_another("after").await] {
            assert_eq!(authenticate_at(store, &old_plaintext, now), Err(AuthenticationFailure::Unknown));
            assert_eq!(authenticate_at(store, new_plaintext, now), Ok(id));
        }
        let audit = db.store.list_audit(db.account_id, 10, None).await.unwrap();
        let actions: Vec<(&str, &str)> = audit.iter().map(|row| (row.action.as_str(), row.detail.as_str())).collect();
        assert!(actions.contains(&("ApiKey.EndGrace", "")), "{actions:?}");
        assert!(actions.contains(&("ApiKey.Reset", &*format!("masked={} grace_ends_at={}", new.masked, now + 60))), "{actions:?}");
    }

    async fn a_second_reset_or_a_delete_takes_the_old_secret_with_it(db: TestDatabase) {
        let now = now_millis() / 1000;
        let workspace = db.default_workspace(SINGAPORE).await;
        let (key, first) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
        let id = db.store.create_api_key(&db.root(), key, NO_LIMIT).await.unwrap().api_key_id;
        let (second, third) = (generate_key(KeyFormat::Secure), generate_key(KeyFormat::Secure));
        let root = db.root();
        for generated in [&second, &third] {
            db.store.reset_api_key(&root, id, WholeAccount, KeyFormat::Secure, generated.digest, generated.masked.clone(), Some(now + 60)).await.unwrap();
        }
        let other = db.open_another("other").await;
        for store in [&db.store, &other] {
            assert_eq!(authenticate_at(store, &first, now), Err(AuthenticationFailure::Unknown), "a key has one old secret");
            assert_eq!(authenticate_at(store, expose(&second.plaintext), now), Ok(id));
        }
        db.store.delete_api_key(&db.root(), id, WholeAccount).await.unwrap();
        assert_eq!(authenticate_at(&db.store, expose(&second.plaintext), now), Err(AuthenticationFailure::Unknown));
        assert_eq!(authenticate_at(&db.store, expose(&third.plaintext), now), Err(AuthenticationFailure::Unknown));
    }
}
