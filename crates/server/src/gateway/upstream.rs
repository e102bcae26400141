//! Forwarding a call to an upstream provider ([`crate::upstreams`]): the client's key is
//! removed and the upstream's own credential set, hop-by-hop headers dropped, the response
//! streamed back chunk by chunk.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use secrecy::ExposeSecret;

use super::accounting::{CallMeter, MeteredBody, UsageReader};
use super::errors::{GatewayRefusal, Protocol};
use super::ForwardTarget;
use crate::upstreams::Upstream;

const HOP_BY_HOP: [&str; 9] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"];
/// Request headers that carry the client's credentials or keygate's own routing.
const CLIENT_ONLY: [&str; 4] = ["authorization", "x-api-key", "x-dashscope-workspace", "content-length"];

fn is_forwardable_request_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name) && !CLIENT_ONLY.contains(&name) && !name.starts_with("x-keygate-")
}

/// The header names listed in `Connection`, which are hop-by-hop too (RFC 9110 section 7.6.1).
fn connection_nominated(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// What is forwarded: in which protocol, with which method, where, with which headers.
pub struct Forwarded<'a> {
    pub protocol: Protocol,
    /// A call of the OpenAI Responses API, sent to the upstream's Responses base URL.
    pub responses: bool,
    pub method: Method,
    pub target: &'a ForwardTarget,
    pub headers: &'a HeaderMap,
}

/// Sends the call to `upstream` and streams its answer back. With a `meter`, the answer's
/// usage is read as it passes and the call counted when it ends (and the usage-only chunk
/// removed when `strip_usage_chunk`: keygate asked for it, the client did not).
pub async fn forward(
    client: &reqwest::Client,
    upstream: &Upstream,
    forwarded: Forwarded<'_>,
    body: Bytes,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
) -> Result<Response, GatewayRefusal> {
    let Forwarded { protocol, responses, method, target, headers } = forwarded;
    let base = if responses { upstream.responses_base() } else { upstream.base_for(protocol) };
    let base = base.ok_or_else(|| GatewayRefusal::BadRequest(format!("upstream {} does not speak this protocol", upstream.name)))?;
    // The base was checked at start (no query, no fragment) and the path segment by
    // segment (no dot segments, no escapes), so the URL cannot point anywhere else.
    let mut url = format!("{base}{}", target.path);
    if let Some(query) = &target.query {
        url.push('?');
        url.push_str(query);
    }
    let mut request = client.request(method, &url);
    let nominated = connection_nominated(headers);
    for (name, value) in headers {
        if is_forwardable_request_header(name) && !nominated.iter().any(|nominated| nominated == name.as_str()) {
            request = request.header(name, value);
        }
    }
    if let Some(credential) = upstream.credential() {
        request = match protocol {
            Protocol::Anthropic => request.header("x-api-key", credential.expose_secret()),
            Protocol::Native | Protocol::OpenAi => request.bearer_auth(credential.expose_secret()),
        };
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(upstream = %upstream.name, error = %error, "upstream request failed");
            if let Some(meter) = meter {
                meter.finish(502, keygate_core::usage::TokenUsage::default(), None, None);
            }
            return Err(GatewayRefusal::UpstreamUnreachable);
        }
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = Response::builder().status(status);
    let nominated = connection_nominated(response.headers());
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str())
            && name.as_str() != "content-length"
            && !nominated.iter().any(|nominated| nominated == name.as_str())
        {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
    }
    let body = match meter {
        Some(meter) => {
            let upstream_latency = meter.started.elapsed();
            let event_stream = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                // Compared in place: no lower-case copy of the header for every call.
                .is_some_and(|value| {
                    value.trim_start().as_bytes().get(..17).is_some_and(|start| start.eq_ignore_ascii_case(b"text/event-stream"))
                });
            let reader = UsageReader::new(protocol, event_stream, strip_usage_chunk);
            let inner = response.bytes_stream();
            Body::from_stream(MeteredBody::new(inner, reader, meter, status.as_u16(), upstream_latency))
        }
        None => Body::from_stream(response.bytes_stream()),
    };
    builder.body(body).map_err(|_| GatewayRefusal::UpstreamUnreachable)
}
