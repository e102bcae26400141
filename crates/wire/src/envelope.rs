//! The envelopes every management answer travels in (docs/CONTRACT.md#management-errors):
//! camelCase (`requestId`, `code`, `message`, `httpStatusCode`, `success`) for the Model
//! Studio API and keygate's own API, PascalCase (`RequestId`, `Code`, ...) for the Token
//! Plan operations. A success carries the operation's own fields beside the envelope's
//! (camelCase) or under `Data` (PascalCase); an error carries its code and message, and
//! now and then a few fields more (an import's `badLines`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `code` of every success.
pub const SUCCESS_CODE: &str = "Success";

/// A success of the Model Studio API or keygate's API: the envelope's fields, and the
/// operation's own fields (`body`) beside them at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Success<T> {
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub http_status_code: u16,
    pub success: bool,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Success<T> {
    /// `body` answered to the request `request_id` (200, code `Success`, no message).
    pub fn new(request_id: &str, body: T) -> Success<T> {
        Success {
            request_id: request_id.to_string(),
            code: SUCCESS_CODE.to_string(),
            message: String::new(),
            http_status_code: 200,
            success: true,
            body,
        }
    }
}

/// A refusal of the Model Studio API or keygate's API. `more` holds the few fields some
/// refusals carry besides (an import's `badLines`), never one of the envelope's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub http_status_code: u16,
    pub success: bool,
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
}

/// A success of the Token Plan operations: the envelope's fields, the operation's own under
/// `Data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PlanSuccess<T> {
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub http_status_code: u16,
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

/// A refusal of the Token Plan operations; `more` as in [`Failure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PlanFailure {
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub http_status_code: u16,
    pub success: bool,
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
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
    }

    #[test]
    fn failures_in_both_cases_keep_their_extra_fields() {
        let captured = json!({
            "requestId": "REQ-3", "code": "InvalidParameter", "message": "Nothing was imported.", "httpStatusCode": 400,
            "success": false, "badLines": [{"line": 2, "reason": "not a key"}],
        });
        let failure: Failure = serde_json::from_value(captured.clone()).unwrap();
        assert_eq!(failure.more["badLines"][0]["line"], 2);
        assert_eq!(serde_json::to_value(&failure).unwrap(), captured);
        let plan = json!({"RequestId": "REQ-4", "Code": "Forbidden", "Message": "No.", "HttpStatusCode": 403, "Success": false});
        assert_eq!(serde_json::to_value(serde_json::from_value::<PlanFailure>(plan.clone()).unwrap()).unwrap(), plan);
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
