//! Compiling rows into the registry: a key's standing folds in its own state, its creator's
//! status and its creator's membership of the key's workspace; and the three ways a store
//! fills its registry (the live update after its own change, the fill at open, catching up
//! on the change feed) agree on every key and workspace.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_core::access::{Role, UserStatus};
use keygate_core::ip_allowlist::IpAllowlist;
use keygate_core::key_limits::{Budget, BudgetPeriod, KeyLimits};
use keygate_core::keys::{generate_key, KeyDigest, KeyFormat};
use keygate_core::permissions::{AppScope, CustomPermissions, KeyAuth, ModelScope};
use keygate_core::verification::KeyStanding;
use keygate_store::feed::CatchUp;
use keygate_store::{ModelGrant, Store};

use crate::support::{create_key, create_key_in, legacy_key, new_key, now_millis, TestDatabase, NO_LIMIT, SINGAPORE, VIRGINIA};

fn standing(store: &Store, key_id: i64) -> KeyStanding {
    let digest = store.registry().digest_of(key_id).expect("a live key");
    store.registry().lookup(&digest).expect("compiled").standing
}

/// The digests (live and revoked) and workspaces (present and deleted) that [`build_world`]
/// leaves behind.
pub struct World {
    pub digests: Vec<KeyDigest>,
    pub workspaces: Vec<String>,
}

/// After each change of [`build_world`]: `behind` (when given) catches up on that one change,
/// and must then hold what the store that made it holds.
async fn checkpoint(db: &TestDatabase, behind: Option<&Store>, world: &World) {
    let Some(behind) = behind else { return };
    let version = db.feed_version().await;
    assert_eq!(behind.catch_up(behind.registry().applied_version()).await.unwrap(), CatchUp::UpTo(version));
    assert_eq!(behind.registry().applied_version(), version);
    assert_same_registry(&db.store, behind, world, &format!("caught up to version {version}"));
}

/// Every kind of change the feed knows, made through `db.store`, with `behind` catching up
/// after each one.
pub async fn build_world(db: &TestDatabase, behind: Option<&Store>) -> World {
    let (store, root) = (&db.store, db.root());
    let mut world =
        World { digests: Vec::new(), workspaces: vec![db.default_workspace(SINGAPORE).await, db.default_workspace(VIRGINIA).await] };
    let digest_of = |id: i64| store.registry().digest_of(id).expect("a live key");
    let kim = store.create_user(&root, "kim", Role::KeyManager, None).await.unwrap();
    let ada = store.create_user(&root, "ada", Role::Admin, None).await.unwrap();
    let mo = store.create_user(&root, "mo", Role::Member, None).await.unwrap();
    let jo = store.create_user(&root, "jo", Role::KeyManager, None).await.unwrap();
    let team = store.create_workspace(&root, "team", 20).await.unwrap().workspace_id;
    let gone = store.create_workspace(&root, "gone", 20).await.unwrap().workspace_id;
    world.workspaces.extend([team.clone(), gone.clone()]);
    checkpoint(db, behind, &world).await;
    let grant = ModelGrant { model: "qwen-plus".into(), inference: true, deploy: false, fine_tune: false };
    store.update_model_grants(&root, &team, &[grant]).await.unwrap();
    checkpoint(db, behind, &world).await;
    store.create_application(&root, &team, "app-1", "batch").await.unwrap();
    checkpoint(db, behind, &world).await;
    for name in ["kim", "ada"] {
        store.add_workspace_member(&root, &team, name).await.unwrap();
    }
    checkpoint(db, behind, &world).await;

    // The account's keys: custom, disabled, reset, deleted.
    let default = db.default_workspace(SINGAPORE).await;
    let (mut custom, _) = new_key(SINGAPORE, &default, None, KeyFormat::Secure);
    custom.auth = KeyAuth::Custom(Box::new(CustomPermissions {
        access_ips: IpAllowlist::parse(&["10.0.0.0/8".to_string()]).unwrap(),
        model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-plus".into()] },
        app_scope: AppScope::everything(),
    }));
    world.digests.push(custom.digest);
    store.create_api_key(&root, custom, NO_LIMIT).await.unwrap();
    checkpoint(db, behind, &world).await;
    let (disabled, _) = create_key(db, &root, None).await;
    world.digests.push(digest_of(disabled.api_key_id));
    checkpoint(db, behind, &world).await;
    store.set_api_key_disabled(&root, disabled.api_key_id, WholeAccount, true).await.unwrap();
    checkpoint(db, behind, &world).await;
    let (reset, _) = create_key(db, &root, None).await;
    world.digests.push(digest_of(reset.api_key_id));
    checkpoint(db, behind, &world).await;
    let new = generate_key(KeyFormat::Secure);
    store.reset_api_key(&root, reset.api_key_id, WholeAccount, KeyFormat::Secure, new.digest, new.masked, None).await.unwrap();
    world.digests.push(new.digest);
    checkpoint(db, behind, &world).await;
    let (deleted, _) = create_key(db, &root, None).await;
    world.digests.push(digest_of(deleted.api_key_id));
    checkpoint(db, behind, &world).await;
    store.delete_api_key(&root, deleted.api_key_id, WholeAccount).await.unwrap();
    checkpoint(db, behind, &world).await;

    // RAM users' keys: in the team, of a user removed from it, of a disabled user, of a
    // deleted user; a plan key; an import; a key of another region.
    for (workspace, user) in [(&team, &kim), (&team, &ada), (&default, &mo), (&default, &jo)] {
        let (key, _) = create_key_in(store, &root, workspace, Some(user.user_id)).await;
        world.digests.push(digest_of(key.api_key_id));
    }
    checkpoint(db, behind, &world).await;
    store.remove_workspace_member(&root, &team, "ada").await.unwrap();
    checkpoint(db, behind, &world).await;
    store.set_user_status(&root, "mo", UserStatus::Disabled).await.unwrap();
    checkpoint(db, behind, &world).await;
    store.delete_user(&root, "jo").await.unwrap();
    checkpoint(db, behind, &world).await;
    let (plan, _) = new_key(SINGAPORE, &default, Some(kim.user_id), KeyFormat::Plan);
    world.digests.push(plan.digest);
    store.create_api_key(&root, plan, NO_LIMIT).await.unwrap();
    checkpoint(db, behind, &world).await;
    let batch: Vec<_> = (0..3).map(|_| legacy_key(SINGAPORE, &default, Some(kim.user_id)).0).collect();
    world.digests.extend(batch.iter().map(|key| key.digest));
    store.import_api_keys(&root, batch, NO_LIMIT).await.unwrap();
    checkpoint(db, behind, &world).await;
    let (virginia, _) = create_key(db, &db.root_in(VIRGINIA), None).await;
    world.digests.push(digest_of(virginia.api_key_id));
    checkpoint(db, behind, &world).await;
    store.delete_workspace(&root, &gone).await.unwrap();
    checkpoint(db, behind, &world).await;
    // A new region's default workspace.
    store.ensure_default_workspaces(db.account_id, &["eu-central-1".to_string()], now_millis()).await.unwrap();
    world.workspaces.push(db.default_workspace("eu-central-1").await);
    checkpoint(db, behind, &world).await;
    world
}

