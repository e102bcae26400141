//! Workspaces: one default per account and region (made once), sub-workspaces with unique
//! names, deletion refused for the default one and for one with keys, and the model grants
//! and applications the registry compiles for each.

use keygate_core::access::KeyVisibility::WholeAccount;
use keygate_store::{AuditContext, ModelGrant, StoreError, WorkspaceDeletion};

use crate::support::{assert_not_found, create_key_in, now_millis, SINGAPORE, VIRGINIA};

fn grant(model: &str, inference: bool) -> ModelGrant {
    ModelGrant { model: model.into(), inference, deploy: false, fine_tune: inference }
}

on_both_databases! {
    async fn a_default_workspace_is_read_once_per_store(db: TestDatabase) {
        let singapore = db.store.default_workspace(db.account_id, SINGAPORE).await.unwrap();
        let before = db.store.statements_run();
        assert_eq!(db.store.default_workspace(db.account_id, SINGAPORE).await.unwrap(), singapore);
        assert_eq!(db.store.statements_run(), before, "held after the first read");
        let virginia = db.store.default_workspace(db.account_id, VIRGINIA).await.unwrap();
        assert_ne!(virginia.workspace_id, singapore.workspace_id, "each region has its own");
        assert!(virginia.is_default && virginia.region == VIRGINIA);
        let (other, _) = db.store.ensure_account("other", "hash", now_millis()).await.unwrap();
        assert_not_found(db.store.default_workspace(other.account_id, SINGAPORE).await);
    }

    async fn each_account_has_one_default_workspace_per_region_made_once(db: TestDatabase) {
        let version = db.feed_version().await;
        let singapore = db.store.default_workspace(db.account_id, SINGAPORE).await.unwrap();
        assert!(singapore.is_default && singapore.workspace_id.starts_with("llm-"), "{singapore:?}");
        assert_ne!(singapore.workspace_id, db.default_workspace(VIRGINIA).await);
        // Again: nothing new, no change recorded.
        db.store.ensure_default_workspaces(db.account_id, &[SINGAPORE.to_string(), VIRGINIA.to_string()], now_millis()).await.unwrap();
        assert_eq!(db.store.default_workspace(db.account_id, SINGAPORE).await.unwrap(), singapore);
        assert_eq!(db.feed_version().await, version);
        // A new region gets one; the registry knows it as a default workspace.
        db.store.ensure_default_workspaces(db.account_id, &["eu-central-1".to_string()], now_millis()).await.unwrap();
        let frankfurt = db.default_workspace("eu-central-1").await;
        assert!(db.store.registry().workspace(&frankfurt).is_some_and(|grants| grants.is_default && grants.may_call_model("any-model")));
        assert_eq!(db.feed_version().await, version + 1);
        assert_not_found(db.store.default_workspace(db.account_id, "cn-beijing").await);
    }

    async fn sub_workspaces_are_named_once_per_region_listed_default_first_and_found_by_name(db: TestDatabase) {
        let team = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap();
        assert!(!team.is_default);
        let again = db.store.create_workspace(&db.root(), "team-a", 20).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        db.store.create_workspace(&db.root_in(VIRGINIA), "team-a", 20).await.unwrap();
        let other = db.store.create_workspace(&db.root(), "other_team", 20).await.unwrap();

        let all = db.store.list_workspaces(db.account_id, SINGAPORE, None, None).await.unwrap();
        let mut names: Vec<&str> = all.iter().map(|workspace| workspace.name.as_str()).collect();
        assert_eq!(names[0], "Default workspace");
        // The others by creation (the same millisecond: by id); here, any order.
        names[1..].sort_unstable();
        assert_eq!(names, ["Default workspace", "other_team", "team-a"]);
        let found = db.store.list_workspaces(db.account_id, SINGAPORE, None, Some("team")).await.unwrap();
        assert_eq!(found.len(), 2);
        // Literally: `_` is not a wildcard.
        let found = db.store.list_workspaces(db.account_id, SINGAPORE, None, Some("r_t")).await.unwrap();
        assert_eq!(found, std::slice::from_ref(&other));
        let by_id = db.store.list_workspaces(db.account_id, SINGAPORE, Some(&team.workspace_id), None).await.unwrap();
        assert_eq!(by_id, std::slice::from_ref(&team));
        assert_eq!(db.store.get_workspace(db.account_id, SINGAPORE, &team.workspace_id).await.unwrap(), team);
        assert_not_found(db.store.get_workspace(db.account_id, VIRGINIA, &team.workspace_id).await);
    }

    async fn the_default_workspace_and_one_with_keys_are_not_deleted(db: TestDatabase) {
        let default = db.default_workspace(SINGAPORE).await;
        let team = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap().workspace_id;
        let (key, _) = create_key_in(&db.store, &db.root(), &team, None).await;
        let audit_rows = db.audit_count().await;

        let WorkspaceDeletion::Refused(reasons) = db.store.delete_workspace(&db.root(), &default).await.unwrap() else { panic!("deleted the default workspace") };
        assert_eq!(reasons, [("The default workspace cannot be deleted.".to_string(), "Workspace".to_string())]);
        let WorkspaceDeletion::Refused(reasons) = db.store.delete_workspace(&db.root(), &team).await.unwrap() else { panic!("deleted a workspace with a key") };
        assert_eq!(reasons, [("The workspace still has 1 API key(s); delete them first.".to_string(), "ApiKey".to_string())]);
        assert_eq!(db.audit_count().await, audit_rows, "a refusal is not audited");
        assert!(db.store.registry().workspace(&team).is_some());

        db.store.delete_api_key(&db.root(), key.api_key_id, WholeAccount).await.unwrap();
        assert_eq!(db.store.delete_workspace(&db.root(), &team).await.unwrap(), WorkspaceDeletion::Deleted);
        assert!(db.store.registry().workspace(&team).is_none(), "gone from the registry at once");
        assert_not_found(db.store.get_workspace(db.account_id, SINGAPORE, &team).await);
        assert_not_found(db.store.delete_workspace(&db.root(), &team).await);
    }

    async fn model_grants_and_applications_reach_the_registry_as_soon_as_they_are_written(db: TestDatabase) {
        let team = db.store.create_workspace(&db.root(), "team-a", 20).await.unwrap().workspace_id;
        let compiled = db.store.registry().workspace(&team).expect("a new workspace is compiled");
        assert!(!compiled.may_call_model("qwen-plus") && compiled.applications.is_empty(), "{compiled:?}");

        db.store.update_model_grants(&db.root(), &team, &[grant("qwen-plus", true), grant("qwen-max", false)]).await.unwrap();
        let compiled = db.store.registry().workspace(&team).unwrap();
        assert!(compiled.may_call_model("qwen-plus") && !compiled.may_call_model("qwen-max"), "{compiled:?}");
        // Only the models named change.
        db.store.update_model_grants(&db.root(), &team, &[grant("qwen-max", true)]).await.unwrap();
        assert_eq!(db.store.registry().workspace(&team).unwrap().inference_models, ["qwen-max", "qwen-plus"]);
        assert_eq!(db.store.list_model_grants(&team).await.unwrap(), [grant("qwen-max", true), grant("qwen-plus", true)]);
        db.store.update_model_grants(&db.root(), &team, &[grant("qwen-plus", false)]).await.unwrap();
        assert_eq!(db.store.registry().workspace(&team).unwrap().inference_models, ["qwen-max"]);

        // Listed in the order they were made: app-b a second before app-a (two creates in
        // the same millisecond would be listed by id).
        let a_second_earlier = AuditContext { at: db.root().at - 1000, ..db.root() };
        db.store.create_application(&a_second_earlier, &team, "app-b", "second").await.unwrap();
        db.store.create_application(&db.root(), &team, "app-a", "first").await.unwrap();
        let again = db.store.create_application(&db.root(), &team, "app-a", "again").await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let compiled = db.store.registry().workspace(&team).unwrap();
        assert!(compiled.owns_application("app-a") && compiled.owns_application("app-b") && !compiled.owns_application("app-c"));
        let listed = db.store.list_applications(&team).await.unwrap();
        assert_eq!(listed, [("app-b".to_string(), "second".to_string()), ("app-a".to_string(), "first".to_string())]);
    }
}
