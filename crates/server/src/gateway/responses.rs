//! The OpenAI Responses API (docs/CONTRACT.md#responses-api), as the Codex CLI and the
//! `openai` SDK's `responses` call it, under `/compatible-mode/v1/responses` and Model
//! Studio's own base `/api/v2/apps/protocols/compatible-mode/v1/responses`.
//!
//! Creating a response is a model call like any other (the pipeline of `gateway::mod`,
//! with the upstream's Responses base URL). What is particular to this API is that a
//! response lives on at the provider and is named again by id: retrieved, deleted, its
//! input items listed, or continued with `previous_response_id`. The provider holds every
//! response under the deployment's one credential, so keygate records which workspace made
//! each id ([`crate::provider_objects`]) and lets only keys of that workspace name it; an id
//! it does not know is answered 404 and never forwarded.
//!
//! The demo answers the API too, with the same events a provider streams, and keeps its
//! responses in memory for retrieval.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate_core::usage::TokenUsage;
use keygate_core::verification::CallTarget;
use serde_json::{json, Value};

use super::accounting::CallMeter;
use super::authorize::{authenticate_request, authorize_target, Authorized};
use super::errors::{GatewayRefusal, Protocol};
use super::{demo, forward_target, respond, upstream};
use crate::planes::Path;
use crate::provider_objects::{DemoObject, ObjectKind, ProviderObject};
use crate::request_context::RequestContext;
use crate::request_headers::RequestHeaders;
use crate::state::AppState;

/// Model Studio's own base of the API, which answers in the OpenAI-compatible shape.
pub const MODEL_STUDIO_RESPONSES_BASE: &str = "/api/v2/apps/protocols/compatible-mode/v1";
/// The bases the API is served under: OpenAI-compatible, and Model Studio's own.
pub const RESPONSES_PREFIXES: [&str; 2] = ["/compatible-mode/v1", MODEL_STUDIO_RESPONSES_BASE];

/// The routes of the API under each of [`RESPONSES_PREFIXES`].
pub fn routes() -> Router<AppState> {
    RESPONSES_PREFIXES.iter().fold(Router::new(), |router, prefix| {
        router
            .route(&format!("{prefix}/responses"), post(super::responses_call))
            .route(&format!("{prefix}/responses/{{response_id}}"), get(named_response).delete(named_response))
            .route(&format!("{prefix}/responses/{{response_id}}/input_items"), get(named_response))
            .route(&format!("{prefix}/responses/{{response_id}}/cancel"), post(named_response))
    })
}

fn not_found(id: &str) -> GatewayRefusal {
    let shown = keygate_core::keys::shown_input(id, 100);
    GatewayRefusal::Unrouted {
        status: StatusCode::NOT_FOUND,
        native_code: "NotFound",
        message: format!("Response with id '{shown}' not found."),
    }
}

/// The response this key may name: made in its workspace, with a model it may call.
fn owned_response(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    headers: RequestHeaders<'_>,
    id: &str,
) -> Result<ProviderObject, GatewayRefusal> {
    let object =
        state.shared.provider_objects.get(ObjectKind::Response, id).filter(|object| *object.workspace_id == *authorized.key.workspace_id);
    let object = object.ok_or_else(|| not_found(id))?;
    authorize_target(state, authorized, context, headers, CallTarget::Model(&object.model))?;
    Ok(object)
}

