//! `POST /apps/anthropic/v1/messages/count_tokens` (docs/CONTRACT.md#models-and-token-counts):
//! how many input tokens a Messages request would take, as Claude Code and the `anthropic`
//! SDK ask before a long call. It is authorized exactly like the call it measures (key,
//! address, workspace, model scope), because an upstream answers it with the deployment's
//! credential; then the demo counts its own tokens, or the upstream of the model answers.
//! Nothing is generated, so nothing is counted in usage or against limits.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::verification::CallTarget;
use serde_json::{json, Value};

use super::authorize::{authenticate_request, authorize_target};
use super::errors::{GatewayRefusal, Protocol};
use super::{demo, forward_target, model_of, read_model_call, respond, upstream};
use crate::request_context::RequestContext;
use crate::state::AppState;
use crate::upstreams::Route;

pub(super) async fn anthropic_count_tokens(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let result = count_tokens(&state, &context, request).await;
    respond(&state, Protocol::Anthropic, &context, result)
}

async fn count_tokens(state: &AppState, context: &RequestContext, request: Request) -> Result<Response, GatewayRefusal> {
    let protocol = Protocol::Anthropic;
    let (parts, body) = request.into_parts();
    let target = forward_target(protocol, &parts.uri)?;
    let authorized = authenticate_request(state, protocol, (&parts.headers).into(), context)?;
    authorize_target(state, &authorized, context, (&parts.headers).into(), CallTarget::Nothing)?;
    let (bytes, mut read) = read_model_call(state, (&parts.headers).into(), super::CallBody::Unread(body)).await?;
    let model = model_of(&mut read)?;
    authorize_target(state, &authorized, context, (&parts.headers).into(), CallTarget::Model(&model))?;
    match state.shared.upstreams.route_model(&model) {
        Some(Route::Demo) => {
            // The body was read as one JSON object above.
            let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Json(json!({"input_tokens": demo::anthropic_input_tokens(&request)})).into_response())
        }
        Some(Route::Upstream(_)) if state.shared.upstreams.serves_in(&model, protocol) => {
            let forwarded = upstream::Forwarded {
                protocol,
                responses: false,
                method: parts.method,
                target: &target,
                headers: (&parts.headers).into(),
                request_id: &context.request_id,
                header_room: 0,
            };
            let candidates = state.shared.upstreams.candidates(&model);
            upstream::forward_with_failover(&candidates, forwarded, bytes, None, false).await.map(|relayed| relayed.response)
        }
        Some(Route::Upstream(upstream)) => Err(GatewayRefusal::BadRequest(format!(
            "The model '{model}' is served here only through: {}.",
            upstream.protocol_names().join(", ")
        ))),
        None => {
            Err(GatewayRefusal::BadRequest(format!("The model '{model}' is in the catalog but no upstream of this deployment serves it.")))
        }
    }
}
