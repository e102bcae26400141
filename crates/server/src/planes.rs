//! Which plane a path belongs to, and a refusal in that plane's error shape: the answer
//! to a request that no handler takes (an unknown path, a wrong method, a target too
//! long). A client reads errors in the shape of the API it called, so an unknown path
//! under `/compatible-mode/` answers like OpenAI, one under `/modelstudio/` like the
//! management API, and so on; every such answer carries a request id.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::gateway::errors::{GatewayRefusal, Protocol};
use crate::management::errors::{ErrorShape, ManagementError};
use crate::request_context::RequestContext;
use crate::state::AppState;

/// Where a path belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// A model call in this protocol.
    Gateway(Protocol),
    /// The management APIs (Model Studio's, keygate's own, Token Plan).
    Management(ErrorShape),
    /// The web console (HTML).
    Console,
}

impl Plane {
    /// The plane of `path`. Anything that is neither a model call nor the console answers
    /// in the management envelope.
    pub fn of_path(path: &str) -> Plane {
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        if under("/api") || under("/auth/verify") {
            Plane::Gateway(Protocol::Native)
        } else if under("/compatible-mode") || under("/v1") {
            Plane::Gateway(Protocol::OpenAi)
        } else if under("/apps/anthropic") {
            Plane::Gateway(Protocol::Anthropic)
        } else if under("/console") {
            Plane::Console
        } else {
            Plane::Management(ErrorShape::for_path(path))
        }
    }
}

/// A refusal with `status`, `code` (the management and native code) and `message`, in
/// the shape of the plane `path` belongs to.
pub fn refusal_for_path(path: &str, status: StatusCode, code: &'static str, message: &str, request_id: &str) -> Response {
    match Plane::of_path(path) {
        Plane::Gateway(protocol) => {
            GatewayRefusal::Unrouted { status, native_code: code, message: message.to_string() }.into_response_for(protocol, request_id)
        }
        Plane::Management(shape) => ManagementError::new(status, code, message).with_request_id(request_id).into_response_shaped(shape),
        Plane::Console => console_error_page(status, message, request_id),
    }
}

fn console_error_page(status: StatusCode, message: &str, request_id: &str) -> Response {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "keygate console" } }
            body {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p { (message) }
                p { "Request id: " code { (request_id) } }
                p { a href="/console" { "Back to the console" } }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// The router's fallback: no route has this path.
pub async fn not_served(State(_state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let (method, path) = (request.method(), request.uri().path());
    let (code, message) = match Plane::of_path(path) {
        Plane::Management(_) if path.starts_with("/modelstudio/") || path.starts_with("/tokenplan/") => {
            ("UnsupportedOperation", format!("keygate does not implement this operation ({method} {path})."))
        }
        _ => ("NotFound", format!("{method} {path} is not served here.")),
    };
    refusal_for_path(path, StatusCode::NOT_FOUND, code, &message, &context.request_id)
}

/// The router's answer to a known path with a method it does not take.
pub async fn method_not_allowed(context: RequestContext, method: Method, request: Request) -> Response {
    let path = request.uri().path();
    let message = format!("{path} does not take {method}.");
    refusal_for_path(path, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message, &context.request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_the_plane_of_their_prefix() {
        assert_eq!(Plane::of_path("/api/v1/services/x"), Plane::Gateway(Protocol::Native));
        assert_eq!(Plane::of_path("/auth/verify"), Plane::Gateway(Protocol::Native));
        assert_eq!(Plane::of_path("/compatible-mode/v1/files"), Plane::Gateway(Protocol::OpenAi));
        assert_eq!(Plane::of_path("/v1/chat/completions"), Plane::Gateway(Protocol::OpenAi));
        assert_eq!(Plane::of_path("/apps/anthropic/v1/nope"), Plane::Gateway(Protocol::Anthropic));
        assert_eq!(Plane::of_path("/console/nope"), Plane::Console);
        assert_eq!(Plane::of_path("/tokenplan/nope"), Plane::Management(ErrorShape::TokenPlan));
        assert_eq!(Plane::of_path("/modelstudio/nope"), Plane::Management(ErrorShape::ModelStudio));
        assert_eq!(Plane::of_path("/apis"), Plane::Management(ErrorShape::ModelStudio));
        assert_eq!(Plane::of_path("/"), Plane::Management(ErrorShape::ModelStudio));
    }
}
