//! Granting and revoking a sub-workspace's models on the console's Workspaces page
//! (docs/CONTRACT.md#console), on both stores: each change audited, seen by the gateway at
//! once, a revoke of a model not granted refused, the default workspace refused, and only
//! for the account and admins.

use keygate_core::access::Role;
use reqwest::header::LOCATION;

use crate::console::sign_in;
use crate::helpers::TestApp;

async fn chat_status(app: &TestApp, key: &str, model: &str) -> u16 {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let answer = app
        .http
        .post(format!("http://{}/compatible-mode/v1/chat/completions", app.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer.status().as_u16()
}

on_both_stores! {
    async fn models_are_granted_and_revoked_one_at_a_time(app: TestApp) {
        let workspace = app.state.store().create_workspace(&app.root_audit(), "team-a", 10).await.unwrap();
        let workspace_id = workspace.workspace_id.clone();
        let root_api = app.login(None).await;
        let created = root_api.create_key(&format!("workspaceId={workspace_id}"), "").await;
        let key = created.body["apiKey"]["apiKeyValue"].as_str().unwrap().to_string();
        assert_eq!(chat_status(&app, &key, "demo-echo").await, 403, "nothing granted yet");

        let (root, _) = sign_in(&app, None).await;
        let page = root.get("/console/workspaces?region=ap-southeast-1").await.text().await.unwrap();
        assert!(page.contains("refused (Model access denied) until it is granted here"), "{page}");
        assert!(page.contains(&format!("action=\"/console/workspaces/{workspace_id}/models/grant?region=ap-southeast-1\"")));

        let granted = root.submit(&format!("/console/workspaces/{workspace_id}/models/grant?region=ap-southeast-1"), &[("model", "demo-echo")]).await;
        assert_eq!(granted.status(), 303);
        assert_eq!(granted.headers().get(LOCATION).unwrap(), "/console/workspaces?region=ap-southeast-1&done=model-granted");
        assert_eq!(chat_status(&app, &key, "demo-echo").await, 200);
        let page = root.get("/console/workspaces?region=ap-southeast-1&done=model-granted").await.text().await.unwrap();
        assert!(page.contains("The model was granted"));
        assert!(page.contains("aria-label=\"Revoke demo-echo from team-a\""), "{page}");

        let revoked = root.submit(&format!("/console/workspaces/{workspace_id}/models/revoke?region=ap-southeast-1"), &[("model", "demo-echo")]).await;
        assert_eq!(revoked.status(), 303);
        assert_eq!(revoked.headers().get(LOCATION).unwrap(), "/console/workspaces?region=ap-southeast-1&done=model-revoked");
        assert_eq!(chat_status(&app, &key, "demo-echo").await, 403, "revoked at once");

        // Both changes are in the audit log, who and what.
        let audit = app.state.store().list_audit(1, 10, None).await.unwrap();
        let grants: Vec<(&str, &str)> = audit
            .iter()
            .filter(|record| record.action == "Workspace.UpdateModelPermissions")
            .map(|record| (record.actor.as_str(), record.detail.as_str()))
            .collect();
        assert_eq!(grants, [("root", "demo-echo:inference=false"), ("root", "demo-echo:inference=true")]);

        // Revoking what is not granted, or any model of the default workspace, is refused.
        let again = root.submit(&format!("/console/workspaces/{workspace_id}/models/revoke?region=ap-southeast-1"), &[("model", "demo-echo")]).await;
        assert_eq!(again.status(), 400);
        let text = again.text().await.unwrap();
        assert!(text.contains("The model 'demo-echo' is not granted to the workspace team-a."), "{text}");
        let unknown = root.submit(&format!("/console/workspaces/{workspace_id}/models/grant?region=ap-southeast-1"), &[("model", "no-such-model")]).await;
        assert_eq!(unknown.status(), 400);
        let default_id = app.state.store().default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id;
        let default = root.submit(&format!("/console/workspaces/{default_id}/models/revoke?region=ap-southeast-1"), &[("model", "demo-echo")]).await;
        assert_eq!(default.status(), 400);

        // A key-manager may not.
        app.create_user("kim", Role::KeyManager).await;
        let (manager, _) = sign_in(&app, Some("kim")).await;
        let refused = manager.submit(&format!("/console/workspaces/{workspace_id}/models/grant?region=ap-southeast-1"), &[("model", "demo-echo")]).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(chat_status(&app, &key, "demo-echo").await, 403);
    }
}
