//! Per-request context set by a middleware before any handler: a request id, the resolved
//! client address, and an access log line (method, path, status, time; never headers or
//! bodies, which may carry keys).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keygate_core::client_address::resolve_client_address;

use crate::state::AppState;

/// Facts about the request every handler may need.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// `None` when a trusted proxy forwarded an address that could not be parsed.
    pub client_address: Option<IpAddr>,
}

impl RequestContext {
    /// The address as written in audit rows.
    pub fn client_address_text(&self) -> String {
        self.client_address.map(|address| address.to_string()).unwrap_or_else(|| "unknown".into())
    }
}

/// A request id in the style of Alibaba Cloud's: 8-4-4-4-12 uppercase hex.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    keygate_core::random::fill_random(&mut bytes);
    let hex = hex::encode_upper(bytes);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Middleware: builds the [`RequestContext`], runs the request, logs one line.
pub async fn attach_request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded_for = request.headers().get("x-forwarded-for").and_then(|value| value.to_str().ok());
    let client_address = resolve_client_address(peer, forwarded_for, &state.shared.trusted_proxies);
    let context = RequestContext { request_id: new_request_id(), client_address };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(context.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&context.request_id) {
        response.headers_mut().insert("x-acs-request-id", value);
    }
    tracing::info!(
        request_id = %context.request_id,
        region = %state.listener_region,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
