//! An internal failure (here: a table the store needs has gone) is answered with a generic
//! message and the request id, and logged exactly once, where the answer leaves (the
//! management boundary, the console's), with its detail and that request id. The detail
//! never reaches the answer.

use sqlx::Connection;

use crate::console::sign_in;
use crate::helpers::{spawn_app, TestApp};
use crate::log_capture;

/// Hides the table of model grants, so that every read of a workspace's grants fails
/// inside the store.
async fn hide_model_grants(app: &TestApp) {
    let database = app.state.shared.settings.data_dir.join(keygate_store::DATABASE_FILE_NAME);
    let mut connection =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await.expect("the test database opens");
    sqlx::query("ALTER TABLE model_grants RENAME TO model_grants_hidden_by_the_test").execute(&mut connection).await.expect("rename");
}

/// The log lines of internal failures of `request_id`: exactly one, which names the detail.
async fn assert_logged_once_with_detail(request_id: &str) {
    // The line is written before the answer leaves; a short wait covers a slow writer.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let lines: Vec<String> = log_capture::lines_containing(request_id).into_iter().filter(|line| line.contains("internal error")).collect();
    assert_eq!(lines.len(), 1, "one log line for {request_id}: {lines:#?}");
    assert!(lines[0].contains("no such table"), "the detail is logged: {}", lines[0]);
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);
}

#[tokio::test]
async fn an_internal_failure_is_logged_once_with_its_request_id_and_its_detail_is_never_answered() {
    log_capture::install();
    let app = spawn_app().await;
    let client = app.login(None).await;
    let (console, _) = sign_in(&app, None).await;
    hide_model_grants(&app).await;

    let answer = client.get("/modelstudio/models/permissions").await;
    assert_eq!((answer.status, answer.code()), (500, "InternalError"), "{}", answer.body);
    assert_eq!(answer.body["message"], "An internal error occurred; see the server log.");
    assert_eq!(answer.body["success"], false);
    let text = answer.body.to_string();
    assert!(!text.contains("no such table") && !text.contains("model_grants"), "the detail stays out of the answer: {text}");
    let request_id = answer.body["requestId"].as_str().expect("a request id");
    assert!(!request_id.is_empty());
    assert_logged_once_with_detail(request_id).await;

    let page = console.get("/console/workspaces").await;
    assert_eq!(page.status(), 500);
    let request_id = page.headers()["x-acs-request-id"].to_str().unwrap().to_string();
    let text = page.text().await.unwrap();
    assert!(text.contains("Something went wrong"), "{text}");
    assert!(!text.contains("no such table") && !text.contains("model_grants"), "the detail stays off the page");
    assert_logged_once_with_detail(&request_id).await;

    // Nothing else logged the failures: neither where the error was made nor on its way out.
    let everywhere = log_capture::lines_containing("model_grants");
    assert_eq!(everywhere.len(), 2, "{everywhere:#?}");
}
