//! Forwarding a call to an upstream provider ([`crate::upstreams`]): the client's key is
//! removed and the upstream's own credential set (its keys in turn), hop-by-hop headers
//! dropped, the response streamed back chunk by chunk. A model served by several upstreams
//! fails over to the next when one cannot be reached or answers 5xx, before anything has
//! been relayed; each upstream has its connect, first-byte and idle-stream timeouts
//! (docs/CONTRACT.md#upstreams).
//!
//! The call goes out on keygate's own HTTP/1.1 client ([`crate::upstream_client`]), on a
//! connection of the base's pool held by this task: its request head written into one
//! buffer from the base parsed at start and the checked path, the client's headers copied
//! as they are (`RequestHeaders` holds only what httparse or `http` accepted: nothing is
//! parsed again; names written in lower case), the body the bytes already read. The
//! answer's body is read from the connection as the client's connection polls it, and
//! handed on chunk by chunk; when the upstream said how long it is and keygate relays it
//! unchanged, the client is told the same length (`Content-Length`, not a chunked
//! re-encoding).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{ACCEPT, AUTHORIZATION, CONNECTION};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::accounting::{CallMeter, MeteredBody, UsageReader};
use super::errors::{GatewayRefusal, Protocol};
use super::ForwardTarget;
use crate::request_headers::{eq_ignore_ascii_case, RequestHeaders};
use crate::thread_handles::{thread_handle, ThreadHandle};
use crate::upstream_client::{connection_names, UpstreamBody, UpstreamResponse};
use crate::upstreams::Upstream;

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static ANY_MEDIA_TYPE: HeaderValue = HeaderValue::from_static("*/*");

/// Whether a client's header goes to the upstream. `name` as the client wrote it: compared
/// without regard to case.
fn is_forwardable_request_header(name: &[u8]) -> bool {
    // `upstream_client::HOP_BY_HOP`, then the headers that carry the client's credentials or
    // keygate's own routing: told apart by length first (most names match no listed
    // length), then compared; the test below holds the match to the lists.
    let is = |listed: &[u8]| eq_ignore_ascii_case(name, listed);
    let held_back = match name.len() {
        2 => is(b"te"),
        4 => is(b"host"),
        7 => is(b"trailer") || is(b"upgrade"),
        9 => is(b"x-api-key"),
        10 => is(b"connection") || is(b"keep-alive"),
        13 => is(b"authorization"),
        14 => is(b"content-length"),
        17 => is(b"transfer-encoding"),
        18 => is(b"proxy-authenticate"),
        19 => is(b"proxy-authorization"),
        21 => is(b"x-dashscope-workspace"),
        _ => false,
    };
    // keygate's own headers: the first letter looked at first (most names are not `x-`).
    let keygates_own = name.first().is_some_and(|first| first.eq_ignore_ascii_case(&b'x'))
        && name.get(..10).is_some_and(|start| start.eq_ignore_ascii_case(b"x-keygate-"));
    !held_back && !keygates_own
}

/// What is forwarded: in which protocol, with which method, where, with which headers,
/// for which request (named in the log lines of failures).
pub struct Forwarded<'a> {
    pub protocol: Protocol,
    /// A call of the OpenAI Responses API, sent to the upstream's Responses base URL.
    pub responses: bool,
    pub method: Method,
    pub target: &'a ForwardTarget<'a>,
    pub headers: RequestHeaders<'a>,
    pub request_id: &'a Arc<str>,
    /// How many headers keygate adds to the relayed answer (a limited call's rate-limit
    /// headers): its header map is made with room for them, and is not grown again.
    pub header_room: usize,
}

