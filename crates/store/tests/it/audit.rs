//! The audit log (docs/CONTRACT.md#every-change-is-audited): every change the store makes writes exactly one
//! row in the same transaction, with who, from where, in which region and through which
//! credential, in the order the changes were made, never a plaintext; a refused change
//! writes neither a row nor a change-feed entry.

use keygate_core::access::KeyVisibility::{CreatedBy, WholeAccount};
use keygate_core::access::{Role, UserStatus};
use keygate_core::ids::AccessKeyId;
use keygate_core::keys::{expose, generate_key, mask_key, KeyFormat};
use keygate_core::region::LimitScope;
use keygate_store::{AuditContext, KeyEdit, ModelGrant, QuotaRule, StoreError};

use crate::support::{create_key, new_key, now_millis, NO_LIMIT, SINGAPORE};

on_both_databases! {
    async fn rule_7_every_change_is_audited_once_with_who_what_when_and_where_and_never_a_plaintext(db: TestDatabase) {
        let started = now_millis();
        let console = AuditContext {
            account_id: db.account_id,
            actor: "root".into(),
            client_address: "198.51.100.7".into(),
            region: SINGAPORE.into(),
            credential: "session:1a2b3c4d".into(),
            at: started,
        };
        let store = &db.store;
        let default = db.default_workspace(SINGAPORE).await;
        let (key, created_plaintext) = new_key(SINGAPORE, &default, None, KeyFormat::Secure);
        let key_id = store.create_api_key(&console, key, NO_LIMIT).await.unwrap().api_key_id;
        store.update_api_key(&console, key_id, WholeAccount, KeyEdit { description: Some("edited".into()), auth: None, expires_at: None, limits: None }).await.unwrap();
        store.set_api_key_disabled(&console, key_id, WholeAccount, true).await.unwrap();
        store.set_api_key_disabled(&console, key_id, WholeAccount, false).await.unwrap();
        let reset = generate_key(KeyFormat::Secure);
        store.reset_api_key(&console, key_id, WholeAccount, KeyFormat::Secure, reset.digest, reset.masked.clone(), None).await.unwrap();
        store.delete_api_key(&console, key_id, WholeAccount).await.unwrap();
        let (imported, imported_plaintext) = crate::support::legacy_key(SINGAPORE, &default, None);
        let imported_id = store.import_api_keys(&console, vec![imported], NO_LIMIT).await.unwrap()[0].api_key_id;

        let workspace = store.create_workspace(&console, "team-a", 20).await.unwrap().workspace_id;
        let grant = ModelGrant { model: "qwen-plus".into(), inference: true, deploy: false, fine_tune: false };
        store.update_model_grants(&console, &workspace, &[grant]).await.unwrap();
        store.create_application(&console, &workspace, "app-1", "batch").await.unwrap();
        store.create_user(&console, "kim", Role::Member, Some("hash")).await.unwrap();
        store.set_user_role(&console, "kim", Role::KeyManager).await.unwrap();
        store.set_user_status(&console, "kim", UserStatus::Disabled).await.unwrap();
        store.set_user_status(&console, "kim", UserStatus::Active).await.unwrap();
        store.set_user_password(&console, "kim", "new hash", None).await.unwrap();
        store.add_workspace_member(&console, &workspace, "kim").await.unwrap();
        store.remove_workspace_member(&console, &workspace, "kim").await.unwrap();
        store.delete_user(&console, "kim").await.unwrap();
        store.delete_api_key(&console, imported_id, WholeAccount).await.unwrap();
        store.delete_workspace(&console, &workspace).await.unwrap();
        let access_key = AccessKeyId::generate();
        store.create_access_key(&console, access_key.as_str(), None, b"ciphertext").await.unwrap();
        store.set_access_key_active(&console, access_key.as_str(), false).await.unwrap();
        store.set_access_key_active(&console, access_key.as_str(), true).await.unwrap();
        store.delete_access_key(&console, access_key.as_str()).await.unwrap();
        store.create_session(&console, &[9u8; 32], None, started + 60_000).await.unwrap();
        store.delete_session(&console, &[9u8; 32]).await.unwrap();
        store.record_audit(&console, "TemporaryKey.Mint", &format!("apiKey:{imported_id}"), "minted=1").await.unwrap();

        let key_target = format!("apiKey:{key_id}");
        let imported_target = format!("apiKey:{imported_id}");
        let workspace_target = format!("workspace:{workspace}");
        let access_key_target = format!("accessKey:{}", access_key.as_str());
        let expected = [
            ("ApiKey.Create", key_target.as_str()),
            ("ApiKey.Update", &key_target),
            ("ApiKey.Disable", &key_target),
            ("ApiKey.Enable", &key_target),
            ("ApiKey.Reset", &key_target),
            ("ApiKey.Delete", &key_target),
            ("ApiKey.Import", &imported_target),
            ("Workspace.Create", &workspace_target),
            ("Workspace.UpdateModelPermissions", &workspace_target),
            ("Application.Create", "app:app-1"),
            ("User.Create", "user:kim"),
            ("User.SetRole", "user:kim"),
            ("User.Disable", "user:kim"),
            ("User.Enable", "user:kim"),
            ("User.SetPassword", "user:kim"),
            ("Workspace.AddMember", &workspace_target),
            ("Workspace.RemoveMember", &workspace_target),
            ("User.Delete", "user:kim"),
            ("ApiKey.Delete", &imported_target),
            ("Workspace.Delete", &workspace_target),
            ("AccessKey.Create", &access_key_target),
            ("AccessKey.Disable", &access_key_target),
            ("AccessKey.Enable", &access_key_target),
            ("AccessKey.Delete", &access_key_target),
            ("Session.Login", "session"),
            ("Session.Logout", "session"),
            ("TemporaryKey.Mint", &imported_target),
        ];
        let log = store.list_audit(db.account_id, 100, None).await.unwrap();
        // Newest first; one row per change, nothing else.
        let written: Vec<(&str, &str)> = log.iter().rev().map(|row| (row.action.as_str(), row.target.as_str())).collect();
        assert_eq!(written, expected);
        let finished = now_millis();
        let mut previous = (0, 0);
        for row in log.iter().rev() {
            let context = (row.actor.as_str(), row.client_address.as_str(), row.region.as_str(), row.credential.as_str());
            assert_eq!(context, ("root", "198.51.100.7", SINGAPORE, "session:1a2b3c4d"), "{row:?}");
            assert!(row.audit_id > previous.0 && row.at >= previous.1 && row.at >= started && row.at <= finished, "in order: {row:?}");
            previous = (row.audit_id, row.at);
        }
        let created = &log[log.len() - 1];
        assert!(created.detail.contains(&mask_key(&created_plaintext)), "the masked key is audited: {created:?}");
        for secret in [created_plaintext.as_str(), expose(&reset.plaintext), imported_plaintext.as_str()] {
            for row in &log {
                assert!(!format!("{row:?}").contains(secret), "a plaintext in {row:?}");
            }
        }
    }

    async fn the_log_is_per_account_newest_first_in_pages(db: TestDatabase) {
        for index in 0..7 {
            db.store.record_audit(&db.root(), "Test.Event", &format!("event:{index}"), "").await.unwrap();
        }
        let (other, _) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        let mut foreign = db.root();
        foreign.account_id = other.account_id;
        db.store.record_audit(&foreign, "Test.Event", "event:other", "").await.unwrap();

        let targets = |rows: &[keygate_store::AuditRecord]| rows.iter().map(|row| row.target.clone()).collect::<Vec<_>>();
        let first_page = db.store.list_audit(db.account_id, 3, None).await.unwrap();
        assert_eq!(targets(&first_page), ["event:6", "event:5", "event:4"]);
        let second_page = db.store.list_audit(db.account_id, 3, Some(first_page[2].audit_id)).await.unwrap();
        assert_eq!(targets(&second_page), ["event:3", "event:2", "event:1"]);
        let last_page = db.store.list_audit(db.account_id, 3, Some(second_page[2].audit_id)).await.unwrap();
        assert_eq!(targets(&last_page), ["event:0"]);
        assert_eq!(targets(&db.store.list_audit(other.account_id, 10, None).await.unwrap()), ["event:other"]);
    }

    async fn a_refused_change_writes_no_row_no_audit_entry_and_no_feed_entry(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (root_key, _) = create_key(&db, &db.root(), None).await;
        let default = db.default_workspace(SINGAPORE).await;
        let before = (db.audit_count().await, db.feed_version().await);

        let one = QuotaRule { limit: 1, scope: LimitScope::Account };
        let over = db.store.create_api_key(&db.root(), new_key(SINGAPORE, &default, None, KeyFormat::Secure).0, one).await;
        assert!(matches!(over, Err(StoreError::KeyQuotaExceeded { limit: 1 })), "{over:?}");
        let hidden = db.store.set_api_key_disabled(&db.root(), root_key.api_key_id, CreatedBy(kim.user_id), true).await;
        assert!(matches!(hidden, Err(StoreError::NotFound(_))), "{hidden:?}");
        let (mut taken, _) = new_key(SINGAPORE, &default, None, KeyFormat::Secure);
        taken.digest = db.store.registry().digest_of(root_key.api_key_id).unwrap();
        let conflict = db.store.create_api_key(&db.root(), taken, NO_LIMIT).await;
        assert!(matches!(conflict, Err(StoreError::Conflict(_))), "{conflict:?}");
        let duplicate = db.store.create_user(&db.root(), "kim", Role::Member, None).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{duplicate:?}");
        let workspaces = db.store.create_workspace(&db.root(), "team-a", 1).await;
        assert!(matches!(workspaces, Err(StoreError::WorkspaceQuotaExceeded { limit: 1 })), "{workspaces:?}");
        let refused = db.store.add_workspace_member(&db.root(), &default, "kim").await;
        assert!(matches!(refused, Err(StoreError::Refused(_))), "{refused:?}");

        assert_eq!((db.audit_count().await, db.feed_version().await), before, "refusals left a trace");
        assert_eq!(crate::support::key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [root_key.api_key_id]);
        assert!(!db.store.get_api_key(db.account_id, SINGAPORE, root_key.api_key_id, WholeAccount).await.unwrap().disabled);
    }
}
