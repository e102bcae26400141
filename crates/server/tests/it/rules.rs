//! The rules of docs/CONTRACT.md#api-key-rules, one test per rule (`rule_1_` is its first),
//! through the Model Studio API of a real server on both stores. What the store does on its
//! own (the keys of a disabled, deleted or removed RAM user, the account that cannot be
//! deleted, the audit rows of changes made on the store directly, the revocation bound) is
//! tested in the store's tests (`crates/store/tests/it`); what a model call then meets, in
//! `gateway_revocation.rs`.

use std::collections::BTreeSet;

use keygate_core::access::{Role, UserStatus};
use keygate_core::keys::mask_key;
use keygate_core::verification::AuthenticationFailure;
use keygate_store::AuditRecord;
use serde_json::json;

use crate::expectations::{
    assert_error, assert_key_not_found, assert_success, authenticate, create_workspace, get_key, key_as_seen_by, key_count, listed_key_ids,
};
use crate::helpers::{Answer, Client, Credentials, TestApp};

const SINGAPORE: &str = "ap-southeast-1";
const VIRGINIA: &str = "us-east-1";
const QUOTA_OF_50: &str = "The API key limit of this region (50) is reached; delete a key first.";
const QUOTA_OF_20: &str = "The API key limit of this region (20) is reached; delete a key first.";
const NO_CUSTOM_IN_VIRGINIA: &str = "Custom permissions are not supported in region us-east-1 (US (Virginia)); use auth.type=All.";

fn created_id(answer: &Answer) -> i64 {
    assert_success(answer);
    answer.body["apiKey"]["apiKeyId"].as_i64().expect("apiKeyId")
}

async fn put(client: &Client, key_id: i64, operation: &str) -> Answer {
    client.send("PUT", &format!("/modelstudio/apikeys/{key_id}/{operation}"), "").await
}

async fn delete(client: &Client, key_id: i64) -> Answer {
    client.send("DELETE", &format!("/modelstudio/apikeys/{key_id}"), "").await
}

async fn add_users(app: &TestApp, users: &[(&str, Role)]) {
    for (name, role) in users {
        app.create_user(name, *role).await;
    }
}

/// The one audit entry with this action and target.
#[track_caller]
fn entry<'a>(log: &'a [AuditRecord], action: &str, target: &str) -> &'a AuditRecord {
    let matching: Vec<&AuditRecord> = log.iter().filter(|record| record.action == action && record.target == target).collect();
    assert_eq!(matching.len(), 1, "{action} {target} in {log:#?}");
    matching[0]
}

