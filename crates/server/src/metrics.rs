//! Prometheus metrics at `/metrics` ([`crate::metrics_registry`] counts them): who may read
//! them on an ordinary listener, and the router of a listener of their own.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::management::errors::ManagementError;
use crate::request_context::peer_of;
use crate::state::AppState;

/// `GET /metrics`.
async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let registry = state.store().registry();
    let lag_seconds = state.shared.feed_health.staleness_milliseconds(state.shared.clock.now_milliseconds()) as f64 / 1000.0;
    let mut body = state.shared.metrics.render(registry.live_key_count(), registry.applied_version(), lag_seconds);
    body.push_str(&state.shared.limiter.health().render_metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Headers by which a proxy says whose request it relays.
const FORWARDING_HEADERS: [header::HeaderName; 3] =
    [header::FORWARDED, header::HeaderName::from_static("x-forwarded-for"), header::HeaderName::from_static("x-real-ip")];

/// Whether a request without a metrics token may read `/metrics`: its TCP peer is this
/// machine (`::ffff:127.0.0.1` too, as a dual-stack listener sees an IPv4 client), and it
/// relays nobody else's request. A proxy on the same machine connects from loopback on
/// behalf of clients anywhere, so a request that carries a forwarding header is never
/// exempt, whatever address the header names and whether or not the proxy is trusted:
/// the exemption belongs to the socket peer alone.
pub fn is_local_unforwarded<B>(request: &axum::http::Request<B>) -> bool {
    peer_of(request).to_canonical().is_loopback() && !FORWARDING_HEADERS.iter().any(|name| request.headers().contains_key(name))
}

/// `/metrics` on an ordinary listener, which may face the internet: with a
/// `metrics_token` (`KEYGATE_METRICS_TOKEN`), only for `Authorization: Bearer <token>`;
/// without one, only for a client on this machine that no proxy relays
/// ([`is_local_unforwarded`]). `metrics_listen` serves it on a listener of its own instead,
/// and ordinary listeners do not serve it at all.
pub async fn guarded_metrics_endpoint(state: State<AppState>, request: Request) -> Result<Response, ManagementError> {
    match &state.shared.settings.metrics_token {
        Some(token) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            let matches: bool = Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(token.expose_secret().as_bytes())).into();
            if !matches {
                return Err(ManagementError::new(
                    StatusCode::UNAUTHORIZED,
                    "InvalidMetricsToken",
                    "/metrics needs Authorization: Bearer <metrics token>.",
                ));
            }
        }
        None if !is_local_unforwarded(&request) => {
            return Err(ManagementError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "/metrics answers only clients on this machine, not through a proxy, on this listener; set a metrics token or a metrics listener.",
            ));
        }
        None => {}
    }
    Ok(metrics_endpoint(state).await)
}

/// The router of a `metrics_listen` listener: `/metrics` and nothing else. Its refusals
/// are the management plane's, rendered by its boundary with a request id, and have an
/// access-log line, like any other listener's.
pub fn metrics_listener_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint))
        .fallback(|| async { ManagementError::new(StatusCode::NOT_FOUND, "NotFound", "Only /metrics is served on this listener.") })
        .method_not_allowed_fallback(crate::planes::method_not_allowed)
        .layer(axum::middleware::from_fn(crate::management::boundary::answer_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::request_context::attach_request_context))
        .with_state(state)
}
