//! The management plane's one error type and its table of codes. A handler, extractor or
//! middleware answers a [`ManagementError`] as it is; [`super::boundary`] renders it in the
//! envelope of the API that was called (`success: false`, `code`, `message`, `requestId`,
//! `httpStatusCode`, camelCase or PascalCase) and logs an internal failure's detail.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::access::AccessDenied;
use keygate_core::ids::IdError;
use keygate_core::key_import::BadLine;
use keygate_wire::envelope::{ErrorEnvelope, PlanErrorEnvelope};
use std::num::NonZeroU64;

use crate::operations::keys::KeyOperationError;
use crate::operations::{ErrorKind, OperationError};

/// A management error: HTTP status, stable code, message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 429: milliseconds until a retry may succeed (`x-acs-retry-after`). Non-zero,
    /// which also keeps the error small (see `fields`).
    pub retry_after_milliseconds: Option<std::num::NonZeroU64>,
    /// An internal failure's detail: logged once by the boundary, never answered.
    pub detail: Option<String>,
    /// A refused import's bad lines (`badLines` of the envelope); usually none. Boxed:
    /// errors travel in `Result`s, and clippy's `result_large_err` wants them small.
    pub bad_lines: Option<Box<Vec<keygate_wire::keygate_api::BadLine>>>,
}

impl ManagementError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ManagementError {
        ManagementError { status, code, message: message.into(), retry_after_milliseconds: None, detail: None, bad_lines: None }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ManagementError {
        OperationError::invalid_parameter(message).into()
    }

    pub fn forbidden(message: impl Into<String>) -> ManagementError {
        OperationError::forbidden(message).into()
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> ManagementError {
        OperationError::unauthenticated(code, message).into()
    }

    /// Internal failure: the caller gets a generic message, the boundary logs the detail.
    pub fn internal(detail: impl std::fmt::Display) -> ManagementError {
        OperationError::internal(detail).into()
    }
}

impl From<OperationError> for ManagementError {
    /// The status of each kind of refusal; an import's bad lines go in `badLines`.
    fn from(error: OperationError) -> Self {
        let status = match error.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after_seconds = error.retry_after_seconds();
        let bad_lines = (!error.bad_lines().is_empty()).then(|| Box::new(answered_bad_lines(error.bad_lines())));
        let detail = error.detail().map(str::to_string);
        let mut answered = ManagementError::new(status, error.code, error.message);
        answered.detail = detail;
        answered.retry_after_milliseconds = retry_after_seconds.and_then(|seconds| NonZeroU64::new(seconds.saturating_mul(1000)));
        answered.bad_lines = bad_lines;
        answered
    }
}

impl From<KeyOperationError> for ManagementError {
    fn from(error: KeyOperationError) -> Self {
        error.error.into()
    }
}

/// Bad lines of an import as the API answers them: `[{"line": 5, "reason": "..."}]`.
pub fn answered_bad_lines(bad: &[BadLine]) -> Vec<keygate_wire::keygate_api::BadLine> {
    bad.iter().map(|bad_line| keygate_wire::keygate_api::BadLine { line: bad_line.line, reason: bad_line.problem.to_string() }).collect()
}

impl From<crate::request_body::BodyReadError> for ManagementError {
    fn from(error: crate::request_body::BodyReadError) -> Self {
        use crate::request_body::BodyReadError;
        match error {
            BodyReadError::TooLarge { limit } => ManagementError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("The request body is larger than the limit of {limit} bytes."),
            ),
            BodyReadError::TimedOut { seconds } => ManagementError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!("The request body did not arrive within {seconds} seconds."),
            ),
            BodyReadError::Broken => ManagementError::invalid_parameter("The request body could not be read."),
        }
    }
}

/// Refusals that are operation errors first, answered with the status of their kind.
macro_rules! answered_as_operation_errors {
    ($($refusal:ty),*) => {$(
        impl From<$refusal> for ManagementError {
            fn from(refusal: $refusal) -> Self {
                OperationError::from(refusal).into()
            }
        }
    )*};
}

answered_as_operation_errors!(AccessDenied, IdError);

/// The two envelopes of the Model Studio API: camelCase for `/modelstudio/*` (and
/// keygate's own API), PascalCase for the Token Plan operations (`/tokenplan/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    ModelStudio,
    TokenPlan,
}

impl ErrorShape {
    /// The envelope a request to `path` answers in.
    pub fn for_path(path: &str) -> ErrorShape {
        if path.starts_with("/tokenplan/") {
            ErrorShape::TokenPlan
        } else {
            ErrorShape::ModelStudio
        }
    }
}

/// The error as it leaves a handler, an extractor or a middleware: its status, and the
/// error itself in the response's extensions, for [`super::boundary`] to render with the
/// request id in the envelope of the path and to log.
impl IntoResponse for ManagementError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl ManagementError {
    /// The error answered to the request `request_id` in `shape`'s envelope; an internal
    /// failure's detail is logged here, the one place every management error passes on its
    /// way out, and stays out of the answer.
    pub fn render(self, shape: ErrorShape, request_id: &str) -> Response {
        if let Some(detail) = &self.detail {
            log_internal_failure(request_id, detail);
        }
        let bad_lines = self.bad_lines.map(|bad_lines| *bad_lines);
        let (request_id, status, code, message) = (request_id.to_string(), self.status.as_u16(), self.code.to_string(), self.message);
        let mut response = match shape {
            ErrorShape::ModelStudio => {
                Json(ErrorEnvelope { request_id, code, message, http_status_code: status, success: false, bad_lines }).into_response()
            }
            // No Token Plan operation refuses with bad lines.
            ErrorShape::TokenPlan => {
                Json(PlanErrorEnvelope { request_id, code, message, http_status_code: status, success: false }).into_response()
            }
        };
        *response.status_mut() = self.status;
        if let Some(milliseconds) = self.retry_after_milliseconds {
            if let Ok(value) = HeaderValue::from_str(&milliseconds.to_string()) {
                response.headers_mut().insert("x-acs-retry-after", value);
            }
        }
        response
    }
}

/// Logs an internal failure of the request `request_id` with its detail: the one line an
/// operator finds it by (the caller was answered only the request id).
pub fn log_internal_failure(request_id: &str, detail: &str) {
    tracing::error!(request_id = %request_id, error = %detail, "internal error in the management API");
}
