//! A key's limits in the console over plain HTTP (docs/CONTRACT.md#console), on both
//! stores, with the test clock (advanced, never slept through) and usage stored directly:
//! the key page shows the limits and what is left of the budget; its banner, and the key
//! list's badge and count, appear at 80% of a token budget, when it is used up, for an
//! expiry within 7 days and after it, and not otherwise; the limits form sets, changes and
//! removes limits through the API's edit (audited the same way) and refuses bad values with
//! the rules' message, changing nothing; and a key-manager reaches only its own keys.

use keygate_core::access::Role;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::usage::TokenUsage;
use keygate_server::console::CONTENT_SECURITY_POLICY_VALUE;
use keygate_server::settings::Settings;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};
use serde_json::{json, Value};

use crate::console::{sign_in, Session};
use crate::helpers::{price_demo_models, stored_usage, with_query, Client, TestApp};

const DAY: i64 = 86_400;
const REGION: &str = "region=ap-southeast-1";

/// Demo models with prices, and a PostgreSQL node that does not count itself stale when
/// the clock jumps days ahead.
fn patient_and_priced(settings: &mut Settings) {
    settings.max_staleness_seconds = 40 * DAY as u64;
    price_demo_models(settings);
}

/// Moves the clock to noon (UTC) of the next day, so that a day's budget stays in one day.
fn at_noon(app: &TestApp) {
    let now = app.state.shared.clock.now_seconds();
    app.state.shared.clock.advance_seconds(DAY - now.rem_euclid(DAY) + DAY / 2);
}

/// A key of the account with `query` (its limits, its expiry); its id.
async fn create_key(root: &Client, query: &str) -> i64 {
    let created = root.create_key(query, "").await;
    assert_eq!(created.status, 200, "{}", created.body);
    created.body["apiKey"]["apiKeyId"].as_i64().unwrap()
}

fn limits_query(limits: &Value) -> String {
    with_query("/", &[("keygateLimits", &limits.to_string())]).trim_start_matches("/?").to_string()
}

async fn limits_of(root: &Client, key_id: i64) -> Value {
    let answer = root.get(&format!("/modelstudio/apikeys/{key_id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["apiKey"]["keygateLimits"].clone()
}

/// `tokens` input tokens of `key_id` on demo-echo (1 USD per million) in the current minute.
async fn spend(app: &TestApp, key_id: i64, tokens: i64) {
    let now = app.state.shared.clock.now_seconds();
    let workspace = app.state.store().default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id;
    let usage = TokenUsage { input: tokens, output: 0, cached: 0, reasoning: 0 };
    let delta = stored_usage(key_id, &workspace, "demo-echo", &format_utc_timestamp(now - now.rem_euclid(60)), 1, usage);
    app.state.store().add_token_usage(&[delta]).await.unwrap();
}

/// A page's body after checking that it answered 200 with the console's own policy and no
/// inline style.
async fn page_text(session: &Session, path: &str) -> String {
    let answer = session.get(path).await;
    assert_eq!(answer.status(), 200, "{path}");
    assert_eq!(answer.headers().get(CONTENT_SECURITY_POLICY).unwrap(), CONTENT_SECURITY_POLICY_VALUE, "{path}");
    let text = answer.text().await.unwrap();
    assert!(!text.contains("style=") && !text.contains("<style"), "{path}: the policy allows no inline style");
    text
}

/// The `<dd>` of `name` in the page's element `id` (a `<dl>`).
fn entry<'a>(page: &'a str, id: &str, name: &str) -> &'a str {
    let list = &page[page.find(&format!(" id=\"{id}\">")).unwrap_or_else(|| panic!("no {id} in {page}"))..];
    let list = &list[..list.find("</dl>").unwrap()];
    let start = list.find(&format!("<dt>{name}</dt><dd>")).unwrap_or_else(|| panic!("no {name} in {id}: {list}")) + name.len() + 13;
    &list[start..start + list[start..].find("</dd>").unwrap()]
}

