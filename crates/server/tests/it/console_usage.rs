//! The console's Usage page and each key's usage panel over plain HTTP: the numbers of
//! usage stored directly, per range; user text (model names, descriptions) escaped in the
//! charts; a RAM user's view, which holds only its own keys; the empty state; and the
//! pages' Content-Security-Policy, the console's own.

use keygate_core::access::Role;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::keys::mask_key;
use keygate_server::console::CONTENT_SECURITY_POLICY_VALUE;
use reqwest::header::CONTENT_SECURITY_POLICY;

use crate::billing::{delta, two_keys, Scene};
use crate::console::{sign_in, Session};
use crate::helpers::{price_demo_models, spawn_app_with};

/// A model name a provider could report, written to break out of markup.
const HOSTILE_MODEL: &str = "qwen<script>alert(1)</script>";
const HOSTILE_MODEL_ESCAPED: &str = "qwen&lt;script&gt;alert(1)&lt;/script&gt;";

/// [`two_keys`] with A described `<b>mine</b>`, and usage stored directly: A on demo-echo
/// (1 and 2 USD per million tokens) 3 calls, 1,200 input and 300 output tokens two hours
/// ago and one call of 1,000,000 input tokens ten days ago; B on an unpriced model with a
/// hostile name, 2 calls, 40 and 10 tokens an hour ago.
async fn scene() -> Scene {
    let scene = two_keys(spawn_app_with(price_demo_models).await, "description=%3Cb%3Emine%3C%2Fb%3E").await;
    let now = scene.app.state.shared.clock.now_seconds();
    let ago = |seconds: i64| {
        let minute = now - seconds;
        format_utc_timestamp(minute - minute.rem_euclid(60))
    };
    let (key_a, key_b, workspace) = (scene.key_a, scene.key_b, &scene.workspace);
    let mut recent_a = delta(key_a, workspace, "demo-echo", &ago(2 * 3600), 1_200, 300);
    recent_a.totals.requests = 3;
    let old_a = delta(key_a, workspace, "demo-echo", &ago(10 * 86_400), 1_000_000, 0);
    let mut recent_b = delta(key_b, workspace, HOSTILE_MODEL, &ago(3600), 40, 10);
    recent_b.totals.requests = 2;
    scene.app.state.store().add_token_usage(&[recent_a, old_a, recent_b]).await.unwrap();
    scene
}

/// A page's body after checking that it answered 200 with the console's own policy.
async fn page_text(session: &Session, path: &str) -> String {
    let answer = session.get(path).await;
    assert_eq!(answer.status(), 200, "{path}");
    assert_eq!(answer.headers().get(CONTENT_SECURITY_POLICY).unwrap(), CONTENT_SECURITY_POLICY_VALUE, "{path}");
    let text = answer.text().await.unwrap();
    assert!(!text.contains("style="), "{path}: the policy allows no inline style");
    text
}

