//! Paths that reach a provider account's own state rather than make a call: files,
//! batches, fine-tunes, assistants and threads, vector stores, deployments
//! (docs/CONTRACT.md#provider-wide-paths). Forwarded with the deployment's credential, any
//! key would read and change what every other key of the deployment uploaded or started,
//! and no model scope could apply; so each such path is refused under every method, before
//! its key is even read, with a message that names it and says why.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use super::errors::{GatewayRefusal, Protocol};
use super::respond;
use crate::planes::Plane;
use crate::request_context::{shown_path, RequestContext};
use crate::state::AppState;

/// The refused prefixes, each refused itself and with anything under it.
pub const PROVIDER_STATE_PREFIXES: [&str; 15] = [
    "/compatible-mode/v1/files",
    "/compatible-mode/v1/uploads",
    "/compatible-mode/v1/batches",
    "/compatible-mode/v1/fine_tuning",
    "/compatible-mode/v1/fine-tunes",
    "/compatible-mode/v1/assistants",
    "/compatible-mode/v1/threads",
    "/compatible-mode/v1/vector_stores",
    "/api/v1/files",
    "/api/v1/batches",
    "/api/v1/fine-tunes",
    "/api/v1/deployments",
    "/apps/anthropic/v1/files",
    "/apps/anthropic/v1/messages/batches",
    "/apps/anthropic/v1/skills",
];

/// The routes that refuse [`PROVIDER_STATE_PREFIXES`].
pub fn routes() -> Router<AppState> {
    PROVIDER_STATE_PREFIXES.iter().fold(Router::new(), |router, prefix| {
        router.route(prefix, any(refuse_provider_state)).route(&format!("{prefix}/{{*rest}}"), any(refuse_provider_state))
    })
}

async fn refuse_provider_state(State(state): State<AppState>, context: RequestContext, request: Request) -> Response {
    let path = request.uri().path();
    let protocol = match Plane::of_path(path) {
        Plane::Gateway(protocol) => protocol,
        _ => Protocol::Native,
    };
    let refusal = GatewayRefusal::ProviderState(format!(
        "{} {} is not forwarded by this gateway: files, batches, fine-tunes, assistants, vector stores and deployments \
             belong to the provider account that every API key here shares, so no key may reach them.",
        request.method(),
        shown_path(path)
    ));
    respond(&state, protocol, &context, Err(refusal))
}
