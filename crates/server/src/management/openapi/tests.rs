//! The document against its committed copy, and the route table against the routes the
//! server registers.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;

fn committed_copy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// The generated document as it is committed: pretty, with a final newline.
fn generated_text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).expect("the document serializes");
    text.push('\n');
    text
}

#[test]
fn the_committed_copy_is_the_generated_document() {
    let generated = generated_text();
    if std::env::var_os("KEYGATE_UPDATE_OPENAPI").is_some_and(|value| value == "1") {
        std::fs::write(committed_copy(), &generated).expect("writing docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(committed_copy()).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the generated document; run `KEYGATE_UPDATE_OPENAPI=1 cargo test -p keygate-server openapi` and commit it"
    );
}

/// A path as axum registers it (`{workspace_id}`) in OpenAPI's form (`{workspaceId}`).
fn openapi_path(path: &str) -> String {
    let mut converted = String::new();
    let mut upper_next = false;
    let mut in_parameter = false;
    for character in path.chars() {
        match character {
            '{' => in_parameter = true,
            '}' => in_parameter = false,
            '_' if in_parameter => {
                upper_next = true;
                continue;
            }
            _ => {}
        }
        converted.extend(if upper_next { character.to_uppercase().collect::<Vec<_>>() } else { vec![character] });
        upper_next = false;
    }
    converted
}

/// The text of one `.route(...)` call starting at `start` (just after `.route(`), up to its
/// closing parenthesis.
fn call_arguments(source: &str, start: usize) -> &str {
    let mut depth = 1;
    for (offset, character) in source[start..].char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &source[start..start + offset];
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed .route( call");
}

/// Every (method, path) registered with `.route("...", ...)` in the management API's
/// source files: the method routers `get(`, `post(`, `put(`, `delete(`, `patch(` named in
/// the call.
fn registered_routes() -> BTreeSet<(String, String)> {
    let management = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/management");
    let files = ["keygate_api/mod.rs", "model_studio.rs", "token_plan.rs"];
    let mut registered = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(management.join(file)).expect("reading a management source file");
        for (position, _) in source.match_indices(".route(") {
            let arguments = call_arguments(&source, position + ".route(".len());
            let (path, methods) = arguments.split_once(',').expect("a path and a method router");
            let path = match path.trim() {
                "key_import::IMPORT_PATH" => crate::management::keygate_api::key_import::IMPORT_PATH.to_string(),
                literal => literal.trim_matches('"').to_string(),
            };
            assert!(path.starts_with('/'), "{file}: a route path that is neither a literal nor known: {path}");
            let mut found = false;
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = format!("{method}(");
                let named = methods
                    .match_indices(&called)
                    .any(|(at, _)| at == 0 || !methods[..at].ends_with(|before: char| before.is_ascii_alphanumeric() || before == '_'));
                if named {
                    registered.insert((method.to_string(), openapi_path(&path)));
                    found = true;
                }
            }
            assert!(found, "{file}: no method router in .route({arguments})");
        }
    }
    registered
}

#[test]
fn every_registered_route_is_in_the_document_and_nothing_else() {
    let registered = registered_routes();
    assert!(registered.len() > 30, "the scan found too few routes: {registered:?}");
    let document = generate();
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            described.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(described, registered);
}

#[test]
fn every_operation_answers_200_and_needs_credentials_unless_public() {
    let document = generate();
    let mut operation_ids = BTreeSet::new();
    for route in ROUTES {
        let operation = &document["paths"][route.path][route.method];
        assert!(operation_ids.insert(route.operation_id), "{} twice", route.operation_id);
        assert!(operation["responses"]["200"].is_object(), "{} {}", route.method, route.path);
        let public = route.path == "/keygate/v1/sessions" || route.path == "/keygate/v1/openapi.json";
        assert_eq!(route.public, public, "{} {}: security", route.method, route.path);
        if !public && !route.path.starts_with("/tokenplan/") {
            assert!(route.refusals.contains(&401), "{} {} has no 401 response", route.method, route.path);
        }
    }
}

#[test]
fn an_audit_entry_is_described_with_every_field_required() {
    let document = generate();
    let schema = &document["components"]["schemas"]["AuditEntry"];
    let mut required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    let mut described: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    required.sort_unstable();
    described.sort_unstable();
    assert_eq!(required, described);
    assert!(required.contains(&"credential"));
}

#[test]
fn every_reference_names_something_the_document_has() {
    let document = generate();
    let text = document.to_string();
    for (position, _) in text.match_indices("\"$ref\":\"#/") {
        let start = position + "\"$ref\":\"#/".len();
        let pointer = &text[start..start + text[start..].find('"').unwrap()];
        assert!(document.pointer(&format!("/{pointer}")).is_some(), "a $ref to a missing #/{pointer}");
    }
}
