//! The change feed between stores on one database (docs/CONTRACT.md#storage-and-durability): a change committed
//! through one store reaches another through the feed; versions have no gaps, even when two
//! stores write at once; a gap makes a follower resynchronise fully; a revoked digest stays
//! refused through every resync and late fill; and on PostgreSQL, notifications alone wake a
//! follower and a follower whose connection is killed resynchronises.

use std::time::Duration;

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::access::{Role, UserStatus};
use keygate_core::keys::{expose, generate_key, KeyFormat};
use keygate_core::region::LimitScope;
use keygate_core::verification::{AuthenticationFailure, RegistryUpdate};
use keygate_store::database::SqlValue;
use keygate_store::feed::CatchUp;
use keygate_store::{ModelGrant, QuotaRule, Store, StoreError};

use crate::compile::{assert_same_registry, build_world};
use crate::support::{
    authenticate, create_key, key_ids, legacy_key, new_key, now_millis, wait_until, Backend, Follower, TestDatabase, FEED_WAIT, NO_LIMIT,
    SINGAPORE,
};

/// How often a follower polls in these tests (on SQLite polling is all there is).
const POLL: Duration = Duration::from_millis(100);
/// A poll interval no test outlasts: only notifications (or a reconnect) wake the follower.
const NEVER: Duration = Duration::from_secs(3600);

/// Waits until `store` says `expected` for `plaintext`.
async fn wait_for(store: &Store, plaintext: &str, expected: Result<i64, AuthenticationFailure>) {
    let what = format!("the follower to say {expected:?}");
    wait_until(&what, FEED_WAIT, || authenticate(store, plaintext, SINGAPORE) == expected).await;
}

/// Writes a change-feed row behind the stores' backs, at `version`, about key `key_id`,
/// without a notification.
async fn write_change_row(db: &TestDatabase, version: u64, key_id: i64) {
    let version = i64::try_from(version).unwrap();
    db.raw()
        .await
        .execute(
            "INSERT INTO changes (version, kind, subject, revoked, at) VALUES ($1, 'api_key', $2, '', 0)",
            &[SqlValue::Integer(version), SqlValue::Text(key_id.to_string())],
        )
        .await
        .expect("change row");
}

/// Disables key `key_id` behind the stores' backs, recording no change.
async fn disable_silently(db: &TestDatabase, key_id: i64) {
    db.raw()
        .await
        .execute("UPDATE api_keys SET disabled = $1 WHERE api_key_id = $2", &[SqlValue::Boolean(true), SqlValue::Integer(key_id)])
        .await
        .expect("disable");
}

