//! Management credentials in the store: AccessKeys (the secret stored as given, encrypted by
//! the caller), sessions under the digest of their token (an expired one is not found and is
//! pruned), and the ACS3 nonce ledger (a nonce is accepted once, even by two stores at once).

use keygate_core::access::Role;
use keygate_core::ids::AccessKeyId;

use std::time::{Duration, Instant};

use keygate_store::Store;

use crate::support::{assert_not_found, now_millis, Follower, FEED_WAIT};

/// Waits until `store` answers whether the session `digest` has a caller as `live` says.
async fn wait_for_session(store: &Store, digest: &[u8; 32], live: bool, what: &str) {
    let started = Instant::now();
    while store.session_caller(digest, now_millis()).await.unwrap().is_some() != live {
        assert!(started.elapsed() < FEED_WAIT, "{what}: not after {FEED_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

on_both_databases! {
    async fn access_keys_are_found_listed_by_owner_disabled_and_deleted_within_their_account(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (roots, kims) = (AccessKeyId::generate(), AccessKeyId::generate());
        let created = db.store.create_access_key(&db.root(), roots.as_str(), None, b"root ciphertext").await.unwrap();
        assert_eq!((created.account_id, created.user_id, created.active, created.last_used_at), (db.account_id, None, true, None));
        db.store.create_access_key(&db.root(), kims.as_str(), Some(kim.user_id), b"kim ciphertext").await.unwrap();
        let found = db.store.find_access_key(kims.as_str()).await.unwrap().expect("found");
        assert_eq!((found.user_id, found.secret_ciphertext.as_slice()), (Some(kim.user_id), b"kim ciphertext".as_slice()));
        assert!(db.store.find_access_key("LTAI-not-there").await.unwrap().is_none());

        let ids = |records: Vec<keygate_store::AccessKeyRecord>| records.into_iter().map(|record| record.access_key_id).collect::<Vec<_>>();
        assert_eq!(ids(db.store.list_access_keys(db.account_id, None).await.unwrap()).len(), 2);
        assert_eq!(ids(db.store.list_access_keys(db.account_id, Some(None)).await.unwrap()), [roots.as_str()]);
        assert_eq!(ids(db.store.list_access_keys(db.account_id, Some(Some(kim.user_id))).await.unwrap()), [kims.as_str()]);

        db.store.set_access_key_active(&db.root(), kims.as_str(), false).await.unwrap();
        assert!(!db.store.find_access_key(kims.as_str()).await.unwrap().unwrap().active);
        db.store.set_access_key_active(&db.root(), kims.as_str(), true).await.unwrap();
        assert!(db.store.find_access_key(kims.as_str()).await.unwrap().unwrap().active);

        // Another account can neither change nor delete them.
        let (other, _) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        let mut foreign = db.root();
        foreign.account_id = other.account_id;
        assert_not_found(db.store.set_access_key_active(&foreign, roots.as_str(), false).await);
        assert_not_found(db.store.delete_access_key(&foreign, roots.as_str()).await);
        assert!(db.store.find_access_key(roots.as_str()).await.unwrap().unwrap().active);

        db.store.delete_access_key(&db.root(), roots.as_str()).await.unwrap();
        assert!(db.store.find_access_key(roots.as_str()).await.unwrap().is_none());
        assert_not_found(db.store.delete_access_key(&db.root(), roots.as_str()).await);
    }

    async fn a_session_is_found_by_its_digest_until_it_expires_or_ends(db: TestDatabase) {
        let now = now_millis();
        let (live, expired) = ([1u8; 32], [2u8; 32]);
        db.store.create_session(&db.root(), &expired, None, now - 1).await.unwrap();
        assert!(db.store.find_session(&expired, now_millis()).await.unwrap().is_none(), "an expired session is not found");
        db.store.create_session(&db.root(), &live, None, now + 60_000).await.unwrap();
        let found = db.store.find_session(&live, now_millis()).await.unwrap().expect("live session");
        assert_eq!((found.account_id, found.user_id, found.expires_at), (db.account_id, None, now + 60_000));
        // The expired one was pruned by the next login: its digest may be stored again.
        db.store.create_session(&db.root(), &expired, None, now + 60_000).await.unwrap();
        assert!(db.store.find_session(&expired, now_millis()).await.unwrap().is_some());

        db.store.delete_session(&db.root(), &live).await.unwrap();
        assert!(db.store.find_session(&live, now_millis()).await.unwrap().is_none());
        let actions: Vec<String> = db.store.list_audit(db.account_id, 10, None).await.unwrap().into_iter().rev().map(|row| row.action).collect();
        assert_eq!(actions, ["Session.Login", "Session.Login", "Session.Login", "Session.Logout"]);
    }

    async fn a_sessions_caller_is_read_in_one_statement_and_none_once_its_user_is_deleted(db: TestDatabase) {
        let now = now_millis();
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (roots, kims, expired) = ([3u8; 32], [4u8; 32], [5u8; 32]);
        db.store.create_session(&db.root(), &roots, None, now + 60_000).await.unwrap();
        db.store.create_session(&db.root(), &kims, Some(kim.user_id), now + 60_000).await.unwrap();
        db.store.create_session(&db.root(), &expired, None, now - 1).await.unwrap();
        let before = db.store.statements_run();
        let root = db.store.session_caller(&roots, now_millis()).await.unwrap().expect("root's session");
        assert_eq!(db.store.statements_run() - before, 1);
        assert_eq!(root, db.store.caller(db.account_id, None).await.unwrap());
        let caller = db.store.session_caller(&kims, now_millis()).await.unwrap().expect("kim's session");
        assert_eq!(caller, db.store.caller(db.account_id, Some(kim.user_id)).await.unwrap());
        assert!(db.store.session_caller(&expired, now_millis()).await.unwrap().is_none(), "an expired session has no caller");
        db.store.delete_user(&db.root(), "kim").await.unwrap();
        assert!(db.store.session_caller(&kims, now_millis()).await.unwrap().is_none(), "a deleted user's session has no caller");
    }

    async fn a_sessions_caller_is_read_once_and_a_session_ended_through_another_store_ends_here_as_it_follows(db: TestDatabase) {
        let now = now_millis();
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let (roots, kims, accounts) = ([6u8; 32], [7u8; 32], [8u8; 32]);
        db.store.create_session(&db.root(), &roots, None, now + 60_000).await.unwrap();
        db.store.create_session(&db.root(), &kims, Some(kim.user_id), now + 60_000).await.unwrap();
        db.store.create_session(&db.root(), &accounts, None, now + 60_000).await.unwrap();
        let other = db.open_another("kg-store-b").await;
        // Each store reads a session once; then its caller comes from memory, the expiry
        // still checked every time.
        for digest in [&roots, &kims, &accounts] {
            assert!(other.session_caller(digest, now_millis()).await.unwrap().is_some());
        }
        let before = other.statements_run();
        let cached = other.session_caller(&kims, now_millis()).await.unwrap().expect("kim's session");
        assert_eq!(cached, db.store.caller(db.account_id, Some(kim.user_id)).await.unwrap());
        assert_eq!(other.statements_run(), before, "a session read before is not read again");
        assert!(other.session_caller(&roots, now + 60_000).await.unwrap().is_none(), "expired, though held");

        let follower = Follower::start(&other, Duration::from_millis(50));
        // A logout through the first store: refused there at once, and here once followed.
        db.store.delete_session(&db.root(), &roots).await.unwrap();
        assert!(db.store.session_caller(&roots, now_millis()).await.unwrap().is_none(), "ended where it was ended");
        wait_for_session(&other, &roots, false, "the logout to reach the other store").await;
        // Kim disabled: the other store's copy of her session's caller says so once followed.
        db.store.set_user_status(&db.root(), "kim", keygate_core::access::UserStatus::Disabled).await.unwrap();
        let started = Instant::now();
        while other.session_caller(&kims, now_millis()).await.unwrap().expect("kim's session") == cached {
            assert!(started.elapsed() < FEED_WAIT, "kim's status to reach the other store");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Kim's password set: her session ends everywhere.
        db.store.set_user_password(&db.root(), "kim", "another hash", None).await.unwrap();
        wait_for_session(&other, &kims, false, "kim's new password to reach the other store").await;
        // The account's password changed from another session: the account's other sessions end.
        assert!(other.session_caller(&accounts, now_millis()).await.unwrap().is_some());
        db.store.create_session(&db.root(), &roots, None, now + 60_000).await.unwrap();
        db.store.change_own_password(&db.root(), None, "another hash", Some(&roots)).await.unwrap();
        wait_for_session(&other, &accounts, false, "the account's new password to reach the other store").await;
        assert!(other.session_caller(&roots, now_millis()).await.unwrap().is_some(), "the session that changed it stays");
        follower.stop().await;
    }

    async fn a_nonce_is_accepted_once_until_it_is_older_than_the_window(db: TestDatabase) {
        let window_start = now_millis() - 15 * 60 * 1000;
        assert!(db.store.remember_nonce("nonce-1", now_millis(), window_start).await.unwrap());
        assert!(!db.store.remember_nonce("nonce-1", now_millis(), window_start).await.unwrap(), "a replay");
        assert!(db.store.remember_nonce("nonce-2", now_millis(), window_start).await.unwrap());
        // A second store on the same database knows it too.
        let other = db.open_another("kg-store-b").await;
        assert!(!other.remember_nonce("nonce-1", now_millis(), window_start).await.unwrap());
        // Once the window has passed it (here: a window that starts in the future), the
        // ledger forgets it; the clock window refuses such a request anyway.
        let later = now_millis() + 1_000;
        assert!(db.store.remember_nonce("nonce-3", now_millis(), later).await.unwrap());
        assert!(db.store.remember_nonce("nonce-1", now_millis(), later).await.unwrap(), "pruned");
    }

    async fn the_same_nonce_presented_at_once_through_two_stores_is_accepted_once(db: TestDatabase) {
        let other = db.open_another("kg-store-b").await;
        let window_start = now_millis() - 60_000;
        for round in 0..5 {
            let nonce = format!("raced-{round}");
            let tasks: Vec<_> = (0..16)
                .map(|index| {
                    let store = if index % 2 == 0 { db.store.clone() } else { other.clone() };
                    let nonce = nonce.clone();
                    tokio::spawn(async move { store.remember_nonce(&nonce, now_millis(), window_start).await.expect("nonce") })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                accepted += usize::from(task.await.unwrap());
            }
            assert_eq!(accepted, 1, "{nonce}");
        }
    }
}