/// Refuses a create whose `previous_response_id` this key may not name (before anything is
/// forwarded: the provider would continue any response it holds).
pub(super) fn check_previous_response(
    state: &AppState,
    authorized: &Authorized,
    context: &RequestContext,
    headers: RequestHeaders<'_>,
    body: &[u8],
) -> Result<(), GatewayRefusal> {
    // A fast path: most creates do not continue a response.
    if memchr::memmem::find(body, b"previous_response_id").is_none() {
        return Ok(());
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match request.get("previous_response_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) => owned_response(state, authorized, context, headers, id).map(|_| ()),
        Some(_) => Err(GatewayRefusal::BadRequest("previous_response_id must be a string.".into())),
    }
}

/// `GET`/`DELETE /responses/{id}`, `GET /responses/{id}/input_items`, `POST
/// /responses/{id}/cancel`: answered by the demo for its own responses, else forwarded to
/// the upstream that holds the response, once the key may name it.
async fn named_response(
    State(state): State<AppState>,
    context: RequestContext,
    Path(response_id): Path<String>,
    request: Request,
) -> Response {
    let result = serve_named_response(&state, &context, &response_id, request).await;
    respond(&state, Protocol::OpenAi, &context, result)
}

async fn serve_named_response(state: &AppState, context: &RequestContext, id: &str, request: Request) -> Result<Response, GatewayRefusal> {
    let (parts, _body) = request.into_parts();
    let target = forward_target(Protocol::OpenAi, &parts.uri)?;
    let authorized = authenticate_request(state, Protocol::OpenAi, (&parts.headers).into(), context)?;
    authorize_target(state, &authorized, context, (&parts.headers).into(), CallTarget::Nothing)?;
    let object = owned_response(state, &authorized, context, (&parts.headers).into(), id)?;
    let action = parts.uri.path().rsplit('/').next().unwrap_or("");
    if let Some(DemoObject::Response { response, input_items }) = object.demo.as_deref() {
        return demo_named(state, id, response, input_items, &parts.method, action);
    }
    // The upstream that holds the response, if it still serves the model.
    let upstream = object.upstream.as_deref().and_then(|name| state.shared.upstreams.serving_by_name(&object.model, name));
    let Some(upstream) = upstream else {
        return Err(not_found(id));
    };
    let forwarded = upstream::Forwarded {
        protocol: Protocol::OpenAi,
        responses: true,
        method: parts.method.clone(),
        target: &target,
        headers: (&parts.headers).into(),
        request_id: &context.request_id,
        header_room: 0,
    };
    let answer = upstream::forward(&upstream, forwarded, Bytes::new(), None, false).await?;
    if parts.method == Method::DELETE && answer.status().is_success() {
        state.shared.provider_objects.forget(ObjectKind::Response, id);
    }
    Ok(answer)
}

fn demo_named(
    state: &AppState,
    id: &str,
    response: &Value,
    input_items: &[Value],
    method: &Method,
    action: &str,
) -> Result<Response, GatewayRefusal> {
    Ok(match (method, action) {
        (&Method::DELETE, _) => {
            state.shared.provider_objects.forget(ObjectKind::Response, id);
            Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
        }
        (_, "input_items") => Json(json!({
            "object": "list",
            "data": input_items,
            "first_id": input_items.first().and_then(|item| item.get("id")),
            "last_id": input_items.last().and_then(|item| item.get("id")),
            "has_more": false,
        }))
        .into_response(),
        // A demo response is complete when it is made: there is nothing left to cancel.
        (_, "cancel") => {
            return Err(GatewayRefusal::BadRequest(
                "Only a response that is still in progress can be cancelled; this one has completed.".into(),
            ))
        }
        _ => Json(response.clone()).into_response(),
    })
}

// ---- the demo ---------------------------------------------------------------------------

fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    keygate_core::random::fill_random(&mut bytes);
    hex::encode(bytes)
}

