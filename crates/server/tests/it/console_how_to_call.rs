//! The console's "how to call" panel (docs/CONTRACT.md#console), on both stores: each
//! protocol's base URL from the request's host (another region's from its listener), and
//! snippets that call a model the new key may call; on an empty key list; and a key of a
//! sub-workspace without grants told that a model must be granted first.

use crate::console::{shown_key, sign_in};

/// The text of the element `id` (its first text node: a `<code>` or `<pre><code>`).
fn element_text<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id} in {page}"));
    let after = &page[start..];
    let after = &after[after.find('>').unwrap() + 1..];
    let after = after.strip_prefix("<code>").unwrap_or(after);
    &after[..after.find('<').unwrap()]
}

on_both_stores! {
    async fn the_panel_shows_base_urls_and_a_snippet_with_the_new_key(app: TestApp) {
        let (root, _) = sign_in(&app, None).await;
        let origin = format!("http://{}", app.address);

        // No key yet: the panel is on the empty list, for the region of the request.
        let empty = root.get("/console/keys?region=ap-southeast-1").await.text().await.unwrap();
        assert!(empty.contains("No API keys in"), "{empty}");
        assert_eq!(element_text(&empty, "base-url-native"), format!("{origin}/api/v1"));
        assert_eq!(element_text(&empty, "base-url-openai"), format!("{origin}/compatible-mode/v1"));
        assert_eq!(element_text(&empty, "base-url-anthropic"), format!("{origin}/apps/anthropic"));
        assert!(element_text(&empty, "snippet-curl").contains(&format!("curl {origin}/compatible-mode/v1/chat/completions")));

        // Another region's URLs name its own listener.
        let us = root.get("/console/keys?region=us-east-1").await.text().await.unwrap();
        assert_eq!(element_text(&us, "base-url-openai"), format!("http://{}/compatible-mode/v1", app.us_address));

        // A key just made: the panel is in the show-once dialog, its snippets name a model
        // the key may call (here the one its scope names) and read the key from the
        // environment, never repeating it.
        let created = root
            .submit("/console/keys?region=ap-southeast-1", &[("permission", "Custom"), ("model_scope", "selected"), ("model", "qwen-max")])
            .await;
        assert_eq!(created.status(), 200);
        let page = created.text().await.unwrap();
        let plaintext = shown_key(&page);
        assert_eq!(page.matches(&plaintext).count(), 1, "the key is shown once, in its field");
        assert_eq!(element_text(&page, "show-once-base-url-native"), format!("{origin}/api/v1"));
        let curl = element_text(&page, "show-once-snippet-curl");
        assert!(curl.contains("&quot;model&quot;: &quot;qwen-max&quot;") && curl.contains("$DASHSCOPE_API_KEY"), "{curl}");
        let python = element_text(&page, "show-once-snippet-python");
        assert!(python.contains(&format!("base_url=&quot;{origin}/compatible-mode/v1&quot;")) && python.contains("model=&quot;qwen-max&quot;"), "{python}");

        // A key of All in the default workspace: a demo model, which answers without a provider.
        let page = root.submit("/console/keys?region=ap-southeast-1", &[("permission", "All")]).await.text().await.unwrap();
        assert!(element_text(&page, "show-once-snippet-curl").contains("&quot;demo-echo&quot;"));

        // A sub-workspace with no grant: no snippet, but what to do.
        let workspace = app.state.store().create_workspace(&app.root_audit(), "no-grants", 10).await.unwrap();
        let page = root
            .submit("/console/keys?region=ap-southeast-1", &[("permission", "All"), ("workspace", &workspace.workspace_id)])
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("show-once-snippet-curl"));
        assert!(page.contains("No model is granted to the workspace no-grants yet."), "{page}");
        assert!(page.contains("Model access denied") && page.contains("href=\"/console/workspaces?region=ap-southeast-1\""));
    }
}