on_both_databases! {
    async fn a_change_committed_through_one_store_reaches_a_second_store_through_the_feed(db: TestDatabase) {
        let writer = &db.store;
        let follower_store = db.open_another("kg-store-b").await;
        let follower = Follower::start(&follower_store, POLL);
        let (key, plaintext) = create_key(&db, &db.root(), None).await;
        let id = key.api_key_id;
        wait_for(&follower_store, &plaintext, Ok(id)).await;

        writer.set_api_key_disabled(&db.root(), id, WholeAccount, true).await.unwrap();
        wait_for(&follower_store, &plaintext, Err(AuthenticationFailure::Disabled)).await;
        writer.set_api_key_disabled(&db.root(), id, WholeAccount, false).await.unwrap();
        wait_for(&follower_store, &plaintext, Ok(id)).await;
        let new = generate_key(KeyFormat::Secure);
        writer.reset_api_key(&db.root(), id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), None).await.unwrap();
        wait_for(&follower_store, &plaintext, Err(AuthenticationFailure::Unknown)).await;
        wait_for(&follower_store, expose(&new.plaintext), Ok(id)).await;

        // A RAM user's status, its membership, its deletion.
        let kim = writer.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let team = writer.create_workspace(&db.root(), "team", 20).await.unwrap().workspace_id;
        writer.add_workspace_member(&db.root(), &team, "kim").await.unwrap();
        let (kims, kims_plaintext) = crate::support::create_key_in(writer, &db.root(), &team, Some(kim.user_id)).await;
        wait_for(&follower_store, &kims_plaintext, Ok(kims.api_key_id)).await;
        writer.set_user_status(&db.root(), "kim", UserStatus::Disabled).await.unwrap();
        wait_for(&follower_store, &kims_plaintext, Err(AuthenticationFailure::CreatorNotActive)).await;
        writer.set_user_status(&db.root(), "kim", UserStatus::Active).await.unwrap();
        wait_for(&follower_store, &kims_plaintext, Ok(kims.api_key_id)).await;
        writer.remove_workspace_member(&db.root(), &team, "kim").await.unwrap();
        wait_for(&follower_store, &kims_plaintext, Err(AuthenticationFailure::CreatorNotActive)).await;
        writer.add_workspace_member(&db.root(), &team, "kim").await.unwrap();
        wait_for(&follower_store, &kims_plaintext, Ok(kims.api_key_id)).await;

        // A workspace's grants.
        let grant = ModelGrant { model: "qwen-plus".into(), inference: true, deploy: false, fine_tune: false };
        writer.update_model_grants(&db.root(), &team, &[grant]).await.unwrap();
        wait_until("the grant to reach the follower", FEED_WAIT, || {
            follower_store.registry().workspace(&team).is_some_and(|grants| grants.may_call_model("qwen-plus"))
        })
        .await;

        // A batch, as one entry.
        let default = db.default_workspace(SINGAPORE).await;
        let (batch, batch_plaintexts): (Vec<_>, Vec<_>) = (0..20).map(|_| legacy_key(SINGAPORE, &default, None)).unzip();
        let imported = writer.import_api_keys(&db.root(), batch, NO_LIMIT).await.unwrap();
        wait_for(&follower_store, &batch_plaintexts[0], Ok(imported[0].api_key_id)).await;
        wait_for(&follower_store, &batch_plaintexts[19], Ok(imported[19].api_key_id)).await;

        writer.delete_user(&db.root(), "kim").await.unwrap();
        wait_for(&follower_store, &kims_plaintext, Err(AuthenticationFailure::Unknown)).await;
        writer.delete_api_key(&db.root(), id, WholeAccount).await.unwrap();
        wait_for(&follower_store, expose(&new.plaintext), Err(AuthenticationFailure::Unknown)).await;

        // The follower says how far it has come: as far as the writer.
        let version = db.feed_version().await;
        wait_until("the follower's cursor to reach the newest version", FEED_WAIT, || follower.health.cursor() == version).await;
        assert_eq!(follower_store.registry().applied_version(), version);
        assert!(follower.health.last_error().is_none());
        assert!(follower.health.staleness_milliseconds(now_millis()) < 5_000);
        follower.stop().await;
    }

    async fn a_follower_converges_on_everything_another_store_did(db: TestDatabase) {
        let follower_store = db.open_another("kg-store-b").await;
        let follower = Follower::start(&follower_store, POLL);
        let world = build_world(&db, None).await;
        let version = db.feed_version().await;
        wait_until("the follower to reach the newest version", FEED_WAIT, || follower.health.cursor() == version).await;
        assert_same_registry(&db.store, &follower_store, &world, "followed");
        follower.stop().await;
    }

    async fn versions_have_no_gaps_when_two_stores_write_at_once(db: TestDatabase) {
        let other = db.open_another("kg-store-b").await;
        let follower_store = db.open_another("kg-store-c").await;
        let follower = Follower::start(&follower_store, POLL);
        let default = db.default_workspace(SINGAPORE).await;
        let tasks: Vec<_> = (0..40)
            .map(|index| {
                let store = if index % 2 == 0 { db.store.clone() } else { other.clone() };
                let (context, (key, plaintext)) = (db.root(), new_key(SINGAPORE, &default, None, KeyFormat::Secure));
                tokio::spawn(async move { (store.create_api_key(&context, key, NO_LIMIT).await.expect("created").api_key_id, plaintext) })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            created.push(task.await.unwrap());
        }
        let version = db.feed_version().await;
        assert_eq!(version, 1 + 40, "the default workspaces, then one version per key");
        // Reading the whole feed from the start finds every version, in order.
        let fresh = db.open_another("kg-store-d").await;
        assert_eq!(fresh.catch_up(0).await.unwrap(), CatchUp::UpTo(version));
        // A follower holds all of them.
        wait_until("the follower to reach the newest version", FEED_WAIT, || follower.health.cursor() == version).await;
        for (id, plaintext) in &created {
            assert_eq!(authenticate(&follower_store, plaintext, SINGAPORE), Ok(*id));
        }
        assert_eq!(key_ids(&follower_store, db.account_id, SINGAPORE, WholeAccount).await.len(), 40);
        follower.stop().await;
    }

    async fn concurrent_creates_some_refused_leave_a_gap_free_feed_every_acknowledged_key_and_nothing_of_the_refused(db: TestDatabase) {
        // On PostgreSQL each store groups the creates that queue up into one transaction,
        // each in a savepoint: a refusal in the middle of a batch (a conflict the database
        // reports, a quota the store checks) must leave nothing and fail nothing else.
        let other = db.open_another("kg-store-b").await;
        let follower_store = db.open_another("kg-store-c").await;
        let follower = Follower::start(&follower_store, POLL);
        let default = db.default_workspace(SINGAPORE).await;
        let (taken_digest, _) = new_key(SINGAPORE, &default, None, KeyFormat::Secure);
        db.store.create_api_key(&db.root(), taken_digest.clone(), NO_LIMIT).await.expect("created");
        let audit_before = db.audit_count().await;
        let tasks: Vec<_> = (0..160)
            .map(|index| {
                let store = if index % 2 == 0 { db.store.clone() } else { other.clone() };
                let context = db.root();
                let (key, plaintext) = new_key(SINGAPORE, &default, None, KeyFormat::Secure);
                let (key, quota) = match index % 4 {
                    // A digest already stored: the INSERT fails in the database.
                    1 => (taken_digest.clone(), NO_LIMIT),
                    // A limit already reached: refused before any row is written.
                    3 => (key, QuotaRule { limit: 0, scope: LimitScope::Account }),
                    _ => (key, NO_LIMIT),
                };
                tokio::spawn(async move { (index, plaintext, store.create_api_key(&context, key, quota).await) })
            })
            .collect();
        let (mut created, mut refused) = (Vec::new(), Vec::new());
        for task in tasks {
            let (index, plaintext, outcome) = task.await.unwrap();
            match (index % 4, outcome) {
                (0 | 2, Ok(record)) => created.push((record.api_key_id, plaintext)),
                (1, Err(StoreError::Conflict(_))) | (3, Err(StoreError::KeyQuotaExceeded { limit: 0 })) => refused.push(plaintext),
                (_, outcome) => panic!("create {index} answered {outcome:?}"),
            }
        }
        assert_eq!((created.len(), refused.len()), (80, 80));
        // Versions 1 (the default workspaces), 2 (the first key), then one per acknowledged
        // key: no gaps, no duplicates, nothing for a refusal.
        let version = db.feed_version().await;
        assert_eq!(version, 2 + 80);
        let versions: Vec<i64> = db
            .raw()
            .await
            .fetch_all("SELECT version FROM changes ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.i64("version").unwrap())
            .collect();
        assert_eq!(versions, (1..=82).collect::<Vec<i64>>());
        let fresh = db.open_another("kg-store-d").await;
        assert_eq!(fresh.catch_up(0).await.unwrap(), CatchUp::UpTo(version));
        // Every acknowledged key is on the node that follows the feed.
        wait_until("the follower to reach the newest version", FEED_WAIT, || follower.health.cursor() == version).await;
        for (id, plaintext) in &created {
            assert_eq!(authenticate(&follower_store, plaintext, SINGAPORE), Ok(*id));
            assert_eq!(authenticate(&fresh, plaintext, SINGAPORE), Ok(*id));
        }
        // Nothing of the refused ones: no key, no audit row.
        for plaintext in &refused {
            assert_eq!(authenticate(&follower_store, plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        }
        assert_eq!(key_ids(&follower_store, db.account_id, SINGAPORE, WholeAccount).await.len(), 1 + 80);
        assert_eq!(key_ids(&fresh, db.account_id, SINGAPORE, WholeAccount).await.len(), 1 + 80);
        assert_eq!(db.audit_count().await - audit_before, 80);
        if db.postgres_schema().is_some() {
            // The counts the quota check reads agree with the keys, the refused ones left out.
            let counted = db.raw().await.fetch_one("SELECT COALESCE(SUM(keys), 0)::BIGINT AS n FROM api_key_counts", &[]).await.unwrap();
            let stored = db.raw().await.fetch_one("SELECT COUNT(*) AS n FROM api_keys", &[]).await.unwrap();
            assert_eq!((counted.i64("n").unwrap(), stored.i64("n").unwrap()), (81, 81));
        }
        follower.stop().await;
    }

    async fn a_gap_in_the_feed_is_reported_and_makes_a_follower_resynchronise_fully(db: TestDatabase) {
        let (silent, silent_plaintext) = create_key(&db, &db.root(), None).await;
        let (named, _) = create_key(&db, &db.root(), None).await;
        let behind = db.open_another("kg-store-b").await;
        let cursor = behind.registry().applied_version();
        assert_eq!(behind.catch_up(cursor).await.unwrap(), CatchUp::UpTo(cursor));

        // One key disabled with no change row of its own, and a row about another key one
        // version past the next: the version between is missing.
        disable_silently(&db, silent.api_key_id).await;
        write_change_row(&db, cursor + 2, named.api_key_id).await;
        assert_eq!(behind.catch_up(cursor).await.unwrap(), CatchUp::Gap);
        assert_eq!(authenticate(&behind, &silent_plaintext, SINGAPORE), Ok(silent.api_key_id), "catch-up applied nothing past the gap");

        // A follower meets the same gap and reads everything again: it learns what no row told.
        let follower = Follower::start(&behind, POLL);
        wait_for(&behind, &silent_plaintext, Err(AuthenticationFailure::Disabled)).await;
        wait_until("the follower to confirm past the gap", FEED_WAIT, || follower.health.cursor() == cursor + 2).await;
        follower.stop().await;
    }

    async fn a_revoked_digest_stays_refused_through_resyncs_and_late_fills(db: TestDatabase) {
        let (deleted, deleted_plaintext) = create_key(&db, &db.root(), None).await;
        let (reset, reset_plaintext) = create_key(&db, &db.root(), None).await;
        // A store that read both keys before they were revoked: what a late cache fill or a
        // resync from an old snapshot would bring.
        let early = db.open_another("kg-store-b").await;
        let early_version = early.registry().applied_version();
        let stale: Vec<RegistryUpdate> = [&deleted_plaintext, &reset_plaintext]
            .iter()
            .map(|plaintext| {
                let key = early.registry().authenticate(plaintext, SINGAPORE, now_millis() / 1000).expect("live when read");
                let digest = early.registry().digest_of(key.key_id).unwrap();
                RegistryUpdate::Key { digest, key }
            })
            .collect();

        db.store.delete_api_key(&db.root(), deleted.api_key_id, WholeAccount).await.unwrap();
        let new = generate_key(KeyFormat::Secure);
        db.store.reset_api_key(&db.root(), reset.api_key_id, WholeAccount, KeyFormat::Secure, new.digest, new.masked.clone(), None).await.unwrap();
        let refused = |store: &Store| {
            [authenticate(store, &deleted_plaintext, SINGAPORE), authenticate(store, &reset_plaintext, SINGAPORE)]
        };
        let gone = [Err(AuthenticationFailure::Unknown); 2];
        assert_eq!(refused(&db.store), gone);

        // A late fill from before the revocations is older than the tombstones: ignored.
        db.store.registry().apply(early_version, stale.clone());
        assert_eq!(refused(&db.store), gone, "a late fill revived a revoked digest");
        // So is a resync whose snapshot was read before them and lands after.
        db.store.registry().replace_all(early_version, stale.clone());
        assert_eq!(refused(&db.store), gone, "a stale resync revived a revoked digest");
        assert_eq!(authenticate(&db.store, expose(&new.plaintext), SINGAPORE), Ok(reset.api_key_id));
        // A full resync now, on the writer and on the store that read them early.
        db.store.resync_registry().await.unwrap();
        assert_eq!(refused(&db.store), gone);
        early.resync_registry().await.unwrap();
        assert_eq!(refused(&early), gone, "a resync kept a key the database no longer has");
        assert_eq!(authenticate(&early, expose(&new.plaintext), SINGAPORE), Ok(reset.api_key_id));
        // And a store opened now never had them.
        let late = db.open_another("kg-store-c").await;
        assert_eq!(refused(&late), gone);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notifications_alone_wake_a_follower() {
    let Some(db) = TestDatabase::create(Backend::Postgres, "postgres_notifications_alone_wake_a_follower").await else { return };
    let follower_store = db.open_another("kg-store-b").await;
    let follower = Follower::start(&follower_store, NEVER);
    wait_until("the follower to start", FEED_WAIT, || follower.health.cursor() == 1).await;
    let (key, plaintext) = create_key(&db, &db.root(), None).await;
    wait_for(&follower_store, &plaintext, Ok(key.api_key_id)).await;
    db.store.set_api_key_disabled(&db.root(), key.api_key_id, WholeAccount, true).await.unwrap();
    let took = wait_until("the revocation to reach the follower", FEED_WAIT, || {
        authenticate(&follower_store, &plaintext, SINGAPORE) == Err(AuthenticationFailure::Disabled)
    })
    .await;
    assert!(took < Duration::from_secs(1), "refused on every node within a second, took {took:?}");
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_follower_whose_connection_is_killed_resyncs_and_refuses_what_it_missed() {
    let test = "postgres_a_follower_whose_connection_is_killed_resyncs_and_refuses_what_it_missed";
    let Some(db) = TestDatabase::create(Backend::Postgres, test).await else { return };
    let (key, plaintext) = create_key(&db, &db.root(), None).await;
    let follower_store = db.open_another("kg-store-b").await;
    let follower = Follower::start(&follower_store, NEVER);
    wait_until("the follower to start", FEED_WAIT, || follower.health.cursor() == 2).await;

    // Disabled behind the store's back, with no change row at all: catching up (on a
    // notification of any schema's store; the channel is the database's) finds nothing ...
    disable_silently(&db, key.api_key_id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(authenticate(&follower_store, &plaintext, SINGAPORE), Ok(key.api_key_id), "it must not have heard of it yet");
    // ... until its feed connection dies and it connects again, which reads everything anew.
    let schema = db.postgres_schema().expect("PostgreSQL");
    let mut admin = schema.admin_connection().await;
    let listening: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'")
        .bind(schema.application_name("kg-store-b"))
        .fetch_all(&mut admin)
        .await
        .expect("find the feed connection");
    assert_eq!(listening.len(), 1, "the follower has one feed connection");
    sqlx::query("SELECT pg_terminate_backend($1)").bind(listening[0]).execute(&mut admin).await.expect("terminate");

    wait_until("the follower to resync after reconnecting", Duration::from_secs(10), || {
        authenticate(&follower_store, &plaintext, SINGAPORE) == Err(AuthenticationFailure::Disabled)
    })
    .await;
    wait_until("the follower to confirm again", FEED_WAIT, || follower.health.last_error().is_none()).await;
    follower.stop().await;
}
