//! Reading a request body into memory under a size limit and a deadline: the one way any
//! surface buffers a body. A declared `Content-Length` over the limit is refused before a
//! byte is read, and a client that stops sending is cut off when the deadline passes, so
//! no client can hold memory or a connection open by sending slowly.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use http_body_util::BodyExt;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyReadError {
    /// Declared or sent more than `limit` bytes.
    TooLarge { limit: usize },
    /// Not finished within the deadline.
    TimedOut { seconds: u64 },
    /// The client went away or sent a malformed body.
    Broken,
}

/// Whether the request declares a body larger than `limit` (its `Content-Length`).
pub fn declares_more_than(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|declared| declared > limit as u64)
}

/// Reads `body` whole, at most `limit` bytes, within `deadline`.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize, deadline: Duration) -> Result<Bytes, BodyReadError> {
    if declares_more_than(headers, limit) {
        return Err(BodyReadError::TooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(deadline, limited.collect()).await {
        Err(_) => Err(BodyReadError::TimedOut { seconds: deadline.as_secs() }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(BodyReadError::TooLarge { limit }),
        Ok(Err(_)) => Err(BodyReadError::Broken),
    }
}

/// Largest body read on a route anyone may call (a login, the console's forms): a login is
/// a few hundred bytes, and a client nobody knows yet must not make the node hold more.
pub const UNAUTHENTICATED_BODY_BYTES: usize = 64 * 1024;

/// Middleware for the routes whose handlers read the body with axum's extractors (the
/// login API and the console): the body is read here first, whole, under
/// [`UNAUTHENTICATED_BODY_BYTES`] and the body-read deadline, so that a declared megabyte
/// is refused from the head alone and a client that sends slowly is cut off. A refusal is
/// in the shape of the path's plane.
pub async fn buffer_small_body(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    context: crate::request_context::RequestContext,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let (parts, body) = request.into_parts();
    let deadline = state.shared.settings.body_read_timeout();
    let refuse =
        |status, code, message: String| crate::planes::refusal_for_path(parts.uri.path(), status, code, &message, &context.request_id);
    match read_body(&parts.headers, body, UNAUTHENTICATED_BODY_BYTES, deadline).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, Body::from(bytes))).await,
        Err(BodyReadError::TooLarge { limit }) => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The request body is larger than the limit of {limit} bytes."),
        ),
        Err(BodyReadError::TimedOut { seconds }) => {
            refuse(StatusCode::REQUEST_TIMEOUT, "RequestTimeout", format!("The request body did not arrive within {seconds} s."))
        }
        Err(BodyReadError::Broken) => {
            refuse(StatusCode::BAD_REQUEST, "InvalidParameter", "The request body could not be read.".to_string())
        }
    }
}
