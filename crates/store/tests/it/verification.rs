//! docs/CONTRACT.md#revocation-bound on one node: a change is in the store's registry as soon as the
//! store call that makes it returns, with no cache to wait for.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::access::{Role, UserStatus};
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::verification::AuthenticationFailure;

use crate::support::{authenticate, create_key, SINGAPORE};

on_both_databases! {
    async fn disabling_a_key_refuses_it_as_soon_as_the_call_returns(db: TestDatabase) {
        let (key, plaintext) = create_key(&db, &db.root(), None).await;
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Ok(key.api_key_id));
        db.store.set_api_key_disabled(&db.root(), key.api_key_id, WholeAccount, true).await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::Disabled));
        db.store.set_api_key_disabled(&db.root(), key.api_key_id, WholeAccount, false).await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Ok(key.api_key_id));
    }

    async fn deleting_a_key_refuses_it_as_soon_as_the_call_returns(db: TestDatabase) {
        let (key, plaintext) = create_key(&db, &db.root(), None).await;
        db.store.delete_api_key(&db.root(), key.api_key_id, WholeAccount).await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(db.store.registry().lookup_by_id(key.api_key_id).is_none());
    }

    async fn resetting_a_key_refuses_the_old_secret_as_soon_as_the_call_returns(db: TestDatabase) {
        let (key, old_plaintext) = create_key(&db, &db.root(), None).await;
        let new = generate_key(KeyFormat::Secure);
        db.store.reset_api_key(&db.root(), key.api_key_id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), None).await.unwrap();
        assert_eq!(authenticate(&db.store, &old_plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert_eq!(authenticate(&db.store, expose(&new.plaintext), SINGAPORE), Ok(key.api_key_id));
    }

    async fn disabling_its_ram_user_refuses_the_key_as_soon_as_the_call_returns(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (key, plaintext) = create_key(&db, &db.root(), Some(kim.user_id)).await;
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Ok(key.api_key_id));
        db.store.set_user_status(&db.root(), "kim", UserStatus::Disabled).await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::CreatorNotActive));
        db.store.set_user_status(&db.root(), "kim", UserStatus::Active).await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Ok(key.api_key_id));
    }

    async fn deleting_its_ram_user_refuses_the_key_as_soon_as_the_call_returns(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (key, plaintext) = create_key(&db, &db.root(), Some(kim.user_id)).await;
        db.store.delete_user(&db.root(), "kim").await.unwrap();
        assert_eq!(authenticate(&db.store, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert!(db.store.registry().lookup_by_id(key.api_key_id).is_none());
    }
}