/// The banner of a key page: its role and text, if it has one.
fn banner(page: &str) -> Option<(&str, &str)> {
    let start = page.find(r#" id="key-warnings" role=""#)? + r#" id="key-warnings" role=""#.len();
    let role = &page[start..start + page[start..].find('"').unwrap()];
    let text = &page[start..start + page[start..].find("</div>").unwrap()];
    Some((role, text))
}

/// The opening tag of the element `id`.
fn tag<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page.find(&format!(r#" id="{id}""#)).unwrap_or_else(|| panic!("no element {id}"));
    let start = page[..at].rfind('<').unwrap();
    &page[start..at + page[at..].find('>').unwrap()]
}

/// The key list's row of `key_id`.
fn row(list: &str, key_id: i64) -> &str {
    let start = list.find(&format!(r#"<tr id="key-{key_id}""#)).unwrap_or_else(|| panic!("no row of key {key_id}"));
    &list[start..start + list[start..].find("</tr>").unwrap()]
}

fn key_page(key_id: i64) -> String {
    format!("/console/keys/{key_id}?{REGION}")
}

fn limits_action(key_id: i64) -> String {
    format!("/console/keys/{key_id}/limits?{REGION}")
}

on_both_stores! {
    settings: patient_and_priced;

    async fn console_key_page_shows_limits_budget_and_its_warnings(app: TestApp) {
        at_noon(&app);
        let root = app.login(None).await;
        let limited = json!({"requestsPerMinute": 60, "tokensPerMinute": 100000, "maxInFlight": 4, "budget": {"period": "day", "tokens": 1000, "cost": "5"}});
        let key_id = create_key(&root, &limits_query(&limited)).await;
        let plain = create_key(&root, "").await;
        let (console, _) = sign_in(&app, None).await;

        let page = page_text(&console, &key_page(key_id)).await;
        assert_eq!(entry(&page, "key-limits", "Requests per minute"), "60");
        assert_eq!(entry(&page, "key-limits", "Tokens per minute"), "100,000");
        assert_eq!(entry(&page, "key-limits", "Calls in flight"), "4");
        assert_eq!(entry(&page, "key-limits", "Budget"), "1,000 tokens and 5.00 USD per day (UTC)");
        assert_eq!(entry(&page, "key-budget", "Tokens used"), r#"0 <span class="of">of 1,000</span>"#);
        assert_eq!(entry(&page, "key-budget", "Tokens left"), "1,000");
        assert_eq!(entry(&page, "key-budget", "Cost left"), "5.00 USD");
        assert_eq!(entry(&page, "key-details", "Expires"), r#"<span class="muted">Never</span>"#);
        assert!(page.contains("This day&#39;s budget") || page.contains("This day's budget"), "{page}");
        assert_eq!(banner(&page), None);
        let none = page_text(&console, &key_page(plain)).await;
        assert_eq!(entry(&none, "key-limits", "Budget"), r#"<span class="muted">None</span>"#);
        assert!(!none.contains(r#"id="key-budget""#));

        // 79.9% used: no warning anywhere.
        spend(&app, key_id, 799).await;
        let page = page_text(&console, &key_page(key_id)).await;
        assert_eq!(entry(&page, "key-budget", "Tokens left"), "201");
        assert_eq!(entry(&page, "key-budget", "Cost used"), r#"0.000799 <span class="of">of 5.00 USD</span>"#);
        assert_eq!(banner(&page), None);
        let list = page_text(&console, &format!("/console/keys?{REGION}")).await;
        assert!(!row(&list, key_id).contains("key-warning") && !list.contains("keys-attention"));

        // 80%: a status banner, a badge on the row, a count on top of the list.
        spend(&app, key_id, 1).await;
        let page = page_text(&console, &key_page(key_id)).await;
        let (role, text) = banner(&page).expect("a banner at 80%");
        assert_eq!(role, "status");
        assert!(text.contains("The daily budget is at least 80% used: "), "{text}");
        let list = page_text(&console, &format!("/console/keys?{REGION}")).await;
        assert!(row(&list, key_id).contains(r#"<span class="badge warning key-warning">Budget 80%+ used</span>"#));
        assert!(!row(&list, plain).contains("key-warning"));
        assert!(list.contains(r#"id="keys-attention" role="status"><strong>1 API key below needs attention: </strong>"#), "{list}");

        // Used up: an alert, and nothing left.
        spend(&app, key_id, 200).await;
        let page = page_text(&console, &key_page(key_id)).await;
        let (role, text) = banner(&page).expect("a banner when used up");
        assert_eq!(role, "alert");
        assert!(text.contains("The daily budget is used up: ") && text.contains("until the day ends (UTC)"), "{text}");
        assert_eq!(entry(&page, "key-budget", "Tokens left"), "0");
        let list = page_text(&console, &format!("/console/keys?{REGION}")).await;
        assert!(row(&list, key_id).contains("Budget used up"));

        // The next day the budget renews: no warning (a new session: the first has expired).
        app.state.shared.clock.advance_seconds(DAY);
        let (console, _) = sign_in(&app, None).await;
        let page = page_text(&console, &key_page(key_id)).await;
        assert_eq!(banner(&page), None);
        assert_eq!(entry(&page, "key-budget", "Tokens left"), "1,000");
    }

    async fn console_warns_of_an_expiry_within_seven_days_and_after_it(app: TestApp) {
        let root = app.login(None).await;
        let now = app.state.shared.clock.now_seconds();
        let expires_at = now + 10 * DAY;
        let key_id = create_key(&root, &format!("keygateExpiresAt={expires_at}")).await;
        let (console, _) = sign_in(&app, None).await;
        let page = page_text(&console, &key_page(key_id)).await;
        assert_eq!(banner(&page), None, "ten days ahead is not near");
        assert!(entry(&page, "key-details", "Expires").contains(&format_utc_timestamp(expires_at)));

        // Six days before it: a status banner and a badge.
        app.state.shared.clock.advance_seconds(4 * DAY);
        let (console, _) = sign_in(&app, None).await;
        let page = page_text(&console, &key_page(key_id)).await;
        let (role, text) = banner(&page).expect("a banner within 7 days");
        assert_eq!(role, "status");
        assert!(text.contains("This key expires within 7 days: ") && text.contains(&format_utc_timestamp(expires_at)), "{text}");
        let list = page_text(&console, &format!("/console/keys?{REGION}")).await;
        assert!(row(&list, key_id).contains("Expires soon"));
        assert!(list.contains(r#"id="keys-attention""#));

        // Past it: an alert; the row's status says Expired.
        app.state.shared.clock.advance_seconds(7 * DAY);
        let (console, _) = sign_in(&app, None).await;
        let page = page_text(&console, &key_page(key_id)).await;
        let (role, text) = banner(&page).expect("a banner once expired");
        assert_eq!(role, "alert");
        assert!(text.contains("This key has expired: "), "{text}");
        let list = page_text(&console, &format!("/console/keys?{REGION}")).await;
        assert!(row(&list, key_id).contains("Expired") && !row(&list, key_id).contains("Expires soon"));
    }

    async fn console_limits_form_sets_changes_removes_and_refuses(app: TestApp) {
        let root = app.login(None).await;
        let key_id = create_key(&root, "description=kept").await;
        let (console, _) = sign_in(&app, None).await;
        let page = page_text(&console, &key_page(key_id)).await;
        assert!(page.contains(&format!(r#"action="/console/keys/{key_id}/limits?{REGION}#limits-form""#)), "{page}");

        // Set.
        let fields = [("requests_per_minute", "60"), ("tokens_per_minute", ""), ("max_in_flight", ""), ("budget_period", "month"), ("budget_tokens", "5000"), ("budget_cost", "2.5")];
        let saved = console.submit(&limits_action(key_id), &fields).await;
        assert_eq!(saved.status(), 303);
        assert_eq!(saved.headers().get(LOCATION).unwrap().to_str().unwrap(), format!("/console/keys/{key_id}?{REGION}&done=limits#limits"));
        assert_eq!(limits_of(&root, key_id).await, json!({"requestsPerMinute": 60, "budget": {"period": "month", "tokens": 5000, "cost": "2.50"}}));
        let page = page_text(&console, &format!("/console/keys/{key_id}?{REGION}&done=limits")).await;
        assert!(page.contains(r#"<p class="notice notice-success" role="status">The limits were saved.</p>"#));
        assert!(page.contains(r#"name="budget_cost" value="2.50""#) && page.contains(r#"<option value="month" selected>"#), "the form holds the limits");

        // Change: the form replaces the limits as a whole; the description stays.
        let saved = console.submit(&limits_action(key_id), &[("tokens_per_minute", "1000"), ("budget_period", "")]).await;
        assert_eq!(saved.status(), 303);
        assert_eq!(limits_of(&root, key_id).await, json!({"tokensPerMinute": 1000}));

        // Refused: 400, the rules' message in the form's error area, the value as typed, nothing changed.
        let refusals = [
            (vec![("requests_per_minute", "0")], "keygateLimits.requestsPerMinute must be an integer from 1 to 1000000000000, got 0.", "limits-requests_per_minute"),
            (vec![("max_in_flight", "four")], "keygateLimits.maxInFlight must be an integer from 1 to 1000000, got 'four'.", "limits-max_in_flight"),
            (vec![("budget_tokens", "500")], "keygateLimits.budget.period is required: day or month.", "limits-budget_period"),
            (vec![("budget_period", "day")], "keygateLimits.budget needs tokens, cost or both.", "limits-budget_period"),
            (vec![("budget_period", "day"), ("budget_cost", "1.2345678")], "keygateLimits.budget.cost must be a decimal text above 0 with at most 6 decimals", "limits-budget_cost"),
        ];
        for (fields, message, field_id) in refusals {
            let refused = console.submit(&limits_action(key_id), &fields).await;
            assert_eq!(refused.status(), 400, "{fields:?}");
            let page = refused.text().await.unwrap();
            assert!(page.contains(r#"<p class="form-error" id="limits-form-error" role="alert">Nothing was changed: "#), "{page}");
            assert!(page.contains(message), "{fields:?}: {page}");
            let field = tag(&page, field_id);
            assert!(field.contains(r#"aria-invalid="true""#) && field.contains("limits-form-error"), "{fields:?}: {field}");
            for (name, value) in fields.iter().filter(|(name, _)| *name != "budget_period") {
                assert!(tag(&page, &format!("limits-{name}")).contains(&format!(r#"value="{value}""#)), "{name} as typed");
            }
            assert_eq!(limits_of(&root, key_id).await, json!({"tokensPerMinute": 1000}), "{fields:?}");
        }

        // Removed with the button (whatever the fields hold), and by emptying every field.
        let cleared = console.submit(&limits_action(key_id), &[("requests_per_minute", "5"), ("clear", "1")]).await;
        assert_eq!(cleared.headers().get(LOCATION).unwrap().to_str().unwrap(), format!("/console/keys/{key_id}?{REGION}&done=limits-removed#limits"));
        assert_eq!(limits_of(&root, key_id).await, Value::Null);
        assert_eq!(console.submit(&limits_action(key_id), &[("requests_per_minute", "7")]).await.status(), 303);
        assert_eq!(console.submit(&limits_action(key_id), &[("requests_per_minute", " ")]).await.status(), 303);
        let key = root.get(&format!("/modelstudio/apikeys/{key_id}")).await.body["apiKey"].clone();
        assert_eq!((&key["keygateLimits"], &key["description"]), (&Value::Null, &json!("kept")));

        // Audited as the API's edit is; a refused form wrote nothing.
        let audit = app.state.store().list_audit(1, 50, None).await.unwrap();
        let details: Vec<&str> = audit.iter().filter(|row| row.action == "ApiKey.Update").map(|row| row.detail.as_str()).collect();
        let limits: Vec<&str> = details.iter().filter_map(|detail| detail.split(" limits=").nth(1)).collect();
        assert_eq!(limits, ["none", "rpm:7", "none", "tpm:1000", "rpm:60,budget:month/tokens:5000/cost_micros:2500000"], "{details:?}");
    }

    async fn console_limits_reach_only_the_keys_a_key_manager_may_see(app: TestApp) {
        let root = app.login(None).await;
        let roots_key = create_key(&root, &limits_query(&json!({"requestsPerMinute": 60}))).await;
        app.create_user("kim", Role::KeyManager).await;
        let kims_key = create_key(&app.login(Some("kim")).await, "").await;
        let (kim, _) = sign_in(&app, Some("kim")).await;

        // The account's key: no page, no change, the API's 404.
        let hidden = kim.get(&key_page(roots_key)).await;
        assert_eq!(hidden.status(), 404);
        let refused = kim.submit(&limits_action(roots_key), &[("requests_per_minute", "1")]).await;
        assert_eq!(refused.status(), 404);
        assert!(refused.text().await.unwrap().contains("The API key does not exist."));
        assert_eq!(limits_of(&root, roots_key).await, json!({"requestsPerMinute": 60}));
        let list = page_text(&kim, &format!("/console/keys?{REGION}")).await;
        assert!(!list.contains(&format!(r#"id="key-{roots_key}""#)));

        // Its own key: the form, which works.
        let page = page_text(&kim, &key_page(kims_key)).await;
        assert!(page.contains(r#"id="limits-form""#));
        assert_eq!(kim.submit(&limits_action(kims_key), &[("max_in_flight", "2")]).await.status(), 303);
        assert_eq!(limits_of(&root, kims_key).await, json!({"maxInFlight": 2}));
        // The account sees and changes it too.
        let (account, _) = sign_in(&app, None).await;
        assert!(page_text(&account, &key_page(kims_key)).await.contains(r#"id="limits-form""#));
    }
}
