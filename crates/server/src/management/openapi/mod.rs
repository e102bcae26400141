//! The OpenAPI document of the management API, served at `/keygate/v1/openapi.json`.
//!
//! It is generated, never edited: `frame.json` holds the prose that is no type (the
//! introduction, the security schemes, the shared parameters and refusals), [`routes`]
//! holds one entry per route, and the schemas of the bodies are those `schemars` makes of
//! the `keygate_wire` types the handlers answer with, so the document cannot promise a
//! field the server does not send. `docs/openapi.json` is a copy for readers; a test fails
//! when it differs from what is generated (`KEYGATE_UPDATE_OPENAPI=1 cargo test -p
//! keygate-server openapi` writes it again), and another when a route the server
//! registers is missing from the table, or the table names one the server does not have.

pub mod routes;

use std::sync::OnceLock;

use axum::Json;
use keygate_wire::envelope::{ErrorEnvelope, PlanErrorEnvelope, SuccessEnvelope};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use routes::{RequestBody, ResponseBody, RouteDoc, ROUTES};

/// The parts of the document that are prose rather than types.
const FRAME: &str = include_str!("frame.json");

/// `GET /keygate/v1/openapi.json`: the document, generated once.
pub async fn openapi_document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(generate).clone())
}

/// The whole document.
pub fn generate() -> Value {
    let mut document: Value = serde_json::from_str(FRAME).expect("frame.json is JSON");
    // Answers are described as the server writes them (a field that is always sent is
    // required, `null` or not); requests as it reads them (a field with a default is not).
    let mut answers = SchemaSettings::openapi3().for_serialize().into_generator();
    let mut requests = SchemaSettings::openapi3().for_deserialize().into_generator();
    answers.subschema_for::<SuccessEnvelope>();
    answers.subschema_for::<ErrorEnvelope>();
    answers.subschema_for::<PlanErrorEnvelope>();
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths.entry(route.path).or_insert_with(|| json!({}));
        item[route.method] = operation(route, &mut requests, &mut answers);
    }
    document["paths"] = Value::Object(paths);
    let schemas = &mut document["components"]["schemas"];
    for (name, schema) in answers.take_definitions(true).into_iter().chain(requests.take_definitions(true)) {
        if let Some(earlier) = schemas.get(&name) {
            // One name, one schema: a type read and written alike must be described alike.
            assert_eq!(earlier, &schema, "two different schemas named {name}");
        }
        schemas[name] = schema;
    }
    document
}

/// A `$ref` to `components.<section>.<name>`.
fn reference(section: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{section}/{name}")})
}

/// The shared path parameter of each `{name}` in a path.
fn path_parameter(name: &str) -> Value {
    let shared = match name {
        "name" => "UserName",
        "workspaceId" => "WorkspaceId",
        "accessKeyId" => "AccessKeyId",
        "apiKeyId" => "ApiKeyId",
        other => panic!("no shared parameter for the path parameter {{{other}}}: add one to frame.json"),
    };
    reference("parameters", shared)
}

fn refusal_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyLogins",
        500 => "InternalError",
        other => panic!("no shared response for HTTP {other}: add one to frame.json"),
    }
}

fn in_json(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn schema_value<Body: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<Body>().to_value()
}

fn operation(route: &RouteDoc, requests: &mut SchemaGenerator, answers: &mut SchemaGenerator) -> Value {
    let mut operation = json!({"operationId": route.operation_id, "tags": [route.tag], "summary": route.summary});
    if !route.description.is_empty() {
        operation["description"] = json!(route.description);
    }
    let path_names = route.path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'));
    let mut parameters: Vec<Value> =
        path_names.map(path_parameter).chain(route.query.iter().map(|name| reference("parameters", name))).collect();
    match route.request {
        RequestBody::None => {}
        RequestBody::Json(request) => {
            operation["requestBody"] = json!({"required": true, "content": in_json(request(requests).to_value())});
        }
        // Each property of the type is a query field of its own name (`style: form`,
        // `explode: true`), as the SDKs send them.
        RequestBody::Query(request) => parameters.push(json!({
            "name": "fields", "in": "query", "style": "form", "explode": true, "schema": request(requests).to_value(),
        })),
        RequestBody::Form(request) => {
            let form = json!({"application/x-www-form-urlencoded": {"schema": request(requests).to_value()}});
            operation["requestBody"] = json!({"required": true, "content": form});
        }
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    let mut responses = Map::new();
    let mut success = match route.response {
        ResponseBody::Typed(body) => json!({
            "description": "Success: the envelope with the operation's fields.",
            "content": in_json(json!({"allOf": [schema_value::<SuccessEnvelope>(answers), body(answers).to_value()]})),
        }),
        ResponseBody::Document => {
            json!({"description": "This document (not in the envelope).", "content": in_json(json!({"type": "object"}))})
        }
        ResponseBody::Plan(body) => {
            let refusal = json!({
                "description": "A refusal, in the Token Plan envelope (`Success: false`) with the HTTP status of `HttpStatusCode`.",
                "content": in_json(schema_value::<PlanErrorEnvelope>(answers)),
            });
            responses.insert("default".into(), refusal);
            json!({"description": "Success: the Token Plan envelope, the operation's fields under `Data`.", "content": in_json(body(answers).to_value())})
        }
    };
    if route.csv {
        success["description"] = json!("Success: the envelope with the operation's fields; or, when CSV is asked for, its rows as CSV.");
        success["content"]["text/csv"] = json!({"schema": {"type": "string"}});
    }
    responses.insert("200".into(), success);
    for status in route.refusals {
        responses.insert(status.to_string(), reference("responses", refusal_name(*status)));
    }
    operation["responses"] = Value::Object(responses);
    if route.public {
        operation["security"] = json!([]);
    }
    operation
}

#[cfg(test)]
mod tests;