/// The text of an input item's content: a string, or the text of its parts.
fn item_text(item: &Value) -> String {
    match item.get("content").or_else(|| item.get("output")) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

/// The request's input as items, each with an id (a string input is one user message).
fn input_items(request: &Value) -> Vec<Value> {
    let items = match request.get("input") {
        Some(Value::String(text)) => vec![json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|mut item| {
            if let Value::Object(fields) = &mut item {
                fields.entry("id").or_insert_with(|| json!(format!("msg_{}", random_hex())));
                fields.entry("type").or_insert_with(|| json!("message"));
            }
            item
        })
        .collect()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Answers a create with a demo model: the echo of the last user message, as a JSON
/// response or the event stream a provider sends, remembered for retrieval; the call is
/// counted with the usage it reports.
pub(super) fn demo_create(
    state: &AppState,
    authorized: &Authorized,
    model: &str,
    body: &[u8],
    streaming: bool,
    meter: Option<CallMeter>,
) -> Result<Response, GatewayRefusal> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        if let Some(meter) = meter {
            meter.finish(400, TokenUsage::default(), None, None);
        }
        return Err(GatewayRefusal::BadRequest("The request body must be a JSON object.".into()));
    };
    let items = input_items(&request);
    let heard = items.iter().rev().find(|item| item.get("role").and_then(Value::as_str) == Some("user")).map(item_text).unwrap_or_default();
    let reply = format!("{}echo: {heard}", demo::DEMO_PREFIX);
    let instructions = request.get("instructions").and_then(Value::as_str).unwrap_or("");
    let input_tokens = words(instructions) + items.iter().map(|item| words(&item_text(item))).sum::<usize>();
    let output_tokens = words(&reply);
    let (response_id, message_id) = (format!("resp_{}", random_hex()), format!("msg_{}", random_hex()));
    let created_at = authorized.at_milliseconds.div_euclid(1000);
    let message = |text: &str, status: &str| json!({"type": "message", "id": message_id, "status": status, "role": "assistant", "content": if status == "completed" { json!([{"type": "output_text", "text": text, "annotations": []}]) } else { json!([]) }});
    let response_with = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": response_id, "object": "response", "created_at": created_at, "status": status, "model": model,
            "output": output, "usage": usage, "error": null, "incomplete_details": null,
            "instructions": request.get("instructions").cloned().unwrap_or(Value::Null),
            "previous_response_id": request.get("previous_response_id").cloned().unwrap_or(Value::Null),
            "metadata": request.get("metadata").cloned().unwrap_or(json!({})),
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": request.get("tools").cloned().unwrap_or(json!([])),
            "temperature": 1.0, "top_p": 1.0, "truncation": "disabled", "store": true, "text": {"format": {"type": "text"}},
        })
    };
    let usage = json!({
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    });
    let completed = response_with("completed", vec![message(&reply, "completed")], usage);
    state.shared.provider_objects.remember(
        ObjectKind::Response,
        &response_id,
        ProviderObject {
            workspace_id: authorized.key.workspace_id.to_string(),
            model: model.to_string(),
            upstream: None,
            demo: Some(Arc::new(DemoObject::Response { response: completed.clone(), input_items: items })),
        },
    );
    if let Some(meter) = meter {
        let tokens = TokenUsage { input: input_tokens as i64, output: output_tokens as i64, cached: 0, reasoning: 0 };
        meter.finish(200, tokens, None, None);
    }
    if !streaming {
        return Ok(Json(completed).into_response());
    }
    let in_progress = response_with("in_progress", Vec::new(), Value::Null);
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
    let mut events = vec![
        json!({"type": "response.created", "response": in_progress}),
        json!({"type": "response.in_progress", "response": in_progress}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": message("", "in_progress")}),
        json!({"type": "response.content_part.added", "item_id": message_id, "output_index": 0, "content_index": 0, "part": part("")}),
    ];
    for piece in reply.split_inclusive(' ').collect::<Vec<_>>().chunks(3).map(|chunk| chunk.concat()) {
        events.push(json!({"type": "response.output_text.delta", "item_id": message_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}));
    }
    events.extend([
        json!({"type": "response.output_text.done", "item_id": message_id, "output_index": 0, "content_index": 0, "text": reply, "logprobs": []}),
        json!({"type": "response.content_part.done", "item_id": message_id, "output_index": 0, "content_index": 0, "part": part(&reply)}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": message(&reply, "completed")}),
        json!({"type": "response.completed", "response": completed}),
    ]);
    let lines: Vec<Result<Bytes, std::convert::Infallible>> = events
        .into_iter()
        .enumerate()
        .map(|(sequence, mut event)| {
            event["sequence_number"] = json!(sequence);
            Ok(Bytes::from(format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap_or(""))))
        })
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(lines));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response())
}

// ---- responses made upstream ----------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_input_is_one_user_message_and_items_get_ids() {
        let items = input_items(&json!({"input": "hello there"}));
        assert_eq!(items.len(), 1);
        assert_eq!((items[0]["role"].as_str(), item_text(&items[0]).as_str()), (Some("user"), "hello there"));
        assert!(items[0]["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
        let items = input_items(
            &json!({"input": [{"role": "user", "content": "a"}, {"type": "function_call_output", "call_id": "c", "output": "b"}]}),
        );
        assert_eq!(items.iter().map(item_text).collect::<Vec<_>>(), ["a", "b"]);
    }
}
