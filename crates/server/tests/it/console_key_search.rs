//! The console's key list searched and paged through query parameters
//! (docs/CONTRACT.md#console), on both stores: `q` matches a part of the description in any
//! case or the start of the key's id, in the store's query; `size` and `offset` page the
//! matches, Previous and Next keep the search; an empty search result says so.

use crate::console::sign_in;

/// The descriptions of the key rows of a page, in order.
fn descriptions(page: &str) -> Vec<String> {
    page.split("data-label=\"Description\">").skip(1).map(|cell| cell[..cell.find("</td>").unwrap()].to_string()).collect()
}

/// The `href` of the element `id` in a page, unescaped.
fn link(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let after = &page[start..];
    let href = &after[after.find("href=\"")? + 6..];
    Some(href[..href.find('"').unwrap()].replace("&amp;", "&"))
}

on_both_stores! {
    async fn the_key_list_is_searched_and_paged_in_the_store(app: TestApp) {
        let root_api = app.login(None).await;
        let mut ids = Vec::new();
        for index in 1..=12 {
            let description = if index % 3 == 0 { format!("Billing job {index}") } else { format!("web {index}") };
            let created = root_api.create_key(&format!("description={}", description.replace(' ', "%20")), "").await;
            assert_eq!(created.status, 200, "{}", created.body);
            ids.push(created.body["apiKey"]["apiKeyId"].as_i64().unwrap());
        }
        let (root, _) = sign_in(&app, None).await;
        let page = |path: String| {
            let root = &root;
            async move {
                let answer = root.get(&path).await;
                assert_eq!(answer.status(), 200, "{path}");
                answer.text().await.unwrap()
            }
        };

        // A part of the description, in any case; newest first.
        let found = page("/console/keys?region=ap-southeast-1&q=BILLING".into()).await;
        assert_eq!(descriptions(&found), ["Billing job 12", "Billing job 9", "Billing job 6", "Billing job 3"]);
        assert!(found.contains("Keys 1\u{2013}4 of 4"), "{found}");
        assert!(found.contains("id=\"keys-q\" type=\"search\" name=\"q\" value=\"BILLING\""));

        // The start of a key's id.
        let id = ids[4].to_string();
        let by_id = page(format!("/console/keys?region=ap-southeast-1&q={id}")).await;
        assert!(descriptions(&by_id).contains(&"web 5".to_string()), "{by_id}");
        let by_id_rows = by_id.matches("data-key-id=\"").count();
        let expected = ids.iter().filter(|other| other.to_string().starts_with(&id)).count();
        assert_eq!(by_id_rows, expected);

        // Pages of 5: Next and Previous keep the search and the size.
        let first = page("/console/keys?region=ap-southeast-1&q=web&size=10".into()).await;
        assert_eq!(descriptions(&first).len(), 8);
        let first = page("/console/keys?region=ap-southeast-1&size=10".into()).await;
        assert_eq!(descriptions(&first).len(), 10);
        assert!(first.contains("Keys 1\u{2013}10 of 12"));
        assert!(link(&first, "keys-previous").is_none());
        let next = link(&first, "keys-next").expect("a Next link");
        assert_eq!(next, "/console/keys?region=ap-southeast-1&size=10&offset=10");
        let second = page(next).await;
        assert_eq!(descriptions(&second), ["web 2", "web 1"]);
        assert!(second.contains("Keys 11\u{2013}12 of 12") && link(&second, "keys-next").is_none());
        assert_eq!(link(&second, "keys-previous").unwrap(), "/console/keys?region=ap-southeast-1&size=10");

        let searched = page("/console/keys?region=ap-southeast-1&q=web&size=10&offset=5".into()).await;
        assert_eq!(descriptions(&searched), ["web 4", "web 2", "web 1"]);
        assert_eq!(link(&searched, "keys-previous").unwrap(), "/console/keys?region=ap-southeast-1&q=web&size=10");

        // Nothing found: said, and no "how to call" panel (that is for an empty list).
        let none = page("/console/keys?region=ap-southeast-1&q=nothing-like-this".into()).await;
        assert!(none.contains("No API key matches \u{201c}nothing-like-this\u{201d}."), "{none}");
        assert!(!none.contains("id=\"how-to-call\""));
        // A page size the list does not offer falls back to 20.
        let default = page("/console/keys?region=ap-southeast-1&size=7".into()).await;
        assert_eq!(descriptions(&default).len(), 12);
    }
}
