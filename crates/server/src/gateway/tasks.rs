//! DashScope's asynchronous tasks (docs/CONTRACT.md#asynchronous-tasks): a native call sent
//! with `X-DashScope-Async: enable` (image and video generation, say) is answered at once
//! with a `task_id`, which the client then polls with `GET /api/v1/tasks/{task_id}` (and may
//! cancel with `POST /api/v1/tasks/{task_id}/cancel`).
//!
//! The submission is a model call like any other. The provider keeps the task under the
//! deployment's one credential, so keygate records which workspace submitted each task id
//! ([`crate::provider_objects`]) and shows a task only to keys of that workspace that may
//! call its model; to any other key, and for an id keygate does not know, it answers as
//! DashScope does for a task that does not exist: `task_status` `UNKNOWN`, never forwarded.
//!
//! The demo answers a submission with a task that has already succeeded: polling it gives
//! the output the same call would have given at once (an image call gets a small SVG of its
//! prompt as a `data:` URL).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate_core::usage::TokenUsage;
use keygate_core::verification::CallTarget;
use serde_json::{json, Value};

use super::accounting::CallMeter;
use super::authorize::{authenticate_request, authorize_target, Authorized};
use super::errors::{GatewayRefusal, Protocol};
use super::{forward_target, respond, upstream};
use crate::planes::Path;
use crate::provider_objects::{DemoObject, ObjectKind, ProviderObject};
use crate::request_context::RequestContext;
use crate::request_headers::RequestHeaders;
use crate::state::AppState;

/// The routes of task polling and cancelling.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tasks/{task_id}", get(named_task)).route("/api/v1/tasks/{task_id}/cancel", post(named_task))
}

/// Whether a native call asks to run as a task.
pub(super) fn is_asynchronous(headers: RequestHeaders<'_>) -> bool {
    static X_DASHSCOPE_ASYNC: HeaderName = HeaderName::from_static("x-dashscope-async");
    headers.get_str(&X_DASHSCOPE_ASYNC).is_some_and(|value| value.trim().eq_ignore_ascii_case("enable"))
}

/// DashScope's answer for a task that does not exist (or is not this key's to see).
fn unknown_task(id: &str, request_id: &str) -> Response {
    let shown = keygate_core::keys::shown_input(id, 100);
    Json(json!({"request_id": request_id, "output": {"task_id": shown, "task_status": "UNKNOWN"}})).into_response()
}

async fn named_task(State(state): State<AppState>, context: RequestContext, Path(task_id): Path<String>, request: Request) -> Response {
    let result = serve_named_task(&state, &context, &task_id, request).await;
    respond(&state, Protocol::Native, &context, result)
}

async fn serve_named_task(state: &AppState, context: &RequestContext, id: &str, request: Request) -> Result<Response, GatewayRefusal> {
    let (parts, _body) = request.into_parts();
    let target = forward_target(Protocol::Native, &parts.uri)?;
    let authorized = authenticate_request(state, Protocol::Native, (&parts.headers).into(), context)?;
    authorize_target(state, &authorized, context, (&parts.headers).into(), CallTarget::Nothing)?;
    let object =
        state.shared.provider_objects.get(ObjectKind::Task, id).filter(|object| *object.workspace_id == *authorized.key.workspace_id);
    let Some(object) = object else {
        return Ok(unknown_task(id, &context.request_id));
    };
    authorize_target(state, &authorized, context, (&parts.headers).into(), CallTarget::Model(&object.model))?;
    if let Some(DemoObject::Task { output, usage }) = object.demo.as_deref() {
        if parts.uri.path().ends_with("/cancel") {
            return Err(GatewayRefusal::BadRequest("Only a task that is still pending can be cancelled; this one has succeeded.".into()));
        }
        return Ok(Json(json!({"request_id": context.request_id, "output": output, "usage": usage})).into_response());
    }
    let upstream = object.upstream.as_deref().and_then(|name| state.shared.upstreams.serving_by_name(&object.model, name));
    let Some(upstream) = upstream else {
        return Ok(unknown_task(id, &context.request_id));
    };
    let forwarded = upstream::Forwarded {
        protocol: Protocol::Native,
        responses: false,
        method: parts.method.clone(),
        target: &target,
        headers: (&parts.headers).into(),
        request_id: &context.request_id,
        header_room: 0,
    };
    upstream::forward(&upstream, forwarded, Bytes::new(), None, false).await
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Answers an asynchronous submission to a demo model with a task that has already
/// succeeded, remembered for polling; the call is counted with the tokens its text takes.
pub(super) fn demo_submit(
    state: &AppState,
    authorized: &Authorized,
    model: &str,
    path: &str,
    body: &[u8],
    request_id: &str,
    meter: Option<CallMeter>,
) -> Result<Response, GatewayRefusal> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        if let Some(meter) = meter {
            meter.finish(400, TokenUsage::default(), None, None);
        }
        return Err(GatewayRefusal::BadRequest("The request body must be a JSON object.".into()));
    };
    let prompt = request.pointer("/input/prompt").and_then(Value::as_str).unwrap_or("").to_string();
    let task_id = uuid_like();
    let now = chrono_like(authorized.at_milliseconds);
    let (output, usage, tokens) = if path.contains("image") {
        let output = json!({"task_id": task_id, "task_status": "SUCCEEDED", "submit_time": now, "scheduled_time": now, "end_time": now,
            "results": [{"url": super::demo::image_data_url(&prompt), "orig_prompt": prompt}], "task_metrics": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}});
        (output, json!({"image_count": 1}), TokenUsage { input: words(&prompt) as i64, ..TokenUsage::default() })
    } else {
        let text = format!("{}echo: {prompt}", super::demo::DEMO_PREFIX);
        let (input, output_tokens) = (words(&prompt), words(&text));
        let output = json!({"task_id": task_id, "task_status": "SUCCEEDED", "submit_time": now, "end_time": now, "text": text, "finish_reason": "stop"});
        let usage = json!({"input_tokens": input, "output_tokens": output_tokens, "total_tokens": input + output_tokens});
        (output, usage, TokenUsage { input: input as i64, output: output_tokens as i64, cached: 0, reasoning: 0 })
    };
    state.shared.provider_objects.remember(
        ObjectKind::Task,
        &task_id,
        ProviderObject {
            workspace_id: authorized.key.workspace_id.to_string(),
            model: model.to_string(),
            upstream: None,
            demo: Some(Arc::new(DemoObject::Task { output, usage })),
        },
    );
    if let Some(meter) = meter {
        meter.finish(200, tokens, None, None);
    }
    Ok(Json(json!({"request_id": request_id, "output": {"task_id": task_id, "task_status": "PENDING"}})).into_response())
}

/// A task id in DashScope's form (a UUID).
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    keygate_core::random::fill_random(&mut bytes);
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A time as DashScope writes a task's times: `2026-12-03 12:00:00.000`, UTC.
fn chrono_like(at_milliseconds: i64) -> String {
    let seconds = keygate_core::civil_time::format_utc_timestamp(at_milliseconds.div_euclid(1000));
    format!("{}.{:03}", seconds.trim_end_matches('Z').replace('T', " "), at_milliseconds.rem_euclid(1000))
}
