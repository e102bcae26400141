//! The one way out of the management plane's errors. Handlers, extractors and middleware
//! answer a [`ManagementError`] as it is (it rides in the response's extensions, see its
//! `IntoResponse`); [`answer_errors`], layered over the management routes, `/metrics` and
//! the console, renders it with the request's id in the envelope of the API the path
//! belongs to ([`ErrorShape::for_path`]) and logs an internal failure once, with its detail
//! and the request id. The console's pages carry an internal failure's detail out the
//! same way, as an [`InternalFailure`], for the same single log line.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::errors::{log_internal_failure, ErrorShape, ManagementError};
use crate::request_context::{new_request_id, RequestContext};

/// An internal failure's detail, carried out of a console page in its response's
/// extensions for [`answer_errors`] to log (the page shows only a generic message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalFailure(pub String);

/// Middleware: the management errors of the routes behind it rendered with the request id
/// in their path's envelope, and internal failures logged.
pub async fn answer_errors(request: Request, next: Next) -> Response {
    let shape = ErrorShape::for_path(request.uri().path());
    // The context middleware runs first on every router; a fresh id is only a safety net.
    let request_id = request.extensions().get::<RequestContext>().map_or_else(new_request_id, |context| context.request_id.clone());
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ManagementError>() {
        return error.render(shape, &request_id);
    }
    if let Some(InternalFailure(detail)) = response.extensions_mut().remove::<InternalFailure>() {
        log_internal_failure(&request_id, &detail);
    }
    response
}
