//! keygate's own JSON API under `/keygate/v1/`, for what the Model Studio API does not
//! cover: sessions and the caller's own password, RAM users, workspace membership and applications, AccessKeys, the
//! model catalog, regions, the audit log, usage, leak reports, key import and ending a
//! reset key's grace period. Request bodies are JSON; answers use the same envelope as the Model Studio API (see
//! [`super::errors`]; `usage` may answer CSV instead), and the whole surface is described
//! by the OpenAPI document ([`super::openapi`]), generated from the route table and the
//! `keygate_wire::keygate_api` types the handlers answer with.
//!
//! Every handler but login takes a `Call` or, when only the account and admins may call
//! it, an `Administrator` ([`super::call`]), so that the check cannot be forgotten, and
//! answers its response type in the success envelope.

mod access_keys;
mod audit;
mod catalog;
pub mod key_import;
mod keys;
mod leaks;
mod sessions;
pub mod usage;
mod users;
mod workspaces;

use axum::routing::{get, post, put};
use axum::Router;
use keygate_core::ids::PrincipalName;
use keygate_wire::json_errors::describe_json_error;

use super::errors::ManagementError;
use crate::state::AppState;

/// Routes that need no authentication (logging in, the OpenAPI document).
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/keygate/v1/sessions", post(sessions::login))
        .route("/keygate/v1/openapi.json", get(super::openapi::openapi_document))
}

/// Routes behind the authentication middleware.
pub fn authenticated_routes() -> Router<AppState> {
    Router::new()
        .route("/keygate/v1/sessions/current", get(sessions::whoami).delete(sessions::logout))
        .route("/keygate/v1/password", put(sessions::change_password))
        .route("/keygate/v1/users", get(users::list_users).post(users::create_user))
        .route("/keygate/v1/users/{name}", get(users::get_user).delete(users::delete_user))
        .route("/keygate/v1/users/{name}/role", put(users::set_role))
        .route("/keygate/v1/users/{name}/disable", post(users::set_user_active::<false>))
        .route("/keygate/v1/users/{name}/enable", post(users::set_user_active::<true>))
        .route("/keygate/v1/users/{name}/password", put(users::set_password))
        .route("/keygate/v1/workspaces/{workspace_id}/members", get(workspaces::list_members).post(workspaces::add_member))
        .route("/keygate/v1/workspaces/{workspace_id}/members/{name}", axum::routing::delete(workspaces::remove_member))
        .route(
            "/keygate/v1/workspaces/{workspace_id}/applications",
            get(workspaces::list_applications).post(workspaces::create_application),
        )
        .route("/keygate/v1/access-keys", get(access_keys::list_access_keys).post(access_keys::create_access_key))
        .route("/keygate/v1/access-keys/{access_key_id}", axum::routing::delete(access_keys::delete_access_key))
        .route("/keygate/v1/access-keys/{access_key_id}/disable", post(access_keys::set_access_key_active::<false>))
        .route("/keygate/v1/access-keys/{access_key_id}/enable", post(access_keys::set_access_key_active::<true>))
        .route("/keygate/v1/models", get(catalog::list_models))
        .route("/keygate/v1/regions", get(catalog::list_regions))
        .route("/keygate/v1/audit", get(audit::list_audit))
        .route("/keygate/v1/usage", get(usage::get_usage))
        .route("/keygate/v1/leaks", post(leaks::report_leaks))
        .route("/keygate/v1/keys/{api_key_id}/end-grace", post(keys::end_grace))
}

/// The key import, behind the authentication middleware with its own body limit
/// (`key_import::MAX_IMPORT_BODY_BYTES`), which has read the body by the time the handler
/// runs; axum's own default limit would cut it at 2 MiB.
pub fn import_routes() -> Router<AppState> {
    Router::new().route(key_import::IMPORT_PATH, post(key_import::import_keys)).layer(axum::extract::DefaultBodyLimit::disable())
}

type Result<T> = std::result::Result<T, ManagementError>;

/// Parses a principal name from a request, as a 400 on failure.
pub fn parse_name(text: &str) -> Result<PrincipalName> {
    Ok(PrincipalName::parse(text)?)
}

/// Reads a JSON body into `T`, as a 400 `InvalidParameter` that names the `expected`
/// shape on failure. Unknown fields are refused by the request types themselves.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ManagementError::invalid_parameter(format!("The request body is empty; expected JSON {expected}.")));
    }
    serde_json::from_slice(body).map_err(|error| {
        ManagementError::invalid_parameter(format!(
            "The request body is not the expected JSON {expected}: {}.",
            describe_json_error(&error)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn json_body_names_the_expected_shape_in_every_refusal() {
        for body in [&b""[..], b"  ", b"{", b"{\"nom\":\"x\"}", b"[1]"] {
            let error = json_body::<Example>(body, "{\"name\"}").unwrap_err();
            assert_eq!((error.status.as_u16(), error.code), (400, "InvalidParameter"));
            assert!(error.message.contains("{\"name\"}"), "{}", error.message);
        }
        assert!(json_body::<Example>(b"{\"name\":\"x\"}", "{\"name\"}").is_ok());
    }
}
