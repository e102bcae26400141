//! The console's audit page filtered by actor, action, API key and UTC days through query
//! parameters (docs/CONTRACT.md#console), on both stores: the store applies each filter,
//! they combine, a bad value answers 400 with the field marked, and paging keeps them.

use keygate_core::civil_time::parse_utc_timestamp;

use crate::console::sign_in;

/// `html` without its tags.
fn without_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' => in_tag = false,
            other if !in_tag => text.push(other),
            _ => {}
        }
    }
    text
}

/// The rows of the audit table as (who, action, target).
fn rows(page: &str) -> Vec<(String, String, String)> {
    let cell = |row: &str, label: &str| {
        let start = row.find(&format!("data-label=\"{label}\">")).unwrap() + label.len() + 14;
        let text = &row[start..];
        without_tags(&text[..text.find("</td>").unwrap()])
    };
    let Some(body) = page.split("<tbody>").nth(1) else { return Vec::new() };
    body.split("<tr>").skip(1).map(|row| (cell(row, "Who"), cell(row, "Action"), cell(row, "Target"))).collect()
}

on_both_stores! {
    async fn the_audit_page_filters_in_the_store(app: TestApp) {
        let store = app.state.store();
        let at = |text: &str| parse_utc_timestamp(text).unwrap() * 1000;
        for (actor, action, target, when) in [
            ("alice@root", "ApiKey.Create", "apiKey:7", "2026-03-01T10:00:00Z"),
            ("alice@root", "ApiKey.Delete", "apiKey:7", "2026-03-02T10:00:00Z"),
            ("bob@root", "ApiKey.Create", "apiKey:8", "2026-03-02T11:00:00Z"),
            ("root", "Workspace.Create", "workspace:ws-1", "2026-03-03T09:00:00Z"),
        ] {
            let context = keygate_store::AuditContext { actor: actor.into(), at: at(when), ..app.root_audit() };
            store.record_audit(&context, action, target, "").await.unwrap();
        }
        let (root, _) = sign_in(&app, None).await;
        let audit = |query: &'static str| {
            let root = &root;
            async move {
                let answer = root.get(&format!("/console/audit?region=ap-southeast-1{query}")).await;
                (answer.status().as_u16(), answer.text().await.unwrap())
            }
        };
        let row = |who: &str, action: &str, target: &str| (who.to_string(), action.to_string(), target.to_string());

        let (status, page) = audit("&actor=ALICE").await;
        assert_eq!(status, 200);
        assert_eq!(rows(&page), [row("alice@root", "ApiKey.Delete", "apiKey:7"), row("alice@root", "ApiKey.Create", "apiKey:7")]);
        assert!(page.contains("id=\"audit-actor\" type=\"text\" name=\"actor\" value=\"ALICE\""), "the form keeps the filter");

        let (_, page) = audit("&action=create&key=8").await;
        assert_eq!(rows(&page), [row("bob@root", "ApiKey.Create", "apiKey:8")]);

        // Days are UTC and `to` is included.
        let (_, page) = audit("&from=2026-03-02&to=2026-03-02").await;
        assert_eq!(rows(&page), [row("bob@root", "ApiKey.Create", "apiKey:8"), row("alice@root", "ApiKey.Delete", "apiKey:7")]);
        let (_, page) = audit("&from=2026-03-03&actor=alice").await;
        assert!(rows(&page).is_empty() && page.contains("No entry matches these filters."), "{page}");

        // A bad value: 400, the field marked, nothing listed.
        let (status, page) = audit("&key=seven&from=2026-02-30").await;
        assert_eq!(status, 400);
        assert!(page.contains("An API key id is a positive whole number.") && page.contains("Enter a day as YYYY-MM-DD."));
        assert!(page.contains("id=\"audit-key\" type=\"text\" name=\"key\" value=\"seven\" aria-invalid=\"true\""), "{page}");
        assert!(rows(&page).is_empty());
    }
}

#[tokio::test]
async fn paging_keeps_the_filters() {
    let app = crate::helpers::spawn_app().await;
    let store = app.state.store();
    for index in 0..105 {
        store.record_audit(&app.root_audit(), "Test.Event", &format!("apiKey:{}", 1000 + index % 2), "").await.unwrap();
    }
    let (root, _) = sign_in(&app, None).await;
    let page = root.get("/console/audit?region=ap-southeast-1&action=test.event").await.text().await.unwrap();
    assert_eq!(rows(&page).len(), 100);
    let older = page.split("href=\"").find(|part| part.contains("&amp;before=")).expect("an Older link");
    let older = older[..older.find('"').unwrap()].replace("&amp;", "&");
    assert!(older.starts_with("/console/audit?region=ap-southeast-1&action=test%2Eevent&before="), "{older}");
    let rest = root.get(&older).await.text().await.unwrap();
    assert_eq!(rows(&rest).len(), 5);
}
