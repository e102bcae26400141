//! The server's verdict on a key, through the gateway's `/auth/verify` (the same decision
//! as a model call, without one): valid with its workspace and region, disabled, expired,
//! its owner inactive, unknown in this region, or the address not in its whitelist.

use std::time::Duration;

use keygate_wire::data_plane::DataPlaneError;
use reqwest::StatusCode;

use super::findings::Report;
use crate::commands::client::{parse_server_url, server_text};

/// `--server`/`KEYGATE_SERVER`, else the dashscope SDK's base URL without `/api/v1`.
pub fn server_to_ask(requested: Option<&str>) -> Option<String> {
    if let Some(server) = requested.map(str::trim).filter(|server| !server.is_empty()) {
        return Some(server.to_string());
    }
    let base = std::env::var("DASHSCOPE_HTTP_BASE_URL").ok()?;
    let trimmed = base.trim().trim_end_matches('/');
    (!trimmed.is_empty()).then(|| trimmed.strip_suffix("/api/v1").unwrap_or(trimmed).to_string())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or("?").to_string()
}

/// Asks `server` about `key` (masked `masked` in messages) and adds the verdict.
pub async fn ask_server(report: &mut Report, server: &str, key: &str, masked: &str) {
    let url = match parse_server_url(server) {
        Ok(url) => url,
        Err(error) => {
            report.problem(
                "server_url_invalid",
                format!("{error:#}"),
                "pass --server http://HOST:PORT (the keygate listener your program calls)",
            );
            return;
        }
    };
    let shown = server_text(&url);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).redirect(reqwest::redirect::Policy::none()).build();
    let Ok(client) = client else {
        report.problem("server_unreachable", "cannot build an HTTP client", "try again");
        return;
    };
    let response = match client.get(format!("{shown}/auth/verify")).bearer_auth(key).header("x-keygate-identity", "on").send().await {
        Ok(response) => response,
        Err(error) => {
            let mut innermost: &dyn std::error::Error = &error;
            while let Some(source) = innermost.source() {
                innermost = source;
            }
            report.problem(
                "server_unreachable",
                format!("Cannot reach the keygate server at {shown} ({innermost}), so whether it accepts the key is unknown."),
                "check the address (--server, KEYGATE_SERVER or DASHSCOPE_HTTP_BASE_URL) and that `keygate serve` is running",
            );
            return;
        }
    };
    let status = response.status();
    if status == StatusCode::OK {
        let (key_id, workspace, region, account) = (
            header(&response, "x-keygate-key-id"),
            header(&response, "x-keygate-workspace"),
            header(&response, "x-keygate-region"),
            header(&response, "x-keygate-account"),
        );
        report.passed(
            "server_accepts_key",
            format!("The server at {shown} accepts {masked}: key {key_id} of account {account}, workspace {workspace}, region {region}."),
        );
        return;
    }
    let refusal: DataPlaneError = response.json().await.unwrap_or_default();
    let DataPlaneError { code, message, request_id } = refusal;
    let said = format!("(the server said {code}: {message} request id {request_id})");
    match (status.as_u16(), code.as_str()) {
        (401, _) if message.contains("disabled") && message.contains("owner") => report.problem(
            "key_owner_inactive",
            format!("The server at {shown} refuses {masked}: the RAM user who created it is disabled or no longer a member of its workspace {said}."),
            "ask the account or an admin to enable that user (keygate users enable NAME) or to add it back to the workspace, or use another key",
        ),
        (401, _) if message.contains("disabled") => report.problem(
            "key_disabled",
            format!("The server at {shown} refuses {masked}: the key is disabled (by its owner, an admin, or `keygate scan --revoke` after it leaked) {said}."),
            "if it leaked: create a new key (keygate keys create) and `keygate env setup` it\notherwise ask the account or an admin to enable it: keygate keys list, then keygate keys enable ID",
        ),
        (401, _) if message.contains("expired") => report.problem(
            "temporary_key_expired",
            format!("The server at {shown} refuses {masked}: the temporary key has expired (they live at most 30 minutes) {said}."),
            "mint a new one from the permanent key: DASHSCOPE_API_KEY=<permanent key> keygate token\nor set the permanent key itself: keygate env setup",
        ),
        (401, _) => report.problem(
            "key_unknown_to_server",
            format!(
                "The server at {shown} does not know {masked} in its region: it was deleted or reset, mistyped, or created in another region (a key works only at the listener of the region it was created in) {said}."
            ),
            "check the URL your program calls (DASHSCOPE_HTTP_BASE_URL, base_url) is the listener of the key's region: keygate keys list shows each key's region\nor create a new key there: keygate keys create",
        ),
        (403, "AccessDenied") => report.problem(
            "address_not_whitelisted",
            format!("The server at {shown} accepts {masked} but not from this machine's address: the key has an IP whitelist {said}."),
            "call from an address in the whitelist, or add this one: keygate keys edit ID --custom --ip ADDRESS (with the key's other --ip values)",
        ),
        (429, _) => report.warning(
            "server_throttled",
            format!("The server at {shown} throttles this address after too many failed authentications, so it did not judge the key {said}."),
            Some("wait a minute and run the doctor again".to_string()),
        ),
        _ => report.problem(
            "server_unexpected_answer",
            format!("The server at {shown} answered HTTP {} {said}.", status.as_u16()),
            "check that --server names a keygate listener",
        ),
    }
}
