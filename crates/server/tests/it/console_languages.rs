//! The console in English and Chinese (docs/CONTRACT.md#console): the language of the
//! browser's `Accept-Language`, the switch that remembers a choice in a cookie, and a
//! switch that only goes back to a console page.

use reqwest::header::{LOCATION, SET_COOKIE};

use crate::console::sign_in;
use crate::helpers::spawn_app;

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
