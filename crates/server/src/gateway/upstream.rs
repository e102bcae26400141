//! Forwarding a call to an upstream provider ([`crate::upstreams`]): the client's key is
//! removed and the upstream's own credential set (its keys in turn), hop-by-hop headers
//! dropped, the response streamed back chunk by chunk. A model served by several upstreams
//! fails over to the next when one cannot be reached or answers 5xx, before anything has
//! been relayed; each upstream has its connect, first-byte and idle-stream timeouts
//! (docs/CONTRACT.md#upstreams).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
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

/// What is forwarded: in which protocol, with which method, where, with which headers,
/// for which request (named in the log lines of failures).
pub struct Forwarded<'a> {
    pub protocol: Protocol,
    /// A call of the OpenAI Responses API, sent to the upstream's Responses base URL.
    pub responses: bool,
    pub method: Method,
    pub target: &'a ForwardTarget,
    pub headers: &'a HeaderMap,
    pub request_id: &'a str,
    /// How many headers keygate adds to the relayed answer (a limited call's rate-limit
    /// headers): its header map is made with room for them, and is not grown again.
    pub header_room: usize,
}

/// An answer relayed from an upstream, and which upstream gave it.
pub struct Relayed {
    pub response: Response,
    pub upstream: Arc<Upstream>,
}

/// Why one upstream did not answer, for the log and for the next candidate.
enum AttemptFailure {
    /// Not connected, refused, or no answer within the first-byte timeout: nothing reached
    /// the client, so the next candidate may be tried.
    Unreachable(String),
}

/// Sends the call to `upstream` and streams its answer back. With a `meter`, the answer's
/// usage is read as it passes and the call counted when it ends (and the usage-only chunk
/// removed when `strip_usage_chunk`: keygate asked for it, the client did not).
pub async fn forward(
    upstream: &Arc<Upstream>,
    forwarded: Forwarded<'_>,
    body: Bytes,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
) -> Result<Response, GatewayRefusal> {
    forward_with_failover(std::slice::from_ref(upstream), forwarded, body, meter, strip_usage_chunk).await.map(|relayed| relayed.response)
}

/// Sends the call to the first of `candidates` (in the order given: priority, then weight)
/// that answers: an upstream that cannot be reached or answers 5xx is passed over for the
/// next, since nothing has reached the client yet. The last candidate's 5xx is relayed as
/// it is; a stream, once its headers are relayed, is never tried again elsewhere.
pub async fn forward_with_failover(
    candidates: &[Arc<Upstream>],
    forwarded: Forwarded<'_>,
    body: Bytes,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
) -> Result<Relayed, GatewayRefusal> {
    let protocol = forwarded.protocol;
    let speaking: Vec<&Arc<Upstream>> = candidates
        .iter()
        .filter(|upstream| if forwarded.responses { upstream.responses_base().is_some() } else { upstream.speaks(protocol) })
        .collect();
    let Some(last) = speaking.len().checked_sub(1) else {
        let names: Vec<&str> = candidates.iter().map(|upstream| upstream.name.as_str()).collect();
        return Err(GatewayRefusal::BadRequest(format!("upstream {} does not speak this protocol", names.join(", "))));
    };
    for (index, upstream) in speaking.into_iter().enumerate() {
        match attempt(upstream, &forwarded, body.clone()).await {
            Ok(response) if response.status().is_server_error() && index < last => {
                tracing::warn!(
                    request_id = %forwarded.request_id,
                    upstream = %upstream.name,
                    status = response.status().as_u16(),
                    "upstream answered with a server error; trying the next upstream of the model"
                );
            }
            Ok(response) => {
                let relayed = relay(response, upstream, protocol, meter, strip_usage_chunk, &forwarded);
                return Ok(Relayed { response: relayed, upstream: upstream.clone() });
            }
            Err(AttemptFailure::Unreachable(cause)) => {
                let next = if index < last { "trying the next upstream of the model" } else { "no upstream of the model is left" };
                tracing::warn!(request_id = %forwarded.request_id, upstream = %upstream.name, cause = %cause, "upstream unreachable; {next}");
            }
        }
    }
    if let Some(meter) = meter {
        meter.finish(502, keygate_core::usage::TokenUsage::default(), None, None);
    }
    Err(GatewayRefusal::UpstreamUnreachable)
}