/// The `<dd>` of figure `name` in the figures list `id`.
fn figure<'a>(page: &'a str, id: &str, name: &str) -> &'a str {
    let list = &page[page.find(&format!("<dl class=\"figures\" id=\"{id}\">")).unwrap_or_else(|| panic!("no figures {id}"))..];
    let start = list.find(&format!("<dt>{name}</dt><dd>")).unwrap_or_else(|| panic!("no figure {name} in {id}")) + name.len() + 13;
    &list[start..start + list[start..].find("</dd>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_page_draws_the_callers_usage() {
    let scene = scene().await;
    let (root, _) = sign_in(&scene.app, None).await;

    let day = page_text(&root, "/console/usage?region=ap-southeast-1&range=24h").await;
    assert!(day.contains(r#"<a href="/console/usage?region=ap-southeast-1" aria-current="page">Usage</a>"#), "the navigation leads here");
    assert!(day.contains(r#"href="/console/usage?region=ap-southeast-1&amp;range=24h" aria-current="page">Last 24 hours</a>"#));
    assert_eq!(figure(&day, "usage-totals", "Requests"), "5");
    assert_eq!(figure(&day, "usage-totals", "Input tokens"), "1,240");
    assert_eq!(figure(&day, "usage-totals", "Output tokens"), "310");
    // 1,200 input at 1 and 300 output at 2 per million; the hostile model has no price.
    assert_eq!(figure(&day, "usage-totals", "Cost"), "0.001800 USD");
    assert!(day.contains(&format!("The cost leaves out the usage of {HOSTILE_MODEL_ESCAPED}, which has no price")));
    // Four charts, each an image with its title and description, and hourly columns.
    for id in ["usage-tokens", "usage-requests", "top-keys", "top-models"] {
        assert!(day.contains(&format!(r#"role="img" aria-labelledby="{id}-title {id}-desc""#)), "{id}");
    }
    assert!(day.contains("Tokens over time from "));
    assert!(day.contains("In all: Input 1,240 tokens, Output 310 tokens."));
    assert!(day.contains("In all: Requests 5 requests."));
    assert_eq!(day.matches(r#"<td data-label="Hour (UTC)">"#).count(), 48, "24 hours in each chart over time");
    // The top keys name the keys, link their pages, and escape their descriptions.
    let link_a = format!(
        r#"<a href="/console/keys/{}?region=ap-southeast-1">{} · &lt;b&gt;mine&lt;/b&gt;</a>"#,
        scene.key_a,
        mask_key(&scene.plaintext_a)
    );
    assert!(day.contains(&link_a), "{day}");
    assert!(day.contains(&format!(r#">{}</a></td><td class="number" data-label="Tokens">50</td>"#, mask_key(&scene.plaintext_b))));
    // Model names are escaped wherever they are drawn.
    assert!(day.contains(r#"<td data-label="Model">demo-echo</td><td class="number" data-label="Tokens">1,500</td>"#));
    assert!(day.contains(&format!(r#"<td data-label="Model">{HOSTILE_MODEL_ESCAPED}</td>"#)));
    assert!(!day.contains("<script>alert") && !day.contains("<b>mine"));

    // Thirty days hold the call of ten days ago, seven do not.
    let month = page_text(&root, "/console/usage?region=ap-southeast-1&range=30d").await;
    assert_eq!(figure(&month, "usage-totals", "Requests"), "6");
    assert_eq!(figure(&month, "usage-totals", "Input tokens"), "1,001,240");
    assert_eq!(figure(&month, "usage-totals", "Cost"), "1.001800 USD");
    assert_eq!(month.matches(r#"<td data-label="Day (UTC)">"#).count(), 60);
    let week = page_text(&root, "/console/usage?region=ap-southeast-1").await;
    assert!(week.contains(r#"aria-current="page">Last 7 days</a>"#), "seven days unless asked");
    assert_eq!(figure(&week, "usage-totals", "Requests"), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ram_user_sees_only_its_own_keys_usage() {
    let scene = scene().await;
    let (kim, _) = sign_in(&scene.app, Some("kim")).await;
    let page = page_text(&kim, "/console/usage?region=ap-southeast-1&range=30d").await;
    assert!(page.contains("The usage of the API keys you created"));
    assert_eq!(figure(&page, "usage-totals", "Requests"), "2");
    assert_eq!(figure(&page, "usage-totals", "Input tokens"), "40");
    assert_eq!(figure(&page, "usage-totals", "Cost"), "—", "nothing kim used has a price");
    assert!(!page.contains(&mask_key(&scene.plaintext_a)) && !page.contains("demo-echo"), "nothing of the account's key");
    // The account's key has no page for kim: the API's answer.
    let refused = kim.get(&format!("/console/keys/{}?region=ap-southeast-1", scene.key_a)).await;
    assert_eq!(refused.status(), 404);
    assert!(refused.text().await.unwrap().contains("The API key does not exist."));

    // A caller without usage sees the empty state, and no chart.
    scene.app.create_user("lee", Role::KeyManager).await;
    let (lee, _) = sign_in(&scene.app, Some("lee")).await;
    let empty = page_text(&lee, "/console/usage?region=ap-southeast-1").await;
    assert!(empty.contains("No usage in the last 7 days."));
    assert!(!empty.contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_page_has_its_usage_panel() {
    let scene = scene().await;
    let (root, _) = sign_in(&scene.app, None).await;
    let list = page_text(&root, "/console/keys?region=ap-southeast-1").await;
    assert!(list.contains(&format!(r#"<a class="link" href="/console/keys/{}?region=ap-southeast-1""#, scene.key_a)));

    let page = page_text(&root, &format!("/console/keys/{}?region=ap-southeast-1", scene.key_a)).await;
    assert!(page.contains(&format!(r#"<h1>API key <code class="masked-key">{}</code></h1>"#, mask_key(&scene.plaintext_a))));
    assert!(page.contains("&lt;b&gt;mine&lt;/b&gt;") && !page.contains("<b>mine"));
    // Everything recorded, then the last 30 days by day (both calls are in them).
    assert_eq!(figure(&page, "key-recorded", "Requests"), "4");
    assert_eq!(figure(&page, "key-recorded", "Input tokens"), "1,001,200");
    assert_eq!(figure(&page, "key-recorded", "Cost"), "1.001800 USD");
    assert_eq!(figure(&page, "key-in-range", "Requests"), "4");
    assert!(page.contains("In all: Input 1,001,200 tokens, Output 300 tokens."));
    assert_eq!(page.matches(r#"<td data-label="Day (UTC)">"#).count(), 60);
    // The last 24 hours hold only the recent calls; B's usage is never A's.
    let day = page_text(&root, &format!("/console/keys/{}?region=ap-southeast-1&range=24h", scene.key_a)).await;
    assert_eq!(figure(&day, "key-in-range", "Input tokens"), "1,200");
    assert!(!day.contains(HOSTILE_MODEL_ESCAPED));

    // The RAM user's key, seen by the account; a key without usage in range says so.
    let b = page_text(&root, &format!("/console/keys/{}?region=ap-southeast-1&range=24h", scene.key_b)).await;
    assert_eq!(figure(&b, "key-in-range", "Requests"), "2");
    // Three days on (a new session: the first has expired by then).
    scene.app.state.shared.clock.advance_seconds(3 * 86_400);
    let (root, _) = sign_in(&scene.app, None).await;
    let later = page_text(&root, &format!("/console/keys/{}?region=ap-southeast-1&range=24h", scene.key_b)).await;
    assert!(later.contains("No usage in the last 24 hours."));
    assert_eq!(figure(&later, "key-recorded", "Requests"), "2");
    for missing in ["999999", "not-a-key"] {
        assert_eq!(root.get(&format!("/console/keys/{missing}?region=ap-southeast-1")).await.status(), 404, "{missing}");
    }
}