/// An answer relayed from an upstream, and which upstream gave it (one of the candidates).
pub struct Relayed<'a> {
    pub response: Response,
    pub upstream: &'a Upstream,
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
pub async fn forward_with_failover<'a>(
    candidates: &'a [Arc<Upstream>],
    forwarded: Forwarded<'_>,
    body: Bytes,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
) -> Result<Relayed<'a>, GatewayRefusal> {
    let protocol = forwarded.protocol;
    // Walked twice rather than collected: most models have one upstream.
    let speaking = || {
        candidates
            .iter()
            .filter(|upstream| if forwarded.responses { upstream.responses_base().is_some() } else { upstream.speaks(protocol) })
    };
    let Some(last) = speaking().count().checked_sub(1) else {
        let names: Vec<&str> = candidates.iter().map(|upstream| upstream.name.as_str()).collect();
        return Err(GatewayRefusal::BadRequest(format!("upstream {} does not speak this protocol", names.join(", "))));
    };
    for (index, upstream) in speaking().enumerate() {
        match attempt(upstream, &forwarded, body.clone()).await {
            Ok(response) if response.status.is_server_error() && index < last => {
                tracing::warn!(
                    request_id = %forwarded.request_id,
                    upstream = %upstream.name,
                    status = response.status.as_u16(),
                    "upstream answered with a server error; trying the next upstream of the model"
                );
            }
            Ok(response) => {
                let relayed = relay(response, upstream, protocol, meter, strip_usage_chunk, &forwarded);
                return Ok(Relayed { response: relayed, upstream });
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
async fn attempt(upstream: &Upstream, forwarded: &Forwarded<'_>, body: Bytes) -> Result<UpstreamResponse, AttemptFailure> {
    let Forwarded { protocol, responses, method, target, headers, .. } = forwarded;
    let base = if *responses { upstream.responses_base() } else { upstream.base_for(*protocol) };
    let base = base.ok_or_else(|| AttemptFailure::Unreachable("the upstream does not speak this protocol".into()))?;
    // The base was parsed at start (no query, no fragment, no user information) and the
    // path checked segment by segment (no dot segments, no escapes), so the request cannot
    // go anywhere else; the head refuses a target with anything but visible ASCII.
    let header_room: usize = headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum::<usize>() + 160;
    // The names the client's `Connection` lists are hop-by-hop too (RFC 9110 section 7.6.1).
    // The head is written in one pass over the headers, which finds them; a request that
    // has some (few do) has its head written again without them.
    let mut nominated: Vec<Vec<u8>> = Vec::new();
    let (mut head, accept_sent) = loop {
        let mut head = base
            .request_head(method, target.path, target.query.as_deref(), header_room)
            .ok_or_else(|| AttemptFailure::Unreachable("the forwarded path and query do not make a request target".into()))?;
        let mut accept_sent = false;
        let mut nominating: Vec<Vec<u8>> = Vec::new();
        for (name, value) in headers.iter() {
            if is_forwardable_request_header(name) {
                if !nominated.iter().any(|nominated| eq_ignore_ascii_case(nominated, name)) {
                    // Accepted by httparse or `http` already: written as they are.
                    head.client_header(name, value);
                    accept_sent |= eq_ignore_ascii_case(name, b"accept");
                }
            } else if nominated.is_empty() && eq_ignore_ascii_case(name, CONNECTION.as_str().as_bytes()) {
                // Names held back anyway need no second pass.
                nominating.extend(connection_names(value).filter(|listed| is_forwardable_request_header(listed)));
            }
        }
        if nominating.is_empty() {
            break (head, accept_sent);
        }
        nominated = nominating;
    };
    // What the HTTP client keygate used before sent when the client sent none.
    if !accept_sent {
        head.header(&ACCEPT, &ANY_MEDIA_TYPE);
    }
    if let Some(credential) = upstream.next_credential() {
        let name = if *protocol == Protocol::Anthropic { &X_API_KEY } else { &AUTHORIZATION };
        head.header(name, credential.header_for(*protocol));
    }
    let request = head.finish(method, body);
    match upstream.client().send(base.endpoint(), &request, upstream.timeouts().first_byte).await {
        Ok(response) => Ok(response),
        Err(error) if error.is_first_byte_timeout() => Err(AttemptFailure::Unreachable(error.to_string())),
        // The client's error names the cause (connect refused, TLS, a malformed answer...)
        // but not where: the URL is added, without the client's query and any path segment
        // that may hold a key.
        Err(error) => Err(AttemptFailure::Unreachable(format!("{error} ({})", base.shown_url(target.path, target.query.is_some())))),
    }
}

/// The client's answer from the upstream's: its end-to-end headers (the client kept no
/// other: `upstream_client::parse_head`), and the body relayed frame by frame (metered when
/// there is a meter), ended when the upstream goes quiet for longer than its idle timeout.
/// The upstream's `Content-Length` is not among the headers: the body says its length when
/// it is relayed unchanged (see [`IdleTimeout`] and [`MeteredBody`]), and the server writes
/// the header from that.
fn relay(
    response: UpstreamResponse,
    upstream: &Arc<Upstream>,
    protocol: Protocol,
    meter: Option<CallMeter>,
    strip_usage_chunk: bool,
    forwarded: &Forwarded<'_>,
) -> Response {
    let request_id = forwarded.request_id;
    let UpstreamResponse { status, mut headers, event_stream, body: upstream_body } = response;
    // Room for keygate's headers and the request id added after this.
    headers.reserve(forwarded.header_room + 1);
    let inner = IdleTimeout::new(upstream_body, upstream.timeouts().idle, thread_handle(upstream), request_id.clone());
    let body = match meter {
        Some(meter) => {
            let upstream_latency = meter.started.map(|started| started.elapsed());
            let reader = UsageReader::new(protocol, event_stream, strip_usage_chunk);
            Body::new(MeteredBody::new(inner, reader, meter, status.as_u16(), upstream_latency))
        }
        None => Body::new(inner),
    };
    let mut relayed = Response::new(body);
    *relayed.status_mut() = status;
    *relayed.headers_mut() = headers;
    relayed
}

/// An upstream's body that ends with an error when no frame arrives within `idle`: a
/// provider that stops sending mid-stream does not hold the client's connection forever.
/// The timer is made only when the upstream first keeps the body waiting: an answer that
/// came whole with its head (the usual JSON answer) never sets one.
pub struct IdleTimeout {
    inner: UpstreamBody,
    idle: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Named in the log line of a cut answer, with the request (this thread's handle on
    /// it: `crate::thread_handles`).
    upstream: ThreadHandle<Upstream>,
    /// The answer is read after the request's span has ended: its line names the request.
    request_id: Arc<str>,
}

impl IdleTimeout {
    fn new(inner: UpstreamBody, idle: Duration, upstream: ThreadHandle<Upstream>, request_id: Arc<str>) -> IdleTimeout {
        IdleTimeout { inner, idle, deadline: None, upstream, request_id }
    }
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.as_mut().reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = this.idle;
                let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match deadline.as_mut().poll(context) {
                    Poll::Ready(()) => {
                        tracing::warn!(request_id = %this.request_id, upstream = %this.upstream.name, idle_seconds = this.idle.as_secs(), "upstream went quiet mid-answer; the answer is cut");
                        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upstream went quiet"))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    /// The upstream's own: exact when it sent a `Content-Length`.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream_client::HOP_BY_HOP;

    /// Request headers that carry the client's credentials or keygate's own routing (with
    /// [`HOP_BY_HOP`], the names `is_forwardable_request_header` matches).
    const CLIENT_ONLY: [&str; 4] = ["authorization", "x-api-key", "x-dashscope-workspace", "content-length"];

    /// Every listed name is refused in any case, keygate's own headers whatever their
    /// length, and nothing else.
    #[test]
    fn only_the_listed_headers_and_keygates_own_stay_behind() {
        assert_eq!(HOP_BY_HOP.len() + CLIENT_ONLY.len(), 13, "a name added to a list is added to the match too");
        for name in HOP_BY_HOP.iter().chain(&CLIENT_ONLY) {
            assert!(!is_forwardable_request_header(name.as_bytes()), "{name}");
            assert!(!is_forwardable_request_header(name.to_ascii_uppercase().as_bytes()), "{name}");
        }
        for name in ["X-Keygate-Model", "x-keygate-identity", "X-KEYGATE-A-VERY-LONG-NAME-INDEED-BEYOND-THE-LIST"] {
            assert!(!is_forwardable_request_header(name.as_bytes()), "{name}");
        }
        for name in [
            "Content-Type",
            "accept",
            "X-Client-Trace",
            "x-keygate",
            "hosts",
            "authorization2",
            "A-Header-Name-Much-Longer-Than-Any-Listed",
            // The length of a listed name, a letter off.
            "user-agent",
            "x-api-kez",
            "upgradf",
            "x-dashscope-workspacf",
            "proxy-authorizatiom",
        ] {
            assert!(is_forwardable_request_header(name.as_bytes()), "{name}");
        }
    }
}