/// Asserts that `other`'s registry holds exactly what `reference`'s does for `world`.
#[track_caller]
pub fn assert_same_registry(reference: &Store, other: &Store, world: &World, what: &str) {
    for (index, digest) in world.digests.iter().enumerate() {
        assert_eq!(other.registry().lookup(digest), reference.registry().lookup(digest), "{what}: digest {index} ({digest:?})");
    }
    for workspace in &world.workspaces {
        assert_eq!(other.registry().workspace(workspace), reference.registry().workspace(workspace), "{what}: workspace {workspace}");
    }
    assert_eq!(other.registry().live_key_count(), reference.registry().live_key_count(), "{what}: live keys");
}

on_both_databases! {
    async fn a_keys_standing_folds_in_the_key_its_creators_status_and_its_membership(db: TestDatabase) {
        let kim = db.store.create_user(&db.root(), "kim", Role::KeyManager, None).await.unwrap();
        let team = db.store.create_workspace(&db.root(), "team", 20).await.unwrap().workspace_id;
        db.store.add_workspace_member(&db.root(), &team, "kim").await.unwrap();
        let (in_team, _) = create_key_in(&db.store, &db.root(), &team, Some(kim.user_id)).await;
        let (in_default, _) = create_key(&db, &db.root(), Some(kim.user_id)).await;
        let (accounts, _) = create_key_in(&db.store, &db.root(), &team, None).await;
        let standings = |store: &Store| [in_team.api_key_id, in_default.api_key_id, accounts.api_key_id].map(|id| standing(store, id));
        assert_eq!(standings(&db.store), [KeyStanding::Usable; 3]);

        db.store.remove_workspace_member(&db.root(), &team, "kim").await.unwrap();
        assert_eq!(standings(&db.store), [KeyStanding::CreatorNotMember, KeyStanding::Usable, KeyStanding::Usable], "the account's key has no creator to check");
        db.store.set_user_status(&db.root(), "kim", UserStatus::Disabled).await.unwrap();
        assert_eq!(standings(&db.store), [KeyStanding::CreatorDisabled, KeyStanding::CreatorDisabled, KeyStanding::Usable], "the creator's status before its membership");
        db.store.set_api_key_disabled(&db.root(), in_team.api_key_id, WholeAccount, true).await.unwrap();
        assert_eq!(standings(&db.store)[0], KeyStanding::Disabled, "the key's own state first");
        // A store opened now compiles the same.
        let opened = db.open_another("kg-store-b").await;
        assert_eq!(standings(&opened), standings(&db.store));

        db.store.set_user_status(&db.root(), "kim", UserStatus::Active).await.unwrap();
        db.store.add_workspace_member(&db.root(), &team, "kim").await.unwrap();
        db.store.set_api_key_disabled(&db.root(), in_team.api_key_id, WholeAccount, false).await.unwrap();
        assert_eq!(standings(&db.store), [KeyStanding::Usable; 3]);
    }

    async fn the_fill_at_open_and_catching_up_on_the_feed_compile_what_the_live_updates_made(db: TestDatabase) {
        // Opened before any of it, catching up after each change.
        let behind = db.open_another("kg-store-b").await;
        let world = build_world(&db, Some(&behind)).await;
        let version = db.feed_version().await;
        assert_eq!(db.store.registry().applied_version(), version, "each change is applied at its version");

        let opened = db.open_another("kg-store-c").await;
        assert_eq!(opened.registry().applied_version(), version);
        assert_same_registry(&db.store, &opened, &world, "opened afterwards");
        // Nothing more to read.
        assert_eq!(behind.catch_up(version).await.unwrap(), CatchUp::UpTo(version));
    }

    async fn a_full_load_across_batches_holds_every_key_once_and_each_verifies(db: TestDatabase) {
        // More than two of the loader's 2,000-row batches, the last one partial; every
        // seventh key `Custom`, every eleventh with limits, every thirteenth expiring.
        let workspace = db.default_workspace(SINGAPORE).await;
        let (keys, plaintexts): (Vec<_>, Vec<_>) = (0..4_500)
            .map(|index| {
                let (mut key, plaintext) = new_key(SINGAPORE, &workspace, None, KeyFormat::Secure);
                if index % 7 == 0 {
                    key.auth = KeyAuth::Custom(Box::new(CustomPermissions {
                        access_ips: IpAllowlist::parse(&["10.0.0.0/8".to_string(), "2001:db8::1".to_string()]).unwrap(),
                        model_scope: ModelScope { allow_all_models: false, accessible_models: vec!["qwen-plus".into()] },
                        app_scope: AppScope { allow_all_apps: false, accessible_apps: vec!["app-1".into()] },
                    }));
                }
                if index % 11 == 0 {
                    key.limits = Some(KeyLimits {
                        requests_per_minute: Some(60),
                        tokens_per_minute: None,
                        max_in_flight: Some(2),
                        budget: Some(Budget { period: BudgetPeriod::Month, tokens: Some(1_000), cost_micros: None }),
                    });
                }
                if index % 13 == 0 {
                    key.expires_at = Some(now_millis() / 1000 + 86_400);
                }
                (key, plaintext)
            })
            .unzip();
        let digests: Vec<KeyDigest> = keys.iter().map(|key| key.digest).collect();
        let mut records = Vec::new();
        for batch in keys.chunks(1_000) {
            records.extend(db.store.import_api_keys(&db.root(), batch.to_vec(), NO_LIMIT).await.unwrap());
        }

        // Every key verifies by its plaintext on a store that loaded them all at its start,
        // once, and as the live updates compiled it.
        let opened = db.open_another("kg-store-b").await;
        let every_key_verifies = |store: &Store| {
            assert_eq!(store.registry().live_key_count(), 4_500);
            let now = now_millis() / 1000;
            let mut seen = std::collections::HashSet::new();
            for ((record, digest), plaintext) in records.iter().zip(&digests).zip(&plaintexts) {
                let verified = store
                    .registry()
                    .authenticate(plaintext, SINGAPORE, now)
                    .unwrap_or_else(|failure| panic!("key {} did not verify: {failure:?}", record.api_key_id));
                assert_eq!(verified.key_id, record.api_key_id);
                assert!(seen.insert(verified.key_id), "key {} loaded twice", verified.key_id);
                assert_eq!(Some(verified), db.store.registry().lookup(digest), "key {}", record.api_key_id);
                assert_eq!(store.registry().digest_of(record.api_key_id), Some(*digest));
            }
        };
        every_key_verifies(&opened);
        // A resync (a follower's, after a gap) loads the same again.
        opened.resync_registry().await.unwrap();
        every_key_verifies(&opened);
    }

    async fn catching_up_on_many_changes_at_once_compiles_the_same(db: TestDatabase) {
        let behind = db.open_another("kg-store-b").await;
        let world = build_world(&db, None).await;
        let version = db.feed_version().await;
        assert_eq!(behind.catch_up(behind.registry().applied_version()).await.unwrap(), CatchUp::UpTo(version));
        assert_same_registry(&db.store, &behind, &world, "caught up at once");
    }
}
