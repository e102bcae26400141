//! The management plane's one error type and its table of codes, answered in the Model
//! Studio envelope (`success: false`, `code`, `message`, `requestId`, `httpStatusCode`).
//! Internal failures are logged with their detail and answered with a generic message.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::access::AccessDenied;
use keygate_core::ids::IdError;
use keygate_core::key_import::BadLine;
use serde_json::json;
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
    /// Filled in by [`ManagementError::with_request_id`] before answering.
    pub request_id: String,
    /// More fields of the error envelope (e.g. an import's `badLines`); usually none. Boxed:
    /// errors travel in `Result`s, and clippy's `result_large_err` wants them small.
    pub fields: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl ManagementError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ManagementError {
        ManagementError { status, code, message: message.into(), retry_after_milliseconds: None, request_id: String::new(), fields: None }
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

    /// Internal failure: the detail goes to the log, the caller gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> ManagementError {
        OperationError::internal(detail).into()
    }

    /// Adds a field to the error envelope.
    pub fn with_field(mut self, name: &str, value: serde_json::Value) -> ManagementError {
        self.fields.get_or_insert_with(Box::default).insert(name.to_string(), value);
        self
    }

    pub fn with_request_id(mut self, request_id: &str) -> ManagementError {
        self.request_id = request_id.to_string();
        self
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
        let bad_lines = (!error.bad_lines().is_empty()).then(|| bad_lines_json(error.bad_lines()));
        let mut answered = ManagementError::new(status, error.code, error.message);
        answered.retry_after_milliseconds = retry_after_seconds.and_then(|seconds| NonZeroU64::new(seconds.saturating_mul(1000)));
        if let Some(bad_lines) = bad_lines {
            answered = answered.with_field("badLines", bad_lines);
        }
        answered
    }
}

impl From<KeyOperationError> for ManagementError {
    fn from(error: KeyOperationError) -> Self {
        error.error.into()
    }
}

/// Bad lines of an import as the API names them: `[{"line": 5, "reason": "..."}]`.
pub fn bad_lines_json(bad: &[BadLine]) -> serde_json::Value {
    serde_json::Value::Array(bad.iter().map(|bad_line| json!({"line": bad_line.line, "reason": bad_line.problem.to_string()})).collect())
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

impl From<AccessDenied> for ManagementError {
    fn from(denied: AccessDenied) -> Self {
        OperationError::from(denied).into()
    }
}

impl From<IdError> for ManagementError {
    fn from(error: IdError) -> Self {
        OperationError::from(error).into()
    }
}

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

impl IntoResponse for ManagementError {
    fn into_response(self) -> Response {
        self.into_response_shaped(ErrorShape::ModelStudio)
    }
}

impl ManagementError {
    /// The error answered in `shape`'s envelope.
    pub fn into_response_shaped(self, shape: ErrorShape) -> Response {
        let mut body = match shape {
            ErrorShape::ModelStudio => json!({
                "requestId": self.request_id,
                "code": self.code,
                "message": self.message,
                "httpStatusCode": self.status.as_u16(),
                "success": false,
            }),
            ErrorShape::TokenPlan => json!({
                "RequestId": self.request_id,
                "Code": self.code,
                "Message": self.message,
                "HttpStatusCode": self.status.as_u16(),
                "Success": false,
            }),
        };
        if let Some(envelope) = body.as_object_mut() {
            for (name, value) in self.fields.map(|fields| *fields).unwrap_or_default() {
                envelope.entry(name).or_insert(value);
            }
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(milliseconds) = self.retry_after_milliseconds {
            if let Ok(value) = HeaderValue::from_str(&milliseconds.to_string()) {
                response.headers_mut().insert("x-acs-retry-after", value);
            }
        }
        response
    }
}

/// A successful envelope: `fields` merged with `requestId`, `code`, `message`,
/// `httpStatusCode` and `success: true`.
pub fn success(request_id: &str, fields: serde_json::Value) -> Response {
    let mut body = json!({
        "requestId": request_id,
        "code": "Success",
        "message": "",
        "httpStatusCode": 200,
        "success": true,
    });
    if let (Some(target), serde_json::Value::Object(extra)) = (body.as_object_mut(), fields) {
        target.extend(extra);
    }
    (StatusCode::OK, Json(body)).into_response()
}
