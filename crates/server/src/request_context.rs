//! Per-request context set by a middleware before any handler: a request id, the resolved
//! client address, and an access log line (method, path, status, time; never headers or
//! bodies, which may carry keys).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use keygate_core::client_address::resolve_client_address;
use keygate_core::keys::may_hold_key;

use crate::request_headers::RequestHeaders;
use crate::state::AppState;

/// Facts about the request every handler may need.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: std::sync::Arc<str>,
    /// `None` when a trusted proxy forwarded an address that could not be parsed.
    pub client_address: Option<IpAddr>,
}

impl RequestContext {
    /// The address as written in audit rows.
    pub fn client_address_text(&self) -> String {
        self.client_address.map(|address| address.to_string()).unwrap_or_else(|| "unknown".into())
    }
}

/// The header that carries a request's id in every answer. A name made once: inserted by
/// its text, a name that is not one of `http`'s standard names is copied into a new
/// allocation per answer.
pub const X_ACS_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-acs-request-id");

/// A request id in the style of Alibaba Cloud's: 8-4-4-4-12 uppercase hex. Ids need to be
/// unique, not secret: a random per-process prefix (so nodes differ; the first sixteen
/// digits) and a counter, mixed so that consecutive ids do not look alike (the last
/// sixteen), without a system call per request. Each thread counts in a block of ids of
/// its own, so that threads serving calls at once do not share (and bounce between their
/// cores) one counter.
pub fn new_request_id() -> std::sync::Arc<str> {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static TEMPLATE: std::sync::OnceLock<[u8; 36]> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        keygate_core::random::fill_random(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    let count = next_count();
    // A bijective mix (splitmix64's finaliser) of the counter keeps ids distinct.
    let mut mixed = count.wrapping_add(prefix);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    // The prefix's digits and the dashes are written once; each id writes its last sixteen.
    let mut text = *TEMPLATE.get_or_init(|| request_id_text((u128::from(prefix) << 64) | u128::from(mixed)));
    write_hex(&mut text[19..23], &mixed.to_be_bytes()[..2]);
    write_hex(&mut text[24..36], &mixed.to_be_bytes()[2..]);
    // Only ASCII digits and dashes were written. Shared, not copied, by what outlives the
    // handler (an answer's body names its request in its log lines).
    std::str::from_utf8(&text).map_or_else(|_| std::sync::Arc::from(""), std::sync::Arc::from)
}

/// The next of this thread's counts: each thread takes a block of 2^40 counts (a thousand
/// billion ids) of its own the first time it makes an id.
fn next_count() -> u64 {
    static NEXT_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    thread_local! {
        static NEXT: std::cell::Cell<u64> =
            std::cell::Cell::new(NEXT_BLOCK.fetch_add(1 << 40, std::sync::atomic::Ordering::Relaxed));
    }
    NEXT.with(|next| {
        let count = next.get();
        next.set(count.wrapping_add(1));
        count
    })
}

/// The two uppercase hex digits of each of `bytes`, into `text` (twice as long).
fn write_hex(text: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// The 32 hex digits of `value`, uppercase, as 8-4-4-4-12 (the template of
/// [`new_request_id`]: only its first sixteen digits are kept). Written digit by digit into
/// an array: the formatting machinery (`format!` with widths) took a twentieth of a
/// forwarded call's instructions (docs/PERFORMANCE.md).
fn request_id_text(value: u128) -> [u8; 36] {
    let mut text = [b'-'; 36];
    let bytes = value.to_be_bytes();
    for (range, bytes) in
        [(0..8, &bytes[0..4]), (9..13, &bytes[4..6]), (14..18, &bytes[6..8]), (19..23, &bytes[8..10]), (24..36, &bytes[10..16])]
    {
        write_hex(&mut text[range], bytes);
    }
    text
}

/// The context of a request that bypasses the middleware (`/auth/verify`, on the hot path
/// of another gateway): the same client-address rules, no access log line.
pub fn context_of<B>(state: &AppState, request: &axum::http::Request<B>) -> RequestContext {
    RequestContext { request_id: new_request_id(), client_address: client_address_of(state, peer_of(request), request.headers().into()) }
}

/// The TCP peer of a request (from `ConnectInfo`; loopback when absent, as in tests that
/// call the router directly).
pub fn peer_of<B>(request: &axum::http::Request<B>) -> IpAddr {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The client address: the peer, or what `X-Forwarded-For` says when the peer is a trusted
/// proxy.
pub fn client_address_of(state: &AppState, peer: IpAddr, headers: RequestHeaders<'_>) -> Option<IpAddr> {
    static X_FORWARDED_FOR: axum::http::HeaderName = axum::http::HeaderName::from_static("x-forwarded-for");
    // Every line of the header: a proxy may add its own after the client's.
    let forwarded_for = headers.get_all(&X_FORWARDED_FOR);
    resolve_client_address(peer, forwarded_for, &state.shared.trusted_proxies)
}

/// Middleware: builds the [`RequestContext`], runs the request, logs one line.
pub async fn attach_request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = RequestStart::now();
    let context = context_of(&state, &request);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(context.clone());
    in_request_context(&state, &context, &method, &path, started, next.run(request)).await
}

/// Runs `handled` as the request of `context`: every line logged meanwhile names its id
/// (in JSON, as `request_id`), the answer carries it (`x-acs-request-id`), and one
/// access-log line follows. The middleware does this for the router's requests, and the
/// listener for the model calls it serves before the router (`gateway::DirectModelCall`).
pub async fn in_request_context(
    state: &AppState,
    context: &RequestContext,
    method: &Method,
    path: &str,
    started: RequestStart,
    handled: impl std::future::Future<Output = Response>,
) -> Response {
    let mut response = in_request_context_unlabelled(state, context, method, path, started, handled).await;
    if let Ok(value) = HeaderValue::from_str(&context.request_id) {
        response.headers_mut().insert(X_ACS_REQUEST_ID, value);
    }
    response
}

/// [`in_request_context`] but for the answer's `x-acs-request-id`, which the caller writes
/// itself: `connection_front` writes the answers it serves, and puts the id in their head
/// as it writes it (an insert into the answer's header map cost more than the write).
pub async fn in_request_context_unlabelled(
    state: &AppState,
    context: &RequestContext,
    method: &Method,
    path: &str,
    started: RequestStart,
    handled: impl std::future::Future<Output = Response>,
) -> Response {
    let span = tracing::info_span!("request", request_id = %context.request_id);
    let response = tracing::Instrument::instrument(handled, span).await;
    log_request(&context.request_id, &state.listener_region, method, path, response.status(), started);
    response
}

/// When a request started, for its access-log line's `elapsed_ms`. The clock is read only
/// when that line is written: a deployment that logs at `warn` (as the benchmarks do, as
/// nginx without an access log) does not pay for two clock reads per request it never
/// reports (docs/PERFORMANCE.md, "Clock reads, lookups and copies per call").
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(Option<Instant>);

impl RequestStart {
    /// Now, when [`log_request`]'s line is enabled; nothing otherwise.
    pub fn now() -> RequestStart {
        // The same target and level as `log_request`'s line (this module's).
        RequestStart(tracing::enabled!(tracing::Level::INFO).then(Instant::now))
    }

    /// The time since, when the start was read.
    pub fn elapsed(self) -> Option<std::time::Duration> {
        self.0.map(|started| started.elapsed())
    }
}

/// The access-log line of one request. The path is logged as [`shown_path`] has it; the
/// query, headers and body never are.
pub fn log_request(request_id: &str, region: &str, method: &Method, path: &str, status: StatusCode, started: RequestStart) {
    tracing::info!(
        request_id = %request_id,
        region = %region,
        method = %method,
        path = %shown_path(path),
        status = status.as_u16(),
        elapsed_ms = started.elapsed().map(|elapsed| elapsed.as_millis() as u64),
        "request"
    );
}

/// Longest path repeated in a log line or an error message.
const MAX_SHOWN_PATH_CHARACTERS: usize = 256;

/// `path` as it may be repeated in a log line or an error message: a segment that may hold
/// an API key (a client that put its key in the URL) is replaced by `{redacted}`, and a
/// long path is cut.
pub fn shown_path(path: &str) -> std::borrow::Cow<'_, str> {
    // Every request's log line passes here: the usual path is shown as it is, unchanged.
    if path.len() <= MAX_SHOWN_PATH_CHARACTERS && !path.contains('%') && !may_hold_key(path) {
        return path.into();
    }
    let redacted: Vec<std::borrow::Cow<'_, str>> = path
        .split('/')
        .map(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            if may_hold_key(segment) || may_hold_key(&decoded) {
                "{redacted}".into()
            } else {
                segment.into()
            }
        })
        .collect();
    let joined = redacted.join("/");
    if joined.chars().count() <= MAX_SHOWN_PATH_CHARACTERS {
        return joined.into();
    }
    let mut cut: String = joined.chars().take(MAX_SHOWN_PATH_CHARACTERS).collect();
    cut.push('…');
    cut.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_shown_without_what_may_be_a_key_and_cut_when_long() {
        assert_eq!(shown_path("/modelstudio/apikeys/12"), "/modelstudio/apikeys/12");
        assert_eq!(shown_path("/api/v1/apps/sk-ws-AbCdEfGh0123456789/completion"), "/api/v1/apps/{redacted}/completion");
        assert_eq!(shown_path("/keygate/v1/users/sk%2Dws%2DAbCd"), "/keygate/v1/users/{redacted}");
        let long = shown_path(&format!("/x/{}", "a".repeat(1000))).into_owned();
        assert_eq!(long.chars().count(), MAX_SHOWN_PATH_CHARACTERS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_request_id_is_its_value_in_uppercase_hex_grouped_8_4_4_4_12() {
        assert_eq!(&request_id_text(0), b"00000000-0000-0000-0000-000000000000");
        assert_eq!(&request_id_text(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210), b"01234567-89AB-CDEF-FEDC-BA9876543210");
        assert_eq!(&request_id_text(u128::MAX), b"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF");
    }

    #[test]
    fn request_ids_are_distinct_and_shaped_like_alibaba_clouds() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_request_id().to_string()).collect();
        assert_eq!(ids.len(), 10_000);
        // Every id of this process starts with the same sixteen digits (its prefix).
        let first = ids.iter().next().unwrap()[..19].to_string();
        assert!(ids.iter().all(|id| id.starts_with(&first)), "{first}");
        // Ids made on other threads at the same time are distinct from these too.
        let others: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> =
                (0..4).map(|_| scope.spawn(|| (0..1_000).map(|_| new_request_id().to_string()).collect::<Vec<_>>())).collect();
            threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect()
        });
        let mut all = ids.clone();
        all.extend(others.iter().cloned());
        assert_eq!(all.len(), 10_000 + others.len());
        for id in ids.iter().take(50) {
            let parts: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
            assert!(
                id.chars().all(|character| character == '-' || character.is_ascii_hexdigit() && !character.is_ascii_lowercase()),
                "{id}"
            );
        }
    }
}
