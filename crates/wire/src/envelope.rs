//! The envelopes every management answer travels in (docs/CONTRACT.md#management-errors),
//! written by the server and read by the CLI: camelCase (`requestId`, `code`, `message`,
//! `httpStatusCode`, `success`) for the Model Studio API and keygate's own API, PascalCase
//! (`RequestId`, `Code`, ...) for the Token Plan operations. A success carries the
//! operation's own fields beside the envelope's (camelCase) or under `Data` (PascalCase);
//! a refusal carries its code and message, and an import's refusal its `badLines`.
//!
//! A refusal's fields all have defaults when read, so that a client still reads whatever
//! part of one a proxy or an older server answered.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keygate_api::BadLine;

/// The `code` of every success.
pub const SUCCESS_CODE: &str = "Success";

/// The envelope's own fields of every camelCase success, beside the operation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessEnvelope {
    /// Also in the `x-acs-request-id` response header.
    pub request_id: String,
    /// Always `Success`.
    pub code: String,
    /// Always empty.
    pub message: String,
    /// Always 200.
    pub http_status_code: u16,
    /// Always `true`.
    pub success: bool,
}

impl SuccessEnvelope {
    /// The envelope of a success answered to the request `request_id`.
    pub fn new(request_id: &str) -> SuccessEnvelope {
        SuccessEnvelope {
            request_id: request_id.to_string(),
            code: SUCCESS_CODE.to_string(),
            message: String::new(),
            http_status_code: 200,
            success: true,
        }
    }
}

/// A success of the Model Studio API or keygate's API: the envelope's fields, and the
/// operation's own fields (`body`) beside them at the top level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Success<T> {
    #[serde(flatten)]
    pub envelope: SuccessEnvelope,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Success<T> {
    /// `body` answered to the request `request_id` (200, code `Success`, no message).
    pub fn new(request_id: &str, body: T) -> Success<T> {
        Success { envelope: SuccessEnvelope::new(request_id), body }
    }
}

/// A refusal of the Model Studio API or keygate's API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorEnvelope {
    /// Empty only when the failure happened before a request id was given.
    pub request_id: String,
    /// Stable error code, e.g. `Forbidden`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// The HTTP status of the response.
    pub http_status_code: u16,
    /// Always `false`.
    pub success: bool,
    /// A refused key import's bad lines, each line of the caller's file with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_lines: Option<Vec<BadLine>>,
}

/// A success of the Token Plan operations: the envelope's fields, the operation's own under
/// `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
#[schemars(rename = "PlanSuccess_{T}")]
pub struct PlanSuccess<T> {
    pub request_id: String,
    /// Always `Success`.
    pub code: String,
    /// Always empty.
    pub message: String,
    /// Always 200.
    pub http_status_code: u16,
    /// Always `true`.
    pub success: bool,
    pub data: T,
}

impl<T> PlanSuccess<T> {
    /// `data` answered to the request `request_id` (200, code `Success`, no message).
    pub fn new(request_id: &str, data: T) -> PlanSuccess<T> {
        PlanSuccess {
            request_id: request_id.to_string(),
            code: SUCCESS_CODE.to_string(),
            message: String::new(),
            http_status_code: 200,
            success: true,
            data,
        }
    }
}

/// A refusal of the Token Plan operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlanErrorEnvelope {
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub http_status_code: u16,
    /// Always `false`.
    pub success: bool,
}

/// A success without fields of its own (UpdateApiKey, DeleteApiKey, ...): `{}` beside the
/// envelope's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_camel_case_success_puts_the_body_beside_the_envelope() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            error_message: String,
        }
        let answer = Success::new("REQ-1", Body { error_message: String::new() });
        let expected =
            json!({"requestId": "REQ-1", "code": "Success", "message": "", "httpStatusCode": 200, "success": true, "errorMessage": ""});
        assert_eq!(serde_json::to_value(&answer).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Success<Body>>(expected).unwrap(), answer);
        let empty = serde_json::to_value(Success::new("REQ-2", Empty {})).unwrap();
        assert_eq!(empty, json!({"requestId": "REQ-2", "code": "Success", "message": "", "httpStatusCode": 200, "success": true}));
        let text = r#"{"requestId":"R","code":"Success","message":"","httpStatusCode":200,"success":true,"deleted":true}"#;
        let answer: Success<crate::keygate_api::Deleted> = serde_json::from_str(text).unwrap();
        assert_eq!((answer.envelope.request_id.as_str(), answer.body.deleted), ("R", true));
        assert_eq!(serde_json::to_string(&answer).unwrap(), text);
    }

    #[test]
    fn refusals_in_both_cases_read_and_write_alike() {
        let captured = json!({
            "requestId": "REQ-3", "code": "InvalidParameter", "message": "Nothing was imported.", "httpStatusCode": 400,
            "success": false, "badLines": [{"line": 2, "reason": "not a key"}],
        });
        let refusal: ErrorEnvelope = serde_json::from_value(captured.clone()).unwrap();
        assert_eq!(refusal.bad_lines.as_ref().unwrap()[0].line, 2);
        assert_eq!(serde_json::to_value(&refusal).unwrap(), captured);
        let plan = json!({"RequestId": "REQ-4", "Code": "Forbidden", "Message": "No.", "HttpStatusCode": 403, "Success": false});
        assert_eq!(serde_json::to_value(serde_json::from_value::<PlanErrorEnvelope>(plan.clone()).unwrap()).unwrap(), plan);
    }

    #[test]
    fn a_refusal_has_bad_lines_only_when_there_are_some_and_reads_when_partial() {
        let refusal = ErrorEnvelope {
            request_id: "R".into(),
            code: "Forbidden".into(),
            message: "no".into(),
            http_status_code: 403,
            success: false,
            bad_lines: None,
        };
        assert_eq!(
            serde_json::to_value(&refusal).unwrap(),
            json!({"requestId": "R", "code": "Forbidden", "message": "no", "httpStatusCode": 403, "success": false})
        );
        let partial: ErrorEnvelope = serde_json::from_str(r#"{"code": "Throttling"}"#).unwrap();
        assert_eq!((partial.code.as_str(), partial.request_id.as_str()), ("Throttling", ""));
    }

    #[test]
    fn a_plan_success_puts_the_body_under_data() {
        let answer = PlanSuccess::new("REQ-5", json!({"ApiKeyId": "7"}));
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            json!({"RequestId": "REQ-5", "Code": "Success", "Message": "", "HttpStatusCode": 200, "Success": true, "Data": {"ApiKeyId": "7"}})
        );
    }
}