on_both_stores! {
    async fn rule_1_creating_needs_the_account_or_an_active_admin_or_key_manager_member_of_the_workspace(app: TestApp) {
        add_users(&app, &[("ada", Role::Admin), ("kim", Role::KeyManager), ("mo", Role::Member)]).await;
        let root = app.login(None).await;
        let ada = app.login(Some("ada")).await;
        let kim = app.access_key_client_at(app.address, Some("kim")).await;
        let mo = app.login(Some("mo")).await;
        let workspace = create_workspace(&root, "team-a").await;
        let in_workspace = format!("workspaceId={workspace}");

        // The account may create anywhere; admins and key-managers in the default workspace,
        // of which every user is a member.
        created_id(&root.create_key("", "").await);
        created_id(&root.create_key(&in_workspace, "").await);
        created_id(&ada.create_key("", "").await);
        created_id(&kim.create_key("", "").await);
        assert_eq!(key_count(&root).await, 4);

        // Not in a sub-workspace they do not belong to ...
        for client in [&ada, &kim] {
            assert_error(&client.create_key(&in_workspace, "").await, 403, "Forbidden", "you are not a member of this workspace");
        }
        assert_eq!(key_count(&root).await, 4);
        // ... until they are added to it.
        for name in ["ada", "kim"] {
            app.state.store().add_workspace_member(&app.root_audit(), &workspace, name).await.unwrap();
        }
        for client in [&ada, &kim] {
            let created = client.create_key(&in_workspace, "").await;
            created_id(&created);
            assert_eq!(created.body["apiKey"]["workspaceId"], json!(workspace));
        }
        assert_eq!(key_count(&root).await, 6);

        // A member may not create keys, not even in a workspace it belongs to.
        app.state.store().add_workspace_member(&app.root_audit(), &workspace, "mo").await.unwrap();
        for query in ["", in_workspace.as_str()] {
            assert_error(
                &mo.create_key(query, "").await,
                403,
                "Forbidden",
                "RAM users with the member role may not create API keys; ask an admin for the key-manager role",
            );
        }

        // A disabled key-manager is refused, until enabled again.
        app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Disabled).await.unwrap();
        assert_error(&kim.create_key("", "").await, 403, "Forbidden", "This RAM user is disabled.");
        assert_eq!(key_count(&root).await, 6);
        app.state.store().set_user_status(&app.root_audit(), "kim", UserStatus::Active).await.unwrap();
        created_id(&kim.create_key("", "").await);
        assert_eq!(key_count(&root).await, 7);
    }

    async fn rule_2_the_limit_is_checked_atomically_100_concurrent_creates_make_exactly_50_keys(app: TestApp) {
        let root = app.login(None).await;
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let client = root.clone();
                tokio::spawn(async move { client.create_key("", "").await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("create task"));
        }
        let (created, refused): (Vec<Answer>, Vec<Answer>) = answers.into_iter().partition(|answer| answer.status == 200);
        let created_ids: BTreeSet<i64> = created.iter().map(created_id).collect();
        assert_eq!((created.len(), created_ids.len(), refused.len()), (50, 50, 50));
        for answer in &refused {
            assert_error(answer, 400, "QuotaExceeded.ApiKey", QUOTA_OF_50);
        }
        assert_eq!(key_count(&root).await, 50);

        // Disabled keys count; a deleted one frees a place.
        let first = *created_ids.first().unwrap();
        assert_success(&put(&root, first, "disable").await);
        assert_error(&root.create_key("", "").await, 400, "QuotaExceeded.ApiKey", QUOTA_OF_50);
        assert_success(&delete(&root, first).await);
        created_id(&root.create_key("", "").await);
        assert_error(&root.create_key("", "").await, 400, "QuotaExceeded.ApiKey", QUOTA_OF_50);
        assert_eq!(key_count(&root).await, 50);
    }

    async fn rule_2_in_us_east_1_each_owner_has_its_own_20_keys(app: TestApp) {
        app.create_user("kim", Role::KeyManager).await;
        let root = app.login_at(app.us_address, None).await;
        let kim = app.login_at(app.us_address, Some("kim")).await;

        assert_error(&kim.create_key("", "auth.type=Custom").await, 400, "InvalidParameter", NO_CUSTOM_IN_VIRGINIA);
        for _ in 0..20 {
            let (_, plaintext) = root.create_all_key().await;
            // Classic format: sk- and 32 lowercase hex characters.
            let body = plaintext.strip_prefix("sk-").expect("sk- prefix");
            assert!(body.len() == 32 && body.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)), "{plaintext}");
        }
        assert_error(&root.create_key("", "").await, 400, "QuotaExceeded.ApiKey", QUOTA_OF_20);

        // The account's 20 do not count against the key-manager's own 20.
        for _ in 0..20 {
            kim.create_all_key().await;
        }
        assert_error(&kim.create_key("", "").await, 400, "QuotaExceeded.ApiKey", QUOTA_OF_20);
        assert_eq!(key_count(&root).await, 40);
        assert_eq!(key_count(&kim).await, 20);
        // The keys are in us-east-1 only.
        assert_eq!(key_count(&app.login(None).await).await, 0);
    }

    async fn rule_3_custom_in_a_region_without_custom_permissions_is_refused_and_creates_nothing(app: TestApp) {
        let root = app.login_at(app.us_address, None).await;
        let (key_id, _) = root.create_all_key().await;
        let before = key_as_seen_by(&root, key_id).await;

        for body in [
            "auth.type=Custom",
            "auth.type=Custom&auth.accessIps.1=10.0.0.1",
            "auth.type=custom&auth.modelAccessScope.allowAllModels=False&auth.modelAccessScope.accessibleModels.1=qwen-plus",
        ] {
            assert_error(&root.create_key("description=custom", body).await, 400, "InvalidParameter", NO_CUSTOM_IN_VIRGINIA);
            let edit = root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=edited"), body).await;
            assert_error(&edit, 400, "InvalidParameter", NO_CUSTOM_IN_VIRGINIA);
        }
        assert_eq!(key_count(&root).await, 1);
        assert_eq!(key_as_seen_by(&root, key_id).await, before);

        // The same request is fine where custom permissions exist.
        let singapore = app.login(None).await;
        created_id(&singapore.create_key("", "auth.type=Custom&auth.accessIps.1=10.0.0.1").await);
    }

    async fn rule_4_the_account_sees_every_key_a_ram_user_only_its_own_whatever_its_role(app: TestApp) {
        add_users(&app, &[("ada", Role::Admin), ("kim", Role::KeyManager), ("mo", Role::Member)]).await;
        let root = app.login(None).await;
        let ada = app.login(Some("ada")).await;
        let kim = app.login(Some("kim")).await;
        let mo = app.login(Some("mo")).await;
        let (root_key, _) = root.create_all_key().await;
        let (ada_first, _) = ada.create_all_key().await;
        let (ada_second, _) = ada.create_all_key().await;
        let (kim_key, _) = kim.create_all_key().await;

        assert_eq!(listed_key_ids(&root).await, [root_key, ada_first, ada_second, kim_key]);
        assert_eq!(listed_key_ids(&ada).await, [ada_first, ada_second]);
        assert_eq!(listed_key_ids(&kim).await, [kim_key]);
        assert_eq!(listed_key_ids(&mo).await, Vec::<i64>::new());
        for key_id in [root_key, ada_first, ada_second, kim_key] {
            assert_success(&get_key(&root, key_id).await);
        }
        // Another's key answers 404 whatever the role, admin included: never 403.
        for (client, hidden) in [
            (&ada, vec![root_key, kim_key]),
            (&kim, vec![root_key, ada_first, ada_second]),
            (&mo, vec![root_key, ada_first, ada_second, kim_key]),
        ] {
            for key_id in hidden {
                assert_key_not_found(&get_key(client, key_id).await);
            }
        }
        assert_eq!(key_as_seen_by(&ada, ada_first).await["createdBy"], json!("ada"));
    }

    async fn rule_5_disable_and_enable_change_what_get_shows_and_what_authenticates(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, plaintext) = root.create_all_key().await;
        assert_eq!(key_as_seen_by(&root, key_id).await["disabled"], json!(0));

        assert_success(&put(&root, key_id, "disable").await);
        assert_eq!(key_as_seen_by(&root, key_id).await["disabled"], json!(1));
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::Disabled));

        assert_success(&put(&root, key_id, "enable").await);
        assert_eq!(key_as_seen_by(&root, key_id).await["disabled"], json!(0));
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Ok(key_id));
    }

    async fn rule_5_edit_changes_the_description_and_the_permissions(app: TestApp) {
        let root = app.login(None).await;
        let created = root.create_key("description=first", "").await;
        let key_id = created_id(&created);
        let before = key_as_seen_by(&root, key_id).await;
        assert_eq!(before["description"], json!("first"));

        let custom = "auth.type=Custom&auth.accessIps.1=10.1.2.3%2F8&auth.accessIps.2=192.168.1.1&auth.modelAccessScope.allowAllModels=False&auth.modelAccessScope.accessibleModels.1=qwen-plus&auth.modelAccessScope.accessibleModels.2=qwen-max";
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=second+text"), custom).await);
        let edited = key_as_seen_by(&root, key_id).await;
        assert_eq!(edited["description"], json!("second text"));
        assert_eq!(
            edited["auth"],
            json!({
                "type": "Custom",
                "accessIps": ["10.0.0.0/8", "192.168.1.1"],
                "modelAccessScope": {"allowAllModels": false, "accessibleModels": ["qwen-max", "qwen-plus"]},
                "appAccessScope": {"allowAllApps": true, "accessibleApps": []},
            })
        );

        // A description alone leaves the permissions as they are; auth alone the description.
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=third"), "").await);
        assert_eq!(key_as_seen_by(&root, key_id).await["auth"], edited["auth"]);
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}"), "auth.type=All").await);
        let last = key_as_seen_by(&root, key_id).await;
        assert_eq!((&last["description"], &last["auth"]["type"]), (&json!("third"), &json!("All")));
        // Identity fields never change on edit.
        for field in ["apiKeyId", "apiKeyValue", "createdBy", "gmtCreate", "workspaceId"] {
            assert_eq!(last[field], before[field], "{field}");
        }
    }

    async fn rule_5_reset_gives_a_new_secret_for_the_same_id_and_the_old_one_stops_at_once(app: TestApp) {
        let root = app.login(None).await;
        let (key_id, old_plaintext) = root.create_all_key().await;
        assert_eq!(key_as_seen_by(&root, key_id).await["apiKeyValue"], json!(mask_key(&old_plaintext)));

        let reset = put(&root, key_id, "reset").await;
        assert_success(&reset);
        assert_eq!(reset.body["apiKey"]["apiKeyId"], json!(key_id));
        let new_plaintext = reset.body["apiKey"]["apiKeyValue"].as_str().expect("new plaintext").to_string();
        assert!(new_plaintext.starts_with("sk-ws-") && new_plaintext != old_plaintext, "{new_plaintext}");

        assert_eq!(authenticate(&app, &old_plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        assert_eq!(authenticate(&app, &new_plaintext, SINGAPORE), Ok(key_id));
        assert_eq!(key_as_seen_by(&root, key_id).await["apiKeyValue"], json!(mask_key(&new_plaintext)));
        assert_eq!(key_count(&root).await, 1);
    }

    async fn rule_5_delete_is_final_and_ids_are_never_reused(app: TestApp) {
        let root = app.login(None).await;
        let (kept, _) = root.create_all_key().await;
        let (deleted, plaintext) = root.create_all_key().await;

        assert_success(&delete(&root, deleted).await);
        assert_key_not_found(&get_key(&root, deleted).await);
        assert_eq!(authenticate(&app, &plaintext, SINGAPORE), Err(AuthenticationFailure::Unknown));
        // Nothing brings it back.
        for operation in ["enable", "disable", "reset"] {
            assert_key_not_found(&put(&root, deleted, operation).await);
        }
        assert_key_not_found(&delete(&root, deleted).await);
        assert_eq!(listed_key_ids(&root).await, [kept]);

        // The deleted key had the largest id; the next key still gets a larger one.
        let (next, _) = root.create_all_key().await;
        assert!(next > deleted, "id {next} after deleting {deleted}");
    }

    async fn rule_5_disable_and_reset_answer_400_in_us_east_1(app: TestApp) {
        let root = app.login_at(app.us_address, None).await;
        let (key_id, plaintext) = root.create_all_key().await;
        let before = key_as_seen_by(&root, key_id).await;

        assert_error(&put(&root, key_id, "disable").await, 400, "UnsupportedOperation", "DisableApiKey is not supported in region us-east-1.");
        assert_error(&put(&root, key_id, "reset").await, 400, "UnsupportedOperation", "ResetApiKey is not supported in region us-east-1.");
        assert_eq!(key_as_seen_by(&root, key_id).await, before);
        assert_eq!(authenticate(&app, &plaintext, VIRGINIA), Ok(key_id));

        // Edit and delete work there.
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=renamed"), "").await);
        assert_eq!(key_as_seen_by(&root, key_id).await["description"], json!("renamed"));
        assert_success(&delete(&root, key_id).await);
        assert_eq!(authenticate(&app, &plaintext, VIRGINIA), Err(AuthenticationFailure::Unknown));
    }

    async fn rule_6_a_user_removed_from_a_workspace_can_no_longer_create_keys_there(app: TestApp) {
        app.create_user("kim", Role::KeyManager).await;
        let root = app.login(None).await;
        let workspace = create_workspace(&root, "team-a").await;
        app.state.store().add_workspace_member(&app.root_audit(), &workspace, "kim").await.unwrap();
        let kim = app.login(Some("kim")).await;
        created_id(&kim.create_key(&format!("workspaceId={workspace}"), "").await);

        app.state.store().remove_workspace_member(&app.root_audit(), &workspace, "kim").await.unwrap();
        assert_error(
            &kim.create_key(&format!("workspaceId={workspace}"), "").await,
            403,
            "Forbidden",
            "you are not a member of this workspace",
        );
        // In the default workspace it still may.
        created_id(&kim.create_key("", "").await);
    }

    async fn rule_7_every_change_through_the_api_is_audited_with_who_what_when_and_where_and_never_a_plaintext(app: TestApp) {
        let started = app.state.shared.clock.now_milliseconds();
        app.create_user("ada", Role::Admin).await;
        let root = app.login(None).await;
        let ada = app.login(Some("ada")).await;

        let (key_id, created_plaintext) = root.create_all_key().await;
        assert_success(&root.send("PUT", &format!("/modelstudio/apikeys/{key_id}?description=edited"), "").await);
        assert_success(&put(&root, key_id, "disable").await);
        assert_success(&put(&root, key_id, "enable").await);
        let reset = put(&root, key_id, "reset").await;
        assert_success(&reset);
        let reset_plaintext = reset.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
        assert_success(&delete(&root, key_id).await);
        let (ada_key, ada_plaintext) = ada.create_all_key().await;

        let workspace = create_workspace(&root, "team-a").await;
        assert_success(
            &root
                .send(
                    "POST",
                    "/modelstudio/models/permissions",
                    &format!("workspaceId={workspace}&models.1.model=qwen-plus&models.1.inference=true"),
                )
                .await,
        );
        assert_success(&root.send("DELETE", &format!("/modelstudio/workspaces/{workspace}"), "").await);

        let log = app.state.store().list_audit(1, 100, None).await.unwrap();
        let key_target = format!("apiKey:{key_id}");
        let workspace_target = format!("workspace:{workspace}");
        let expected = [
            ("ApiKey.Create", key_target.as_str(), "root", "127.0.0.1"),
            ("ApiKey.Update", &key_target, "root", "127.0.0.1"),
            ("ApiKey.Disable", &key_target, "root", "127.0.0.1"),
            ("ApiKey.Enable", &key_target, "root", "127.0.0.1"),
            ("ApiKey.Reset", &key_target, "root", "127.0.0.1"),
            ("ApiKey.Delete", &key_target, "root", "127.0.0.1"),
            ("ApiKey.Create", &format!("apiKey:{ada_key}"), "ada@root", "127.0.0.1"),
            ("Workspace.Create", &workspace_target, "root", "127.0.0.1"),
            ("Workspace.UpdateModelPermissions", &workspace_target, "root", "127.0.0.1"),
            ("Workspace.Delete", &workspace_target, "root", "127.0.0.1"),
        ];
        let mut previous_id = 0;
        for (action, target, actor, client_address) in expected {
            let record = entry(&log, action, target);
            assert_eq!(
                (record.actor.as_str(), record.client_address.as_str(), record.region.as_str()),
                (actor, client_address, SINGAPORE),
                "{record:?}"
            );
            assert!(record.at >= started, "{record:?}");
            // In the order the changes were made.
            assert!(record.audit_id > previous_id, "{record:?}");
            previous_id = record.audit_id;
        }

        let Credentials::Session(session_token) = &root.credentials else { panic!("a session client") };
        for secret in [created_plaintext.as_str(), reset_plaintext.as_str(), ada_plaintext.as_str(), session_token.as_str()] {
            for record in &log {
                let fields = [&record.actor, &record.action, &record.target, &record.detail, &record.client_address, &record.region];
                assert!(fields.iter().all(|field| !field.contains(secret)), "a secret in {record:?}");
            }
        }
    }
}
