//! A model call whose body names `model` twice is refused with a 400 in the protocol's own
//! error shape, and the upstream receives nothing: one JSON parser keeps the first member,
//! another the last, so a key limited to one model could otherwise be authorized on that
//! model and call the other. A `model` inside a nested object is not the call's model and
//! does not count.

use crate::gateway_calls::create_key;
use crate::gateway_forwarding::{forwarding_app, UpstreamDouble, DOUBLE_MODEL};
use crate::log_capture;
use crate::refusal_envelopes::{assert_logged, check_envelope, raw_request, Envelope};

/// A model of the catalog that the test's key may not call.
const OTHER_MODEL: &str = "qwen-max";

/// The three protocols: path, the header that carries the key, the envelope and the code of
/// a 400, and the rest of a body of that protocol.
const PROTOCOLS: [(&str, &str, Envelope, &str, &str); 3] = [
    (
        "/api/v1/services/aigc/text-generation/generation",
        "Authorization",
        Envelope::Native,
        "InvalidParameter",
        r#""input": {"prompt": "hi"}"#,
    ),
    (
        "/compatible-mode/v1/chat/completions",
        "Authorization",
        Envelope::OpenAi,
        "invalid_request_error",
        r#""messages": [{"role": "user", "content": "hi"}]"#,
    ),
    (
        "/apps/anthropic/v1/messages",
        "x-api-key",
        Envelope::Anthropic,
        "invalid_request_error",
        r#""max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]"#,
    ),
];

#[tokio::test]
async fn a_body_that_names_the_model_twice_is_refused_in_each_protocol_before_the_upstream() {
    log_capture::install();
    let double = UpstreamDouble::start().await;
    let (app, _) = forwarding_app("repeated_model", &double, None).await;
    let scoped =
        format!("auth.type=Custom&auth.modelAccessScope.allowAllModels=false&auth.modelAccessScope.accessibleModels.1={DOUBLE_MODEL}");
    let (_, key) = create_key(&app.login(None).await, "", &scoped).await;
    let repeated = [
        ("allowed first", format!(r#""model": "{DOUBLE_MODEL}", "model": "{OTHER_MODEL}""#)),
        ("allowed last", format!(r#""model": "{OTHER_MODEL}", "model": "{DOUBLE_MODEL}""#)),
        ("the same twice", format!(r#""model": "{DOUBLE_MODEL}", "model": "{DOUBLE_MODEL}""#)),
        ("spelt with an escape", format!(r#""model": "{DOUBLE_MODEL}", "mod\u0065l": "{OTHER_MODEL}""#)),
        ("one of them not a string", format!(r#""model": "{DOUBLE_MODEL}", "model": ["{OTHER_MODEL}"]"#)),
    ];
    for (path, key_header, envelope, code, rest) in PROTOCOLS {
        let credential = if key_header == "x-api-key" { key.clone() } else { format!("Bearer {key}") };
        let headers = [(key_header, credential.as_str()), ("Content-Type", "application/json")];
        // The control: the same call with one model reaches the double.
        let before = double.received().len();
        let single = format!(r#"{{"model": "{DOUBLE_MODEL}", "metadata": {{"model": "{OTHER_MODEL}"}}, {rest}}}"#);
        let answer = raw_request(app.address, "POST", path, &headers, single.as_bytes()).await;
        assert_eq!(answer.status, 200, "{path}: one model: {}", answer.body);
        assert_eq!(double.received().len(), before + 1, "{path}: the control call did not reach the upstream");

        for (case, members) in &repeated {
            let context = format!("{path}: {case}");
            let body = format!("{{{members}, {rest}}}");
            let answer = raw_request(app.address, "POST", path, &headers, body.as_bytes()).await;
            let request_id = check_envelope(&context, &answer, envelope, 400, code);
            let message = match envelope {
                Envelope::Native => answer.json()["message"].clone(),
                _ => answer.json()["error"]["message"].clone(),
            };
            assert_eq!(message, r#"The request body names "model" more than once."#, "{context}");
            assert_logged(&context, &request_id, 400).await;
        }
        assert_eq!(double.received().len(), before + 1, "{path}: a body with two models reached the upstream");
    }
}