/// One try of one upstream: the request sent with its credential (the next of its keys),
/// and its answer's head within the upstream's first-byte timeout.
async fn attempt(upstream: &Upstream, forwarded: &Forwarded<'_>, body: Bytes) -> Result<reqwest::Response, AttemptFailure> {
    let Forwarded { protocol, responses, method, target, headers, .. } = forwarded;
    let base = if *responses { upstream.responses_base() } else { upstream.base_for(*protocol) };
    let base = base.ok_or_else(|| AttemptFailure::Unreachable("the upstream does not speak this protocol".into()))?;
    // The base was checked at start (no query, no fragment) and the path segment by
    // segment (no dot segments, no escapes), so the URL cannot point anywhere else.
    let mut url = format!("{base}{}", target.path);
    if let Some(query) = &target.query {
        url.push('?');
        url.push_str(query);
    }
    let mut request = upstream.client().request(method.clone(), &url);
    let nominated = connection_nominated(headers);
    for (name, value) in headers.iter() {
        if is_forwardable_request_header(name) && !nominated.iter().any(|nominated| nominated == name.as_str()) {
            request = request.header(name, value);
        }
    }
    if let Some(credential) = upstream.next_credential() {
        request = match protocol {
            Protocol::Anthropic => request.header("x-api-key", credential.expose_secret()),
            Protocol::Native | Protocol::OpenAi => request.bearer_auth(credential.expose_secret()),
        };
    }
    let first_byte = upstream.timeouts().first_byte;
    match tokio::time::timeout(first_byte, request.body(body).send()).await {
        Ok(Ok(response)) => Ok(response),
        // reqwest's error names the cause (connect refused, DNS, TLS...) but never a header;
        // its URL is shown without the client's query, which may hold a key.
        Ok(Err(error)) => Err(AttemptFailure::Unreachable(error_chain(&without_query(error)))),
        Err(_) => Err(AttemptFailure::Unreachable(format!("no answer within the first-byte timeout of {} s", first_byte.as_secs()))),
    }
}

/// `error` with its URL's query replaced by `redacted` and a path segment that may hold a
/// key by `{redacted}` (the query and the path are the client's, and a client may put its
/// key there), so that the error can be logged.
fn without_query(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        if url.query().is_some() {
            url.set_query(Some("redacted"));
        }
        let shown = crate::request_context::shown_path(url.path()).into_owned();
        if shown != url.path() {
            url.set_path(&shown);
        }
    }
    error
}

/// An error and its sources, one line: reqwest's top error says only "error sending request".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The client's answer from the upstream's: end-to-end headers, and the body streamed
/// (metered when there is a meter), ended when the upstream goes quiet for longer than its
/// idle timeout.
fn relay(
    response: reqwest::Response,
    upstream: &Upstream,
    protocol: Protocol,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
    forwarded: &Forwarded<'_>,
) -> Response {
    let request_id = forwarded.request_id;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let nominated = connection_nominated(response.headers());
    // Room for the upstream's headers, keygate's and the request id added after this.
    let mut headers = HeaderMap::with_capacity(response.headers().len() + forwarded.header_room + 1);
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str())
            && name.as_str() != "content-length"
            && !nominated.iter().any(|nominated| nominated == name.as_str())
        {
            // Names and values are the same types on both sides: copied, not parsed again.
            headers.append(name.clone(), value.clone());
        }
    }
    let event_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        // Compared in place: no lower-case copy of the header for every call.
        .is_some_and(|value| value.trim_start().as_bytes().get(..17).is_some_and(|start| start.eq_ignore_ascii_case(b"text/event-stream")));
    let inner = IdleTimeout::new(response.bytes_stream(), upstream.timeouts().idle, upstream.name.clone(), request_id.to_string());
    let body = match meter {
        Some(meter) => {
            let upstream_latency = meter.started.elapsed();
            let reader = UsageReader::new(protocol, event_stream, strip_usage_chunk);
            Body::from_stream(MeteredBody::new(inner, reader, meter, status.as_u16(), upstream_latency))
        }
        None => Body::from_stream(inner),
    };
    let mut relayed = Response::new(body);
    *relayed.status_mut() = status;
    *relayed.headers_mut() = headers;
    relayed
}

/// An upstream's body that ends with an error when no chunk arrives within `idle`: a
/// provider that stops sending mid-stream does not hold the client's connection forever.
struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    upstream: String,
    /// The answer is read after the request's span has ended: its line names the request.
    request_id: String,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, idle: Duration, upstream: String, request_id: String) -> IdleTimeout<S> {
        IdleTimeout { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)), upstream, request_id }
    }
}

impl<S> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(context) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(std::io::Error::other(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(context) {
                Poll::Ready(()) => {
                    tracing::warn!(request_id = %self.request_id, upstream = %self.upstream, idle_seconds = self.idle.as_secs(), "upstream went quiet mid-answer; the answer is cut");
                    Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upstream went quiet"))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
