//! The envelope every management answer comes in (docs/CONTRACT.md#management-errors):
//! the success fields merged with an operation's own, or the error fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The fields of every successful answer, next to the operation's own.
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

/// A successful answer as a client reads it: the envelope and the operation's fields `T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enveloped<T> {
    #[serde(flatten)]
    pub envelope: SuccessEnvelope,
    #[serde(flatten)]
    pub body: T,
}

/// A refusal. Every field has a default when read, so that a client still reads whatever
/// part of it a proxy or an older server answered.
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
    pub bad_lines: Option<Vec<crate::keygate_api::key_import::BadLine>>,
}

/// The answer of a deletion: `{"deleted": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_success_is_read_with_the_operations_fields_beside_the_envelope() {
        let text = r#"{"requestId":"R","code":"Success","message":"","httpStatusCode":200,"success":true,"deleted":true}"#;
        let answer: Enveloped<Deleted> = serde_json::from_str(text).unwrap();
        assert_eq!(answer.envelope.request_id, "R");
        assert!(answer.body.deleted);
        assert_eq!(serde_json::to_string(&answer).unwrap(), text);
    }

    #[test]
    fn an_error_envelope_has_bad_lines_only_when_there_are_some() {
        let error = ErrorEnvelope {
            request_id: "R".into(),
            code: "Forbidden".into(),
            message: "no".into(),
            http_status_code: 403,
            success: false,
            bad_lines: None,
        };
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"requestId": "R", "code": "Forbidden", "message": "no", "httpStatusCode": 403, "success": false})
        );
        let partial: ErrorEnvelope = serde_json::from_str(r#"{"code": "Throttling"}"#).unwrap();
        assert_eq!((partial.code.as_str(), partial.request_id.as_str()), ("Throttling", ""));
    }
}
