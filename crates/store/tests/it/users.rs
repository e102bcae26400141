//! RAM users and what they mean for their keys (docs/CONTRACT.md#keys-follow-their-creator): a disabled user's
//! keys rest, a deleted user's keys are deleted with it, a user removed from a workspace
//! loses its keys there; the account itself is never deleted. Also names, passwords and the
//! sessions a new password ends.

use keygate_core::access::KeyVisibility::{self, WholeAccount};
use keygate_core::access::{Role, UserStatus};
use keygate_core::ids::AccessKeyId;
use keygate_core::verification::AuthenticationFailure;
use keygate_store::StoreError;

use crate::support::{assert_not_found, authenticate, create_key, create_key_in, key_ids, now_millis, SINGAPORE};

on_both_databases! {
    async fn rule_6_a_disabled_ram_users_keys_stop_working_until_it_is_enabled_again(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (kim_key, kim_plaintext) = create_key(&db, &db.root(), Some(kim.user_id)).await;
        let (root_key, root_plaintext) = create_key(&db, &db.root(), None).await;

        let disabled = db.store.set_user_status(&db.root(), "kim", UserStatus::Disabled).await.unwrap();
        assert_eq!(disabled.status, UserStatus::Disabled);
        assert_eq!(authenticate(&db.store, &kim_plaintext, SINGAPORE), Err(AuthenticationFailure::CreatorNotActive));
        assert_eq!(authenticate(&db.store, &root_plaintext, SINGAPORE), Ok(root_key.api_key_id));
        // The key itself is neither disabled nor gone.
        let stored = db.store.get_api_key(db.account_id, SINGAPORE, kim_key.api_key_id, WholeAccount).await.unwrap();
        assert!(!stored.disabled);

        db.store.set_user_status(&db.root(), "kim", UserStatus::Active).await.unwrap();
        assert_eq!(authenticate(&db.store, &kim_plaintext, SINGAPORE), Ok(kim_key.api_key_id));
    }

    async fn rule_6_a_deleted_ram_users_keys_access_keys_and_sessions_are_deleted(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let kim_keys = [create_key(&db, &db.root(), Some(kim.user_id)).await, create_key(&db, &db.root(), Some(kim.user_id)).await];
        let (root_key, root_plaintext) = create_key(&db, &db.root(), None).await;
        let access_key = AccessKeyId::generate();
        db.store.create_access_key(&db.root(), access_key.as_str(), Some(kim.user_id), b"ciphertext").await.unwrap();
        let session = [7u8; 32];
        db.store.create_session(&db.root(), &session, Some(kim.user_id), now_millis() + 60_000).await.unwrap();

        db.store.delete_user(&db.root(), "kim").await.unwrap();
        for (key, plaintext) in &kim_keys {
            assert_not_found(db.store.get_api_key(db.account_id, SINGAPORE, key.api_key_id, WholeAccount).await);
            assert_eq!(authenticate(&db.store, plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        }
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [root_key.api_key_id]);
        assert_eq!(authenticate(&db.store, &root_plaintext, SINGAPORE), Ok(root_key.api_key_id));
        assert!(db.store.find_access_key(access_key.as_str()).await.unwrap().is_none(), "its AccessKey is gone");
        assert!(db.store.find_session(&session, now_millis()).await.unwrap().is_none(), "its session is gone");
        assert_not_found(db.store.find_user(db.account_id, "kim").await);
        assert_not_found(db.store.user_by_id(db.account_id, kim.user_id).await);
        assert_not_found(db.store.caller(db.account_id, Some(kim.user_id)).await);
        assert!(db.store.list_users(db.account_id).await.unwrap().is_empty());
        // Deleting again finds nobody.
        assert_not_found(db.store.delete_user(&db.root(), "kim").await);
    }

    async fn a_deleted_users_name_may_be_given_again_and_nothing_of_the_old_user_comes_back(db: TestDatabase) {
        let old = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (_, old_plaintext) = create_key(&db, &db.root(), Some(old.user_id)).await;
        db.store.delete_user(&db.root(), "kim").await.unwrap();

        let new = db.store.create_user(&db.root(), "kim", Role::Member, None).await.unwrap();
        assert_ne!(new.user_id, old.user_id);
        assert_eq!(authenticate(&db.store, &old_plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(key_ids(&db.store, db.account_id, SINGAPORE, KeyVisibility::CreatedBy(new.user_id)).await.is_empty());
        assert_eq!(db.store.find_user(db.account_id, "kim").await.unwrap().role, Role::Member);
    }

    async fn rule_6_a_user_removed_from_a_workspace_loses_its_keys_in_that_workspace(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let workspace = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap().workspace_id;
        assert!(!db.store.is_workspace_member(&workspace, kim.user_id).await.unwrap());
        db.store.add_workspace_member(&db.root(), &workspace, "kim").await.unwrap();
        // Adding twice is harmless.
        db.store.add_workspace_member(&db.root(), &workspace, "kim").await.unwrap();
        assert!(db.store.is_workspace_member(&workspace, kim.user_id).await.unwrap());
        assert_eq!(db.store.find_user(db.account_id, "kim").await.unwrap().workspace_ids, std::slice::from_ref(&workspace));
        let (workspace_key, workspace_plaintext) = create_key_in(&db.store, &db.root(), &workspace, Some(kim.user_id)).await;
        let (default_key, default_plaintext) = create_key(&db, &db.root(), Some(kim.user_id)).await;
        assert_eq!(authenticate(&db.store, &workspace_plaintext, SINGAPORE), Ok(workspace_key.api_key_id));

        db.store.remove_workspace_member(&db.root(), &workspace, "kim").await.unwrap();
        assert_eq!(authenticate(&db.store, &workspace_plaintext, SINGAPORE), Err(AuthenticationFailure::CreatorNotActive));
        assert_eq!(authenticate(&db.store, &default_plaintext, SINGAPORE), Ok(default_key.api_key_id));
        assert!(!db.store.is_workspace_member(&workspace, kim.user_id).await.unwrap(), "it can no longer create keys there");
        assert!(db.store.find_user(db.account_id, "kim").await.unwrap().workspace_ids.is_empty());
        // Every user is a member of the default workspace, whatever the table says.
        let default = db.default_workspace(SINGAPORE).await;
        assert!(db.store.is_workspace_member(&default, kim.user_id).await.unwrap());

        db.store.add_workspace_member(&db.root(), &workspace, "kim").await.unwrap();
        assert_eq!(authenticate(&db.store, &workspace_plaintext, SINGAPORE), Ok(workspace_key.api_key_id));
    }

    async fn the_default_workspaces_membership_cannot_change_and_unknown_names_are_not_found(db: TestDatabase) {
        db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let default = db.default_workspace(SINGAPORE).await;
        for result in [
            db.store.add_workspace_member(&db.root(), &default, "kim").await,
            db.store.remove_workspace_member(&db.root(), &default, "kim").await,
        ] {
            assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
        }
        let workspace = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap().workspace_id;
        assert_not_found(db.store.add_workspace_member(&db.root(), &workspace, "nobody").await);
        assert_not_found(db.store.add_workspace_member(&db.root(), "llm-doesnotexist0000", "kim").await);
        // A workspace of another region is not found from this one.
        let virginia = db.root_in(crate::support::VIRGINIA);
        assert_not_found(db.store.add_workspace_member(&virginia, &workspace, "kim").await);
    }

    async fn rule_6_the_account_itself_cannot_be_deleted(db: TestDatabase) {
        for (name, role) in [("ada", Role::Admin), ("kim", Role::KeyManager)] {
            db.store.create_user(&db.root(), name, role, None).await.unwrap();
        }
        let (root_key, root_plaintext) = create_key(&db, &db.root(), None).await;
        for name in ["ada", "kim"] {
            db.store.delete_user(&db.root(), name).await.unwrap();
        }
        // There is no operation that deletes an account: deleting every user leaves it whole.
        assert!(db.store.find_account("root").await.unwrap().is_some());
        assert_eq!(authenticate(&db.store, &root_plaintext, SINGAPORE), Ok(root_key.api_key_id));
        assert_eq!(key_ids(&db.store, db.account_id, SINGAPORE, WholeAccount).await, [root_key.api_key_id]);
    }

    async fn a_name_is_taken_once_per_account_and_roles_change_in_place(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::Member, Some("hash-1")).await.unwrap();
        assert_eq!((kim.role, kim.status, kim.password_hash.as_deref()), (Role::Member, UserStatus::Active, Some("hash-1")));
        let again = db.store.create_user(&db.root(), "kim", Role::Admin, None).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        // Another account may use the name.
        let (other, created) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        assert!(created);
        let mut other_context = db.root();
        other_context.account_id = other.account_id;
        db.store.create_user(&other_context, "kim", Role::Admin, None).await.unwrap();
        assert_eq!(db.store.ensure_account("other", "another hash", now_millis()).await.unwrap(), (other, false), "ensure_account keeps what exists");

        let promoted = db.store.set_user_role(&db.root(), "kim", Role::KeyManager).await.unwrap();
        assert_eq!((promoted.user_id, promoted.role), (kim.user_id, Role::KeyManager));
        assert_eq!(db.store.list_users(db.account_id).await.unwrap().len(), 1, "one user in root's account");
        assert_not_found(db.store.set_user_role(&db.root(), "nobody", Role::Admin).await);
    }

    async fn a_new_password_ends_every_other_session_of_the_user(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, Some("old")).await.unwrap();
        let later = now_millis() + 60_000;
        let (kept, ended, roots) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        db.store.create_session(&db.root(), &kept, Some(kim.user_id), later).await.unwrap();
        db.store.create_session(&db.root(), &ended, Some(kim.user_id), later).await.unwrap();
        db.store.create_session(&db.root(), &roots, None, later).await.unwrap();

        let changed = db.store.set_user_password(&db.root(), "kim", "new", Some(&kept)).await.unwrap();
        assert_eq!(changed.password_hash.as_deref(), Some("new"));
        assert!(db.store.find_session(&kept, now_millis()).await.unwrap().is_some(), "the session that made the change stays");
        assert!(db.store.find_session(&ended, now_millis()).await.unwrap().is_none(), "another session of the user ends");
        assert!(db.store.find_session(&roots, now_millis()).await.unwrap().is_some(), "other users' sessions stay");
        let audit = db.store.list_audit(db.account_id, 1, None).await.unwrap();
        assert_eq!((audit[0].action.as_str(), audit[0].detail.as_str()), ("User.SetPassword", "sessions_ended=1"));

        // Without a session to keep, every one of the user's ends.
        db.store.set_user_password(&db.root(), "kim", "newer", None).await.unwrap();
        assert!(db.store.find_session(&kept, now_millis()).await.unwrap().is_none());
    }
}
