//! The model a call is authorized on, read from its JSON body in one pass
//! (`keygate_wire::model_call_body`), against serde_json's own reading of the same body.
//!
//! Invariants:
//! - a body that is read is one JSON object (as serde_json reads it), its model is that
//!   object's top-level `model` when a string and nothing otherwise, and its stream flag
//!   is the top-level `stream` being `true`;
//! - a body serde_json reads as an object is read, unless it names `model` twice;
//! - a body refused as not an object is not one JSON object;
//! - once a body is read, adding another top-level `model` (spelled with an escape) makes
//!   it refused as naming `model` twice when it had one, and makes the new model the one
//!   read when it had none: no body can show one model to keygate and another upstream.

#![no_main]

use keygate_wire::model_call_body::{read_model_call_body, ModelCallBody, ModelCallBodyError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let read = read_model_call_body(data);
    // serde_json's tree: `None` where it refuses for what the one-pass reader does not
    // look at in the values it skips: nesting deeper than 128, a number beyond f64, a
    // `\u` escape of half a surrogate pair. None of these can move where a string or a
    // member ends, so no provider can find another member there.
    let tree = match serde_json::from_slice::<Value>(data) {
        Ok(value) => Some(Ok(value)),
        Err(error) if SKIPPED_VALUE_LIMITS.iter().any(|limit| error.to_string().starts_with(limit)) => None,
        Err(_) => Some(Err(())),
    };
    match (&read, &tree) {
        (Ok(body), Some(Ok(Value::Object(object)))) => {
            assert_eq!(body.model.as_deref(), object.get("model").and_then(Value::as_str), "{:?}", String::from_utf8_lossy(data));
            assert_eq!(body.stream, object.get("stream") == Some(&Value::Bool(true)));
        }
        (Ok(_), Some(other)) => panic!("read a body serde_json reads as {other:?}"),
        (Err(ModelCallBodyError::NotAnObject), Some(Ok(Value::Object(_)))) => {
            panic!("refused an object: {:?}", String::from_utf8_lossy(data))
        }
        _ => {}
    }
    if let Ok(body) = read {
        check_second_model(data, &body, tree.and_then(Result::ok));
    }
});

const SKIPPED_VALUE_LIMITS: [&str; 4] =
    ["recursion limit exceeded", "number out of range", "lone leading surrogate in hex escape", "unexpected end of hex escape"];

fn is_json_whitespace(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn check_second_model(data: &[u8], body: &ModelCallBody, tree: Option<Value>) {
    let end = data.iter().rposition(|byte| !is_json_whitespace(byte)).expect("an object is not blank");
    assert_eq!(data[end], b'}');
    let start = data.iter().position(|byte| !is_json_whitespace(byte)).expect("an object is not blank");
    let empty = data[start + 1..end].iter().all(is_json_whitespace);
    let mut second = data[..end].to_vec();
    if !empty {
        second.push(b',');
    }
    second.extend_from_slice(br#""mod\u0065l":"injected""#);
    second.extend_from_slice(&data[end..]);
    let read = read_model_call_body(&second);
    let had_model = match &tree {
        Some(Value::Object(object)) => Some(object.contains_key("model")),
        _ => None,
    };
    match (read, had_model) {
        (Err(ModelCallBodyError::RepeatedModel), Some(false)) => panic!("no model, yet a repeated one"),
        (Err(ModelCallBodyError::RepeatedModel), _) => {}
        (Ok(again), Some(false) | None) if body.model.is_none() => {
            assert_eq!(again.model.as_deref(), Some("injected"));
            assert_eq!(again.stream, body.stream);
        }
        (other, _) => panic!("a second model in {:?} gave {other:?}", String::from_utf8_lossy(&second)),
    }
}
