//! serde's JSON errors told back to a client (`keygate_wire::json_errors`): whatever the
//! body, the description of why it was refused repeats none of its quoted strings.
//!
//! The first byte picks the request type (shapes of keygate's JSON API); the rest is the
//! body. Every string literal of the body that is not a plain field name (the only thing
//! a description may repeat: at most 40 of `A-Za-z0-9_.`, not starting with `sk`/`st`) is
//! marked: a marker character goes between each two of its characters (an escape counts as
//! one) and at both ends. Serde's messages are ASCII, so a marker in a description means
//! that two or more characters of a quoted string got through.
//!
//! Invariant: the description of the error of a marked body contains no marker.

#![no_main]

use std::collections::BTreeMap;

use keygate_wire::json_errors::describe_json_error;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// Printable (so that `{:?}` in serde's messages shows it as is) and never in serde's text.
const MARKER: char = '☃';

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ImportRequest {
    region: Option<String>,
    workspace_id: Option<String>,
    keys: Vec<ImportEntry>,
    #[serde(default)]
    skip_bad: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ImportEntry {
    line: Option<u64>,
    key: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
enum Role {
    Admin,
    Developer,
    Viewer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct UserRequest {
    name: String,
    role: Role,
    expire_in_seconds: Option<i64>,
    labels: BTreeMap<String, u8>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
#[allow(dead_code)]
enum Scope {
    All,
    Custom { models: Vec<String>, ips: Vec<String> },
}

fn error_of(kind: u8, body: &[u8]) -> Option<serde_json::Error> {
    match kind % 6 {
        0 => serde_json::from_slice::<ImportRequest>(body).err(),
        1 => serde_json::from_slice::<UserRequest>(body).err(),
        2 => serde_json::from_slice::<Scope>(body).err(),
        3 => serde_json::from_slice::<Vec<Role>>(body).err(),
        4 => serde_json::from_slice::<BTreeMap<String, Vec<u32>>>(body).err(),
        _ => serde_json::from_slice::<(bool, String, Role)>(body).err(),
    }
}

/// What the redaction may repeat.
fn is_plain_field_name(content: &str) -> bool {
    content.len() <= 40
        && content.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.')
        && !content.starts_with("sk")
        && !content.starts_with("st")
}

/// The body with the marker inside every string literal that is not a plain field name.
fn mark(body: &str) -> String {
    let mut marked = String::with_capacity(body.len() * 2);
    let mut characters = body.chars().peekable();
    while let Some(character) = characters.next() {
        marked.push(character);
        if character != '"' {
            continue;
        }
        // One literal as units: an escape (`\x`, `\uXXXX`) or one character.
        let mut units: Vec<String> = Vec::new();
        let mut closed = false;
        while let Some(inner) = characters.next() {
            match inner {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => {
                    let mut unit = String::from('\\');
                    if let Some(escaped) = characters.next() {
                        unit.push(escaped);
                        if escaped == 'u' {
                            for _ in 0..4 {
                                if let Some(digit) = characters.next_if(char::is_ascii_hexdigit) {
                                    unit.push(digit);
                                }
                            }
                        }
                    }
                    units.push(unit);
                }
                other => units.push(other.to_string()),
            }
        }
        let content: String = units.concat();
        if is_plain_field_name(&content) {
            marked.push_str(&content);
        } else {
            marked.push(MARKER);
            for unit in units {
                marked.push_str(&unit);
                marked.push(MARKER);
            }
        }
        if closed {
            marked.push('"');
        }
    }
    marked
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let Ok(body) = std::str::from_utf8(body) else { return };
    // The marker must come only from marking (an escaped one would decode to it).
    if body.contains(MARKER) || body.contains("\\u2603") {
        return;
    }
    let marked = mark(body);
    let Some(error) = error_of(kind, marked.as_bytes()) else { return };
    let description = describe_json_error(&error);
    assert!(!description.contains(MARKER), "{description:?} repeats a quoted string of {marked:?} (serde said {error})");
});
