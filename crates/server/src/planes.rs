//! Which plane a path belongs to, and a refusal in that plane's error shape: the answer
//! to a request that no handler takes (an unknown path, a wrong method, a target too
//! long, a path parameter that cannot be read). A client reads errors in the shape of the
//! API it called, so an unknown path under `/compatible-mode/` answers like OpenAI, one
//! under `/modelstudio/` like the management API, and so on; every such answer carries a
//! request id.
//!
//! Handlers take path parameters through [`Path`], never axum's own extractor, whose
//! rejections are plain text (clippy.toml forbids it).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::console::i18n::Language;
use crate::gateway::errors::{GatewayRefusal, Protocol};
use crate::management::errors::{ErrorShape, ManagementError};
use crate::request_context::{new_request_id, shown_path, RequestContext};
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
        if under(crate::gateway::responses::MODEL_STUDIO_RESPONSES_BASE) {
            Plane::Gateway(Protocol::OpenAi)
        } else if under("/api") || under("/auth/verify") {
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
/// the shape of the plane `path` belongs to (the console's page in the language of the
/// request's `headers`; `message` stays as given). The request id is also in
/// `x-acs-request-id`, as on every answer of the router, so that a refusal made before the
/// router (a target too long) carries it too.
pub fn refusal_for_path(
    headers: &HeaderMap,
    path: &str,
    status: StatusCode,
    code: &'static str,
    message: &str,
    request_id: &str,
) -> Response {
    let mut response = match Plane::of_path(path) {
        Plane::Gateway(protocol) => {
            GatewayRefusal::Unrouted { status, native_code: code, message: message.to_string() }.into_response_for(protocol, request_id)
        }
        Plane::Management(shape) => ManagementError::new(status, code, message).render(shape, request_id),
        Plane::Console => console_error_page(Language::of_request(headers), status, message, request_id),
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(crate::request_context::X_ACS_REQUEST_ID, value);
    }
    response
}

/// A handler's path parameters, percent-decoded, or a 400 `InvalidParameter` in the
/// plane's envelope when one is not percent-encoded UTF-8 (a `%` that does not start an
/// escape, or bytes that do not decode to UTF-8). The refusal never repeats the
/// parameter: a key pasted into a path must not come back in the answer.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    #[allow(clippy::disallowed_types)] // The one place that wraps axum's extractor.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        let request_id = parts.extensions.get::<RequestContext>().map(|context| context.request_id.clone()).unwrap_or_else(new_request_id);
        let path = parts.uri.path().to_string();
        let headers = parts.headers.clone();
        let refuse =
            |status: StatusCode, code: &'static str, message: &str| refusal_for_path(&headers, &path, status, code, message, &request_id);
        // axum keeps such a `%` as a literal; a client that sends one has a broken encoder.
        if has_malformed_escape(&path) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "The request path has a '%' that does not start a percent-encoded byte (%XX).",
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => Err(match error.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!("The path parameter {key} is not UTF-8 once percent-decoded."),
                ),
                _ => refuse(StatusCode::BAD_REQUEST, "InvalidParameter", "The request path's parameters could not be read."),
            }),
            Err(other) => {
                tracing::error!(request_id = %request_id, error = %other, "a handler's path parameters are missing");
                Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "An internal error occurred; see the server log."))
            }
        }
    }
}

/// Whether `path` has a `%` that is not followed by two hex digits.
fn has_malformed_escape(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().any(|(index, &byte)| {
        byte == b'%' && !bytes.get(index + 1..index + 3).is_some_and(|escape| escape.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The console's page for a refusal no console handler made (an unknown path, a wrong
/// method): its title in `language`, the router's `message` as it is.
fn console_error_page(language: Language, status: StatusCode, message: &str, request_id: &str) -> Response {
    let title = language.text(match status.as_u16() {
        400 => "error.bad_request",
        403 => "error.not_allowed",
        404 => "error.not_found",
        405 => "error.method_not_allowed",
        408 => "error.timeout",
        413 => "error.too_large",
        414 => "error.target_too_long",
        500.. => "error.went_wrong",
        _ => "error.not_done",
    });
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang=(language.html_lang()) {
            head { meta charset="utf-8"; title { (language.text("layout.title_suffix")) } }
            body {
                h1 { (status.as_u16()) " " (title) }
                p { (message) }
                p { (language.text("error.request_id")) code { (request_id) } }
                p { a href="/console" { (language.text("layout.back_to_console")) } }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// The router's fallback: no route has this path.
pub async fn not_served(State(_state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let (method, path) = (request.method(), request.uri().path());
    // The path as the log has it: a key a client put in its URL is not echoed.
    let shown = shown_path(path);
    let (code, message) = match Plane::of_path(path) {
        Plane::Management(_) if path.starts_with("/modelstudio/") || path.starts_with("/tokenplan/") => {
            ("UnsupportedOperation", format!("keygate does not implement this operation ({method} {shown})."))
        }
        _ => ("NotFound", format!("{method} {shown} is not served here.")),
    };
    refusal_for_path(request.headers(), path, StatusCode::NOT_FOUND, code, &message, &context.request_id)
}

/// The router's answer to a known path with a method it does not take.
pub async fn method_not_allowed(context: RequestContext, method: Method, request: Request) -> Response {
    let path = request.uri().path();
    let message = format!("{} does not take {method}.", shown_path(path));
    refusal_for_path(request.headers(), path, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message, &context.request_id)
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

    #[test]
    fn a_percent_that_starts_no_escape_is_malformed() {
        for path in ["/a/%zz", "/a/%4", "/a/%", "/a/b%g1/c"] {
            assert!(has_malformed_escape(path), "{path}");
        }
        for path in ["/a/b", "/a/%ff", "/a/%2F%2e", "/a/100%25"] {
            assert!(!has_malformed_escape(path), "{path}");
        }
    }
}
