//! The console in English and Chinese (docs/CONTRACT.md#console): the language of the
//! browser's `Accept-Language`, the switch that remembers a choice in a cookie, and a
//! switch that only goes back to a console page; every page in Chinese (the Usage page, a
//! key's page with its limits and warnings, Users and AccessKeys, the password page, the
//! refused-form and not-found pages, the script's texts) with its Chinese heading and no
//! English sentence left but the rules' messages.

use keygate_core::access::Role;
use keygate_core::civil_time::format_utc_timestamp;
use keygate_core::usage::TokenUsage;
use reqwest::header::{LOCATION, SET_COOKIE};

use crate::console::sign_in;
use crate::helpers::{price_demo_models, spawn_app, spawn_app_with, stored_usage, with_query};

#[tokio::test]
async fn pages_follow_the_browser_and_the_switch() {
    let app = spawn_app().await;
    let (root, _) = sign_in(&app, None).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str, language: Option<&str>, cookie: &str| {
        let mut request =
            http.get(format!("http://{}{path}", app.address)).header("cookie", format!("keygate_session={}{cookie}", root.cookie));
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    // No preference, or a language the console does not speak: English.
    let page = get("/console/keys?region=ap-southeast-1", None, "").await;
    assert!(page.contains("<html lang=\"en\">") && page.contains("<h1>API keys</h1>"));
    let page = get("/console/keys?region=ap-southeast-1", Some("fr-FR,de;q=0.8"), "").await;
    assert!(page.contains("<html lang=\"en\">"));

    // The browser asks for Chinese: every page of the frame, the key list, the panels.
    for (path, heading) in [
        ("/console/keys?region=ap-southeast-1", "<h1>API Key</h1>"),
        ("/console/workspaces?region=ap-southeast-1", "<h1>业务空间</h1>"),
        ("/console/audit?region=ap-southeast-1", "<h1>审计日志</h1>"),
    ] {
        let page = get(path, Some("zh-CN,zh;q=0.9,en;q=0.8"), "").await;
        assert!(page.contains("<html lang=\"zh-CN\">"), "{path}");
        assert!(page.contains(heading), "{path}: {page}");
        assert!(page.contains(">退出登录<") && page.contains(">地域<"), "{path}");
    }
    let page = get("/console/keys?region=ap-southeast-1", Some("zh-CN"), "").await;
    assert!(page.contains("调用方式") && page.contains("ap-southeast-1 还没有 API Key") || page.contains("还没有 API Key。"), "{page}");
    let login = http
        .get(format!("http://{}/console/login", app.address))
        .header("accept-language", "zh")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("<h1>登录 keygate</h1>") && login.contains(">密码<"));

    // The switch: a cookie for a year, then back to the page it came from.
    let switched = http
        .get(format!("http://{}/console/language?lang=zh&back=%2Fconsole%2Faudit%3Fregion%3Dap-southeast-1", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    assert_eq!(switched.headers().get(LOCATION).unwrap(), "/console/audit?region=ap-southeast-1");
    let cookie = switched.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert_eq!(cookie, "keygate_lang=zh; HttpOnly; SameSite=Strict; Path=/console; Max-Age=31536000");
    // The cookie wins over the browser's language, both ways.
    let page = get("/console/keys?region=ap-southeast-1", Some("en-US"), "; keygate_lang=zh").await;
    assert!(page.contains("<html lang=\"zh-CN\">"));
    let page = get("/console/keys?region=ap-southeast-1", Some("zh-CN"), "; keygate_lang=en").await;
    assert!(page.contains("<html lang=\"en\">"));
    // The switch on a page links to the other language and back to that page's section.
    assert!(page.contains("href=\"/console/language?lang=zh&amp;back=%2Fconsole%2Fkeys%3Fregion%3Dap%2Dsoutheast%2D1\""), "{page}");

    // Only back to the console: another site or path goes to the key list.
    for back in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example", "%2Fkeygate%2Fv1%2Fusers", "%2Fconsole%2F%5Cevil"] {
        let answer = http.get(format!("http://{}/console/language?lang=en&back={back}", app.address)).send().await.unwrap();
        assert_eq!(answer.headers().get(LOCATION).unwrap(), "/console/keys", "{back}");
    }
}

/// The texts a reader sees in `page`: the text between tags and the values of the
/// attributes that are read out or shown (labels, titles), each trimmed.
fn shown_texts(page: &str) -> Vec<String> {
    const READ_ATTRIBUTES: [&str; 4] = ["aria-label", "data-label", "title", "placeholder"];
    let mut texts = Vec::new();
    for (index, piece) in page.split('<').enumerate() {
        let (tag, text) = if index == 0 { ("", piece) } else { piece.split_once('>').unwrap_or((piece, "")) };
        texts.push(text.trim().to_string());
        for attribute in READ_ATTRIBUTES {
            for value in tag.split(&format!(" {attribute}=\"")).skip(1) {
                texts.push(value.split('"').next().unwrap_or("").trim().to_string());
            }
        }
    }
    texts.retain(|text| !text.is_empty());
    texts
}

/// The texts of `page` that read like English: three words or more of Latin letters in a
/// row (a name, a model or a region is one or two), leaving out `allowed`.
fn english_left(page: &str, allowed: &[&str]) -> Vec<String> {
    shown_texts(page)
        .into_iter()
        .filter(|text| {
            let mut run = 0;
            let mut longest = 0;
            for word in text.split(|character: char| character.is_whitespace() || ",;:()".contains(character)) {
                if word.is_empty() {
                    continue;
                }
                run = if word.chars().all(|character| character.is_ascii_alphabetic() || character == '\'') { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            longest >= 3 && !allowed.iter().any(|allowed| text.contains(allowed))
        })
        .collect()
}

/// The value of the first `csrf_token` field of `page`.
fn csrf_token(page: &str) -> String {
    let start = page.find("name=\"csrf_token\" value=\"").expect("a csrf_token field") + "name=\"csrf_token\" value=\"".len();
    page[start..start + 64].to_string()
}

#[tokio::test]
async fn every_page_in_chinese_has_its_chinese_heading_and_no_english_left() {
    let app = spawn_app_with(price_demo_models).await;
    app.create_user("kim", Role::KeyManager).await;
    let (root, _) = sign_in(&app, None).await;
    let api = app.login(None).await;
    // A key with limits and a day's budget 90% used (its warning), and usage to draw.
    let limits = serde_json::json!({"requestsPerMinute": 60, "budget": {"period": "day", "tokens": 1000}});
    let created = api.create_key(with_query("/", &[("keygateLimits", &limits.to_string())]).trim_start_matches("/?"), "").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key_id = created.body["apiKey"]["apiKeyId"].as_i64().unwrap();
    let now = app.state.shared.clock.now_seconds();
    let workspace = app.state.store().default_workspace(1, "ap-southeast-1").await.unwrap().workspace_id;
    let usage = TokenUsage { input: 600, output: 300, cached: 0, reasoning: 0 };
    let minute = format_utc_timestamp(now - now.rem_euclid(60));
    app.state.store().add_token_usage(&[stored_usage(key_id, &workspace, "demo-echo", &minute, 3, usage)]).await.unwrap();

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = format!("keygate_session={}; keygate_lang=zh", root.cookie);
    let get = |path: String| {
        let request = http.get(format!("http://{}{path}", app.address)).header("cookie", &cookie);
        async move {
            let answer = request.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let request = http.post(format!("http://{}{path}", app.address)).header("cookie", &cookie).form(&fields);
        async move {
            let answer = request.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let region = "?region=ap-southeast-1";
    let key_page = format!("/console/keys/{key_id}{region}");

    // Each page: its status, its Chinese heading and texts, and no English sentence.
    let (_, users_page) = get(format!("/console/users{region}")).await;
    let token = csrf_token(&users_page);
    let pages = [
        (
            format!("/console/usage{region}"),
            200,
            get(format!("/console/usage{region}")).await,
            vec!["<h1>用量</h1>", "Token 用量趋势", "请求数趋势", "用量最多的 API Key", "数据明细", ">最近 7 天<", "<dt>费用</dt>"],
        ),
        (
            key_page.clone(),
            200,
            get(key_page.clone()).await,
            vec![
                "<h1>API Key <code",
                ">详情<",
                ">限制<",
                ">修改限制<",
                ">本日预算<",
                "每日预算已用 80% 以上",
                ">保存限制<",
                "全部已记录的用量",
            ],
        ),
        (format!("/console/keys{region}"), 200, get(format!("/console/keys{region}")).await, vec!["<h1>API Key</h1>", ">预算已用 80%+<"]),
        (
            format!("/console/users{region}"),
            200,
            (200, users_page.clone()),
            vec!["<h1>用户</h1>", ">创建 RAM 用户<", ">子业务空间<", ">创建 AccessKey<", "data-label=\"角色\""],
        ),
        (
            format!("/console/password{region}"),
            200,
            get(format!("/console/password{region}")).await,
            vec!["<h1>修改密码</h1>", ">再次输入新密码<"],
        ),
        (
            "POST /console/access-keys".to_string(),
            200,
            post(format!("/console/access-keys{region}"), vec![("csrf_token", token.clone())]).await,
            vec!["已为 root 创建 AccessKey", ">复制 Secret<", ">AccessKey ID<"],
        ),
        (
            "POST /console/users (refused)".to_string(),
            400,
            post(format!("/console/users{region}"), vec![("csrf_token", token.clone()), ("name", "x".into()), ("role", "boss".into())])
                .await,
            vec!["请选择 admin、key-manager 或 member。"],
        ),
        (
            "POST without its token".to_string(),
            403,
            post(format!("/console/users{region}"), vec![]).await,
            vec!["<h1>表单被拒绝</h1>", "安全令牌"],
        ),
        (
            "an unknown page".to_string(),
            404,
            get("/console/nope".to_string()).await,
            vec!["<html lang=\"zh-CN\">", "404 未找到", "请求 ID：", ">返回控制台<"],
        ),
    ];
    // The rules' messages stay English (the password's and the name's rules, a route the
    // router does not know); the chart's labels are the key's description.
    let allowed = ["is not served here", "characters", "Model access denied", "must be"];
    for (what, status, (answered, page), expected) in &pages {
        assert_eq!(answered, status, "{what}: {page}");
        for text in expected {
            assert!(page.contains(text), "{what}: no {text} in {page}");
        }
        let left = english_left(page, &allowed);
        assert!(left.is_empty(), "{what} still has English: {left:?}");
    }
    // The script's texts come with every page of the frame.
    assert!(
        pages[0].2 .1.contains("data-text-copied=\"已复制到剪贴板。\"") && pages[0].2 .1.contains("data-text-downloaded=\"已下载 {}。\"")
    );

    // A refused limits form: the chrome in Chinese around the rules' English message.
    let (status, refused) =
        post(format!("/console/keys/{key_id}/limits{region}"), vec![("csrf_token", token), ("max_in_flight", "four".into())]).await;
    assert_eq!(status, 400);
    assert!(refused.contains("未做任何更改：keygateLimits.maxInFlight must be an integer"), "{refused}");

    // The same pages in English have their English headings.
    let english = format!("keygate_session={}; keygate_lang=en", root.cookie);
    for (path, heading) in [
        (format!("/console/usage{region}"), "<h1>Usage</h1>"),
        (key_page, ">Change the limits<"),
        (format!("/console/users{region}"), ">Create a RAM user<"),
        (format!("/console/password{region}"), "<h1>Change your password</h1>"),
    ] {
        let page = http.get(format!("http://{}{path}", app.address)).header("cookie", &english).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("<html lang=\"en\">") && page.contains(heading), "{path}: {page}");
    }
}

#[test]
fn english_is_found_in_texts_and_read_attributes_only() {
    let page = r#"<p class="a b c">Nothing was changed here</p><td data-label="Last used at">从未</td><code>x</code> keygate 控制台"#;
    assert_eq!(english_left(page, &[]), ["Nothing was changed here", "Last used at"]);
    assert!(english_left(page, &["changed"]).len() == 1);
    assert!(english_left("<p>Default workspace</p><p>root（主账号）</p>", &[]).is_empty());
}
