//! The front of every connection on a pay-as-you-go listener: `/auth/verify` and the two
//! model calls every client makes most (`gateway::DirectModelCall`: OpenAI-compatible chat
//! and Anthropic messages) answered from a head parsed here with httparse, without hyper;
//! at the first request that is anything else, the connection is handed to hyper with the
//! bytes already read, and stays with hyper to its end.
//!
//! Why: `/auth/verify` sits on the hot path of another proxy (nginx's `auth_request`,
//! Envoy's `ext_authz`) and reads only memory, so what it costs is mostly the HTTP server
//! around it. hyper's connection dispatch (its request and header map, its response
//! encoding, its task wake-ups) was most of that: keygate answered at 0.83 of a bare hyper
//! server's requests a second on the same machine (docs/PERFORMANCE.md, "`/auth/verify`
//! without hyper"). A forwarded model call paid the same dispatch, and the body wrappers
//! hyper needs around its answer, about a fifth of its instructions (docs/PERFORMANCE.md,
//! "Model calls in the connection front").
//!
//! Only the plain cases are answered here, and everything else is hyper's, so that its
//! answers to odd requests stay what they were: a request that is not HTTP/1.1, a `HEAD`
//! or `CONNECT`, `Transfer-Encoding`, `Expect` or `Upgrade`, a target that is not a path of
//! visible ASCII, a head that does not parse or has more than [`FRONT_HEADERS`] headers.
//! A head larger than hyper takes, or with more headers than it takes, is refused here with
//! a 431 in the plane's error shape (hyper's is empty). `/auth/verify` is answered here
//! without a body only (`Content-Length` absent or 0; Envoy's `with_request_body` goes to
//! hyper); a model call with one `Content-Length` of digits, no larger than the body limit,
//! and a target no longer than the router takes, of plain bytes only
//! ([`is_plain_target_byte`]); its headers are read in the head
//! ([`crate::request_headers`]). Its body is read here within the body deadline (past it,
//! the call gets the deadline's refusal and the connection closes, as under hyper) when it
//! came with the head, or when it is small and the key presented authenticates (hyper's
//! path refuses a bad key before reading a body, and so it still does), and the
//! handler's answer is written with `Content-Length` when its length is known, else in
//! chunks, each part as soon as it comes (a stream's events are not held back).
//! Timeouts are the connection's watchdog's, as under hyper: the bytes read here go
//! through the same `WatchedStream`, and each answer moves the connection's phase like
//! hyper's service does.

use std::cell::RefCell;
use std::net::IpAddr;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::{Buf, BytesMut};
use futures_util::FutureExt;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::connections::{ConnectionActivity, WatchedStream, MAX_REQUEST_HEAD_BYTES};
use crate::gateway;
use crate::gateway::verify_headers::VerifyHeaders;
use crate::gateway::DirectModelCall;
use crate::request_headers::{eq_ignore_ascii_case, HeadPlaces, RequestHeaders, HIGH_BITS, ONES};
use crate::state::AppState;
use crate::upstream_client::{lists_token, place_within};

/// Headers a head answered here may have; a head with more goes to hyper (which takes
/// up to 100 and answers 431 beyond).
pub const FRONT_HEADERS: usize = 64;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// The largest model call body the front waits for when it did not come with the head
/// (a larger one is read by hyper's path, as before).
const WAITED_BODY_BYTES: usize = 64 * 1024;

/// A part of an answer's body up to this size is copied behind what is waiting to be
/// written (the head, the parts before it), so that a small answer is one write; a larger
/// one is written from its own bytes.
const COPIED_BODY_PART: usize = 16 * 1024;

/// How the front of a connection ended.
pub enum FrontEnd<S> {
    /// The client closed, the connection asked to close, or the listener stopped while the
    /// connection was idle: nothing more to serve.
    Closed,
    /// A request for hyper: the stream, with the bytes read so far put back in front.
    HandOver(WatchedStream<S>),
}

/// Serves `/auth/verify` requests and plain chat and messages model calls on `stream`
/// until the connection closes or a request comes that is hyper's. `stop` ends an idle
/// connection when the listener stops.
pub async fn serve_front<S>(
    mut stream: WatchedStream<S>,
    state: &AppState,
    peer: IpAddr,
    activity: &ConnectionActivity,
    stop: tokio::sync::watch::Receiver<bool>,
) -> FrontEnd<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut answer = Vec::with_capacity(512);
    // A model call's head, copied out of `buffer` while the call is served (the buffer
    // reads ahead meanwhile). A copy into this one allocation, rather than the head split
    // off the buffer: a split made the buffer shared, and the next request's read then
    // allocated a new one.
    let mut call_head: Vec<u8> = Vec::new();
    // Made once for the connection, not per request: a new wait registers with the
    // listener's channel anew each time, a tenth of what the front adds to a verification.
    // On this thread's copy of the channel: a wait polled again takes its channel's lock,
    // and on the one channel of the server that lock was a cache line every core's
    // connections took at every request (docs/PERFORMANCE.md, "Cache lines the cores pass
    // to each other").
    let mut stop = stop_on_this_thread(&stop);
    let stopped = stop.wait_for(|stopped| *stopped);
    tokio::pin!(stopped);
    loop {
        if buffer.is_empty() {
            // Between requests: the only place where a stopping listener closes the
            // connection, as hyper's graceful shutdown closes an idle one.
            buffer.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                read = stream.read_buf(&mut buffer) => read,
                _ = &mut stopped => return FrontEnd::Closed,
            };
            match read {
                Ok(0) | Err(_) => return FrontEnd::Closed,
                Ok(_) => continue,
            }
        }
        // Slots left uninitialized: httparse fills the ones it uses (clearing them all cost
        // more than a hundred instructions a request).
        let mut header_slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; FRONT_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let head_length = match request.parse_with_uninit_headers(&buffer, &mut header_slots) {
            Ok(httparse::Status::Complete(head_length)) => head_length,
            Ok(httparse::Status::Partial) if buffer.len() < MAX_REQUEST_HEAD_BYTES => {
                // The rest of the head is on its way.
                buffer.reserve(READ_CHUNK);
                match stream.read_buf(&mut buffer).await {
                    Ok(0) | Err(_) => return FrontEnd::Closed,
                    Ok(_) => continue,
                }
            }
            // Larger than any head hyper takes, or more headers than it takes: refused here,
            // in the plane's error shape (hyper would answer an empty 431).
            Ok(httparse::Status::Partial) => return refuse_oversized_head(stream, state, &buffer).await,
            Err(httparse::Error::TooManyHeaders) if more_headers_than_hyper_takes(&buffer) => {
                return refuse_oversized_head(stream, state, &buffer).await;
            }
            // Malformed, or more headers than the front takes: hyper answers those its own way.
            Err(_) => return hand_over(stream, buffer),
        };
        let Some(plain) = plain_request(&request, state.shared.settings.body_limit_bytes) else {
            return hand_over(stream, buffer);
        };
        let close = plain.close;
        // The answer, and the request id its head is to carry when the answer does not
        // carry it already (a model call's: see `DirectModelCall::serve_parsed`).
        let (response, request_id) = match plain.kind {
            FrontRequest::Verify { target } => {
                activity.request_started();
                let response = gateway::answer_verify(state, peer, target, VerifyHeaders::of_parsed(request.headers));
                buffer.advance(head_length);
                (response, None)
            }
            FrontRequest::ModelCall { call, target, path_length, body_length } => {
                // Where the target and each header are in the head: the call reads them in
                // the head's copy (no request or header map is made of them).
                let (Some(places), Some(target_place)) =
                    (HeadPlaces::of(&buffer[..head_length], request.headers), place_within(&buffer[..head_length], target.as_bytes()))
                else {
                    return hand_over(stream, buffer);
                };
                call_head.clear();
                call_head.extend_from_slice(&buffer[..head_length]);
                let (Some(headers), Some(target)) =
                    (places.in_head(&call_head), call_head.get(target_place.clone()).and_then(|target| std::str::from_utf8(target).ok()))
                else {
                    return hand_over(stream, buffer);
                };
                // The rest of the body is still to come. hyper's path authenticates the key
                // before it reads a byte of a body, so a client without a key can neither
                // make the node hold a body nor keep a connection busy sending one slowly;
                // the front waits only for a small body of a key that authenticates, and
                // leaves every other call to that path.
                if buffer.len() - head_length < body_length
                    && (body_length > WAITED_BODY_BYTES || !call.key_authenticates(state, RequestHeaders::Head(headers)))
                {
                    return hand_over(stream, buffer);
                }
                activity.request_started();
                buffer.advance(head_length);
                if let Err(failure) = read_body_into(&mut stream, &mut buffer, body_length, state).await {
                    return match failure {
                        BodyFailure::Closed => FrontEnd::Closed,
                        BodyFailure::TimedOut => {
                            // The rest of the body may still come: the connection cannot
                            // serve another request, and closes after the refusal.
                            let refusal = Box::pin(call.refuse_slow_body(state.clone(), peer, RequestHeaders::Head(headers))).await;
                            answer.clear();
                            let _ = send_response(&mut stream, &mut buffer, refusal, true, &mut answer, None).await;
                            let _ = stream.shutdown().await;
                            FrontEnd::Closed
                        }
                    };
                }
                // A small body is copied out (one small allocation), so that the buffer
                // stays the connection's own and is read into again without a new one; a
                // larger one is split off rather than copied.
                let body = if body_length <= READ_CHUNK {
                    let body = bytes::Bytes::copy_from_slice(&buffer[..body_length]);
                    buffer.advance(body_length);
                    body
                } else {
                    buffer.split_to(body_length).freeze()
                };
                // A client that goes away before its answer ends the call, as under hyper.
                let (path, query) = (&target[..path_length], target.get(path_length + 1..));
                let served = call.serve_parsed(state, peer, path, query, headers, body);
                match unless_client_leaves(&mut stream, &mut buffer, served).await {
                    Ok((response, request_id)) => (response, Some(request_id)),
                    Err(()) => return FrontEnd::Closed,
                }
            }
        };
        answer.clear();
        let Ok(close) = send_response(&mut stream, &mut buffer, response, close, &mut answer, request_id.as_deref()).await else {
            return FrontEnd::Closed;
        };
        activity.response_finished();
        if close {
            let _ = stream.shutdown().await;
            return FrontEnd::Closed;
        }
    }
}

/// The most headers hyper takes in a request head (its default); it answers an empty 431
/// to a head with more.
const HYPER_MAX_HEADERS: usize = 100;

/// A receiver of `stop`'s value on a channel of this thread's own: the first connection of
/// a thread (per server) makes the channel, and a task on the thread's runtime sends
/// `true` into it when `stop` turns true (or its server goes away). A thread keeps the
/// copies of servers still running.
fn stop_on_this_thread(stop: &tokio::sync::watch::Receiver<bool>) -> tokio::sync::watch::Receiver<bool> {
    type Copies = Vec<(tokio::sync::watch::Receiver<bool>, tokio::sync::watch::Receiver<bool>)>;
    thread_local! {
        static COPIES: RefCell<Copies> = const { RefCell::new(Vec::new()) };
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return stop.clone();
    };
    COPIES.with_borrow_mut(|copies| {
        // A server's stop changes once, to true: a copy whose server stopped or went away
        // is let go.
        copies.retain(|(server, _)| matches!(server.has_changed(), Ok(false)));
        if let Some((_, copy)) = copies.iter().find(|(server, _)| server.same_channel(stop)) {
            return copy.clone();
        }
        let (sender, copy) = tokio::sync::watch::channel(*stop.borrow());
        let mut server = stop.clone();
        runtime.spawn(async move {
            let _ = server.wait_for(|stopped| *stopped).await;
            let _ = sender.send(true);
        });
        copies.push((stop.clone(), copy.clone()));
        copy
    })
}

/// Whether the head in `buffer` has more headers than hyper takes.
fn more_headers_than_hyper_takes(buffer: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; HYPER_MAX_HEADERS];
    matches!(httparse::Request::new(&mut headers).parse(buffer), Err(httparse::Error::TooManyHeaders))
}

/// Answers a head larger than [`MAX_REQUEST_HEAD_BYTES`] or with more than
/// [`HYPER_MAX_HEADERS`] headers with a 431 in the error shape of the plane its path
/// belongs to (as the router's refusals, with a request id and a log line), and closes the
/// connection: the rest of the head is not read.
async fn refuse_oversized_head<S>(mut stream: WatchedStream<S>, state: &AppState, head: &[u8]) -> FrontEnd<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = crate::request_context::RequestStart::now();
    let request_id = crate::request_context::new_request_id();
    // The request line, as far as it came: the method and the path (without the query).
    let line = head.split(|byte| *byte == b'\r' || *byte == b'\n').next().unwrap_or_default();
    let mut words = line.split(|byte| *byte == b' ');
    let method = words.next().and_then(|method| Method::from_bytes(method).ok()).unwrap_or(Method::GET);
    let target = words.next().and_then(|target| std::str::from_utf8(target).ok()).unwrap_or("");
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let status = axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let refusal = crate::planes::refusal_for_path(
        &HeaderMap::new(),
        path,
        status,
        "RequestHeaderFieldsTooLarge",
        &format!("The request head is larger than {MAX_REQUEST_HEAD_BYTES} bytes or has more than {HYPER_MAX_HEADERS} headers."),
        &request_id,
    );
    crate::request_context::log_request(&request_id, &state.listener_region, &method, path, status, started);
    let _ = send_response(&mut stream, &mut BytesMut::new(), refusal, true, &mut Vec::new(), None).await;
    let _ = stream.shutdown().await;
    FrontEnd::Closed
}

/// Gives the connection to hyper with what was read of it put back.
fn hand_over<S>(mut stream: WatchedStream<S>, read: BytesMut) -> FrontEnd<S> {
    stream.put_back(read.freeze());
    FrontEnd::HandOver(stream)
}

/// A request the front answers.
struct PlainRequest<'a> {
    kind: FrontRequest<'a>,
    /// `Connection: close`: answered, then the connection closes.
    close: bool,
}

enum FrontRequest<'a> {
    /// `/auth/verify` without a body, to the request line's path and query.
    Verify { target: &'a str },
    /// A model call served before the router, with a body of `body_length` bytes.
    /// `path_length`: the bytes of `target` before its first `?` (all of it without one).
    ModelCall { call: DirectModelCall, target: &'a str, path_length: usize, body_length: usize },
}

/// The request when it is a plain one the front answers (see the module's documentation);
/// `None` for anything hyper should see. `body_limit`: the largest model call body taken.
fn plain_request<'a>(request: &httparse::Request<'_, 'a>, body_limit: usize) -> Option<PlainRequest<'a>> {
    if request.version != Some(1) || matches!(request.method, None | Some("HEAD" | "CONNECT")) {
        return None;
    }
    let target = request.path?;
    if !target.starts_with('/') {
        return None;
    }
    let mut close = false;
    let mut content_length: Option<&[u8]> = None;
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if eq_ignore_ascii_case(name, b"connection") {
            if lists_token(header.value, b"upgrade") {
                return None;
            }
            close |= lists_token(header.value, b"close");
        } else if eq_ignore_ascii_case(name, b"content-length") {
            // A second one, even an equal one, is hyper's to judge.
            if content_length.replace(header.value).is_some() {
                return None;
            }
        } else if eq_ignore_ascii_case(name, b"transfer-encoding")
            || eq_ignore_ascii_case(name, b"expect")
            || eq_ignore_ascii_case(name, b"upgrade")
        {
            return None;
        }
    }
    if gateway::is_verify_target(target) {
        // httparse lets bytes above ASCII through in a target; hyper refuses them with a
        // 400. (A model call's target is checked below for plain bytes, all of them
        // visible ASCII.)
        if !target.bytes().all(|byte| byte.is_ascii_graphic()) {
            return None;
        }
        return matches!(content_length, None | Some(b"0")).then_some(PlainRequest { kind: FrontRequest::Verify { target }, close });
    }
    if target.len() > crate::app::MAX_REQUEST_TARGET_BYTES {
        return None;
    }
    let path_length = plain_path_length(target.as_bytes())?;
    let call = DirectModelCall::of(&Method::from_bytes(request.method?.as_bytes()).ok()?, &target[..path_length])?;
    // Digits only (no sign, no spaces inside), and not so many that they could overflow.
    let length = content_length.filter(|value| (1..=19).contains(&value.len()) && value.iter().all(u8::is_ascii_digit))?;
    // Nineteen digits at most: the sum cannot overflow.
    let body_length = length.iter().fold(0u64, |sum, digit| sum * 10 + u64::from(digit - b'0'));
    let body_length = usize::try_from(body_length).ok().filter(|length| *length <= body_limit)?;
    Some(PlainRequest { kind: FrontRequest::ModelCall { call, target, path_length, body_length }, close })
}

/// The length of `target`'s path (the bytes before its first `?`, all of them without
/// one) when every byte of the target is plain ([`is_plain_target_byte`]); `None` when one
/// is not. One pass for both: the target is read per byte once, not searched again for
/// its `?` (each search of a call's target cost as much as this whole pass).
fn plain_path_length(target: &[u8]) -> Option<usize> {
    // Eight bytes at a time: each byte looked up without a branch per byte, and the first
    // `?` found in a word at once.
    let mut path_length = None;
    let mut words = target.chunks_exact(8);
    for (index, word) in (&mut words).enumerate() {
        let mut plain = true;
        for byte in word {
            plain &= is_plain_target_byte(*byte);
        }
        if !plain {
            return None;
        }
        if path_length.is_none() {
            // A zero byte where the word holds a `?`: the lowest flagged byte is the first
            // `?` (a flag above a zero byte may be false, never one below it).
            let marks = u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ (ONES * u64::from(b'?'));
            let zeros = marks.wrapping_sub(ONES) & !marks & HIGH_BITS;
            if zeros != 0 {
                path_length = Some(index * 8 + zeros.trailing_zeros() as usize / 8);
            }
        }
    }
    let rest_starts = target.len() - words.remainder().len();
    for (offset, byte) in words.remainder().iter().enumerate() {
        if !is_plain_target_byte(*byte) {
            return None;
        }
        if *byte == b'?' && path_length.is_none() {
            path_length = Some(rest_starts + offset);
        }
    }
    Some(path_length.unwrap_or(target.len()))
}

/// Whether a model call's target may hold `byte` in the front: letters, digits and
/// `-._~!$&'()*+,;=:@/?%`, which `http`'s `Uri` takes as they are in a path and in a query,
/// so that splitting the target at its first `?` reads the path and query `Uri` would. A
/// target with any other byte (a `#`, which `Uri` cuts off as a fragment, a quote, a
/// brace...) is hyper's, read as before.
fn is_plain_target_byte(byte: u8) -> bool {
    PLAIN_TARGET_BYTES[usize::from(byte)]
}

/// [`is_plain_target_byte`] as a table (looked up per byte of every target; a search of
/// the punctuation per byte cost ten times as much).
const PLAIN_TARGET_BYTES: [bool; 256] = keygate_wire::forwarding_path::alphanumeric_and(PLAIN_TARGET_PUNCTUATION);

/// The marks a plain target may hold besides letters and digits.
const PLAIN_TARGET_PUNCTUATION: &[u8] = b"-._~!$&'()*+,;=:@/?%";

/// Why a model call's body was not read whole.
enum BodyFailure {
    /// The client closed or the connection failed.
    Closed,
    /// The body deadline passed.
    TimedOut,
}

/// Reads into `buffer` until it holds `until` bytes, within the body deadline (counted, as
/// hyper's path counts it, from when the head was read).
async fn read_body_into<S>(stream: &mut WatchedStream<S>, buffer: &mut BytesMut, until: usize, state: &AppState) -> Result<(), BodyFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if buffer.len() >= until {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + state.shared.settings.body_read_timeout();
    buffer.reserve(until - buffer.len());
    while buffer.len() < until {
        match tokio::time::timeout_at(deadline, stream.read_buf(buffer)).await {
            Ok(Ok(0) | Err(_)) => return Err(BodyFailure::Closed),
            Ok(Ok(_)) => {}
            Err(_) => return Err(BodyFailure::TimedOut),
        }
    }
    Ok(())
}

/// Writes `response` as HTTP/1.1 to `stream`, with the `Date` hyper would give it, its
/// body's length as `Content-Length` when known and in chunks otherwise, and
/// `Connection: close` when the connection closes after it (`close`, or the answer says
/// so). `Ok` with whether the connection is to close; `Err` when it failed mid-answer.
/// `buffer` holds what waits to be written, so that a small answer is one write; what the
/// client sends meanwhile is read into `read_ahead` (see [`unless_client_leaves`]). With a
/// `request_id`, the answer's `x-acs-request-id` is that one (any the answer holds is not
/// written).
async fn send_response<S>(
    stream: &mut WatchedStream<S>,
    read_ahead: &mut BytesMut,
    response: Response,
    close: bool,
    buffer: &mut Vec<u8>,
    request_id: Option<&str>,
) -> Result<bool, ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let close = close || parts.headers.get_all(axum::http::header::CONNECTION).iter().any(|value| lists_token(value.as_bytes(), b"close"));
    // 1xx, 204 and 304 answers have no body, and say nothing of one (hyper's rule too): a
    // chunked ending after a 204 would be read by the client as the next answer.
    let bodiless = parts.status.is_informational() || matches!(parts.status.as_u16(), 204 | 304);
    let length = if bodiless { Some(0) } else { body.size_hint().exact() };
    buffer.extend_from_slice(b"HTTP/1.1 ");
    buffer.extend_from_slice(parts.status.as_str().as_bytes());
    buffer.push(b' ');
    buffer.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    buffer.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // Written below, from the body and the connection.
        if matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection" | "date")
            || (request_id.is_some() && name == crate::request_context::X_ACS_REQUEST_ID)
        {
            continue;
        }
        buffer.extend_from_slice(name.as_str().as_bytes());
        buffer.extend_from_slice(b": ");
        buffer.extend_from_slice(value.as_bytes());
        buffer.extend_from_slice(b"\r\n");
    }
    if let Some(request_id) = request_id {
        buffer.extend_from_slice(b"x-acs-request-id: ");
        buffer.extend_from_slice(request_id.as_bytes());
        buffer.extend_from_slice(b"\r\n");
    }
    if close {
        buffer.extend_from_slice(b"connection: close\r\n");
    }
    match length {
        _ if bodiless => {}
        Some(length) => {
            buffer.extend_from_slice(b"content-length: ");
            buffer.extend_from_slice(crate::upstream_client::itoa_u64(length).as_bytes());
            buffer.extend_from_slice(b"\r\n");
        }
        None => buffer.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    buffer.extend_from_slice(b"date: ");
    with_http_date(|date| buffer.extend_from_slice(date.as_bytes()));
    buffer.extend_from_slice(b"\r\n\r\n");
    let chunked = length.is_none();
    let mut written: u64 = 0;
    if length != Some(0) {
        loop {
            // A part that is ready joins what waits to be written; before waiting for the
            // next, what waits is written (a stream's events go out as they come).
            let frame = match body.frame().now_or_never() {
                Some(frame) => frame,
                None => {
                    write_waiting(stream, buffer).await?;
                    unless_client_leaves(stream, read_ahead, body.frame()).await?
                }
            };
            let data = match frame {
                None => break,
                // An answer that breaks off mid-body ends the connection, as hyper ends it.
                Some(Err(_)) => return Err(()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers are not sent (nor by hyper, unless asked for).
                    Err(_) => continue,
                },
            };
            if data.is_empty() {
                continue;
            }
            written += data.len() as u64;
            if length.is_some_and(|length| written > length) {
                return Err(());
            }
            if chunked {
                // Writing into a Vec cannot fail.
                let _ = std::io::Write::write_fmt(buffer, format_args!("{:x}\r\n", data.len()));
            }
            if buffer.len() + data.len() <= COPIED_BODY_PART {
                buffer.extend_from_slice(&data);
            } else {
                write_waiting(stream, buffer).await?;
                stream.write_all(&data).await.map_err(drop)?;
            }
            if chunked {
                buffer.extend_from_slice(b"\r\n");
            }
        }
    }
    if length.is_some_and(|length| written != length) {
        return Err(());
    }
    if chunked {
        buffer.extend_from_slice(b"0\r\n\r\n");
    }
    write_waiting(stream, buffer).await?;
    Ok(close)
}

/// Runs `future` (a call's handler, or the wait for its answer's next part) while watching
/// the client's side of the connection: `Err` when the client closed it first, and the
/// future is dropped (the call ends; its meter counts what was sent), as hyper drops a
/// service whose client went away. What the client sends meanwhile (its next request) is
/// kept in `read_ahead`, up to a head's worth; past that, the connection is no longer
/// watched until the answer is written, so a client cannot make it buffer more.
///
/// Cheap when nothing comes: tokio marks a socket not readable after a read that did not
/// fill its buffer, so watching it costs no system call until the client sends or closes.
async fn unless_client_leaves<S, F>(stream: &mut WatchedStream<S>, read_ahead: &mut BytesMut, future: F) -> Result<F::Output, ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: std::future::Future,
{
    tokio::pin!(future);
    loop {
        if read_ahead.len() >= MAX_REQUEST_HEAD_BYTES {
            return Ok(future.await);
        }
        read_ahead.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            output = &mut future => return Ok(output),
            read = stream.read_buf(read_ahead) => match read {
                Ok(0) | Err(_) => return Err(()),
                Ok(_) => continue,
            },
        }
    }
}

/// Writes what `buffer` holds, and empties it.
async fn write_waiting<S: AsyncWrite + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Result<(), ()> {
    if !buffer.is_empty() {
        stream.write_all(buffer).await.map_err(drop)?;
        buffer.clear();
    }
    Ok(())
}

/// Calls `with` with the current second as an HTTP date, formatted once a second per
/// thread (as hyper caches its own).
fn with_http_date(with: impl FnOnce(&str)) {
    thread_local! {
        static DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    // The connection thread's second (`thread_clock`): no clock read per answer.
    let now = crate::thread_clock::unix_seconds();
    DATE.with_borrow_mut(|(second, text)| {
        if *second != now {
            *second = now;
            *text = keygate_core::civil_time::format_http_date(now);
        }
        with(text);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed<'h, 'b>(head: &'b [u8], headers: &'h mut [httparse::Header<'b>]) -> httparse::Request<'h, 'b> {
        let mut request = httparse::Request::new(headers);
        assert!(request.parse(head).unwrap().is_complete());
        request
    }

    /// What the front makes of `head` (with a body limit of 1,000 bytes): the verify target
    /// or the model call's path and body length, and whether the connection closes after.
    fn is_plain(head: &str) -> Option<(String, bool)> {
        let mut headers = [httparse::EMPTY_HEADER; FRONT_HEADERS];
        let request = parsed(head.as_bytes(), &mut headers);
        plain_request(&request, 1000).map(|plain| {
            let what = match plain.kind {
                FrontRequest::Verify { target } => target.to_string(),
                FrontRequest::ModelCall { target, body_length, .. } => format!("call {target} {body_length}"),
            };
            (what, plain.close)
        })
    }

    #[tokio::test]
    async fn connections_of_a_thread_share_its_copy_of_the_stop_signal_and_see_it_turn() {
        let (sender, stop) = tokio::sync::watch::channel(false);
        let first = stop_on_this_thread(&stop);
        let second = stop_on_this_thread(&stop);
        assert!(first.same_channel(&second), "one copy per thread and server");
        assert!(!first.same_channel(&stop), "not the server's own channel");
        let (_other_sender, other_stop) = tokio::sync::watch::channel(false);
        assert!(!stop_on_this_thread(&other_stop).same_channel(&first), "each server has its own copy");
        let mut waiting = second.clone();
        sender.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting.wait_for(|stopped| *stopped))
            .await
            .expect("the copy turns when the server stops")
            .unwrap();
        // A connection that comes after the stop gets a copy that is stopped already.
        let late = stop_on_this_thread(&stop);
        assert!(*late.borrow());
    }

    #[test]
    fn only_plain_verify_requests_are_answered_in_front() {
        assert_eq!(is_plain("GET /auth/verify HTTP/1.1\r\nHost: k\r\n\r\n"), Some(("/auth/verify".into(), false)));
        assert_eq!(
            is_plain("POST /auth/verify/compatible-mode/v1/chat/completions?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Some(("/auth/verify/compatible-mode/v1/chat/completions?x=1".into(), false))
        );
        assert_eq!(is_plain("GET /auth/verify HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"), Some(("/auth/verify".into(), true)));
        for hyper_s in [
            "GET /auth/verify HTTP/1.0\r\n\r\n",
            "HEAD /auth/verify HTTP/1.1\r\n\r\n",
            "GET /healthz HTTP/1.1\r\n\r\n",
            "GET /auth/verifyx HTTP/1.1\r\n\r\n",
            "GET http://keygate/auth/verify HTTP/1.1\r\n\r\n",
            "POST /auth/verify HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            "POST /auth/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /auth/verify HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /auth/verify HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert_eq!(is_plain(hyper_s), None, "{hyper_s:?} is hyper's");
        }
    }

    /// What [`send_response`] writes for `response`.
    async fn written(response: Response, close: bool) -> (Result<bool, ()>, String) {
        written_with_id(response, close, None).await
    }

    /// What [`send_response`] writes for `response` with `request_id`.
    async fn written_with_id(response: Response, close: bool, request_id: Option<&str>) -> (Result<bool, ()>, String) {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let mut stream = WatchedStream::new(ours, crate::connections::ConnectionActivity::new());
        let sent = send_response(&mut stream, &mut BytesMut::new(), response, close, &mut Vec::new(), request_id).await;
        drop(stream);
        let mut text = String::new();
        theirs.read_to_string(&mut text).await.unwrap();
        (sent, text)
    }

    fn without_date(text: &str) -> String {
        text.lines().filter(|line| !line.starts_with("date: ")).collect::<Vec<_>>().join("\n")
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_by_chunks_or_not_at_all() {
        use axum::http::StatusCode;
        let known = Response::builder().status(StatusCode::OK).header("content-type", "application/json").body("{}".into()).unwrap();
        let (sent, text) = written(known, false).await;
        assert_eq!(sent, Ok(false));
        assert_eq!(without_date(&text), "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 2\n\n{}");
        assert!(text.contains("\r\ndate: ") && text.contains(" GMT\r\n\r\n"), "{text:?}");

        let parts =
            futures_util::stream::iter(["data: a\n\n", "data: [DONE]\n\n"].map(|part| Ok::<_, std::io::Error>(bytes::Bytes::from(part))));
        let streamed = Response::new(axum::body::Body::from_stream(parts));
        let (sent, text) = written(streamed, true).await;
        assert_eq!(sent, Ok(true));
        assert_eq!(
            without_date(&text),
            "HTTP/1.1 200 OK\nconnection: close\ntransfer-encoding: chunked\n\n9\ndata: a\n\n\ne\ndata: [DONE]\n\n\n0\n"
        );

        // No body, and no word of one, after a 204 or a 304, whatever the handler's body.
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let parts = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
            let (sent, text) = written(Response::builder().status(status).body(axum::body::Body::from_stream(parts)).unwrap(), false).await;
            assert_eq!(sent, Ok(false));
            assert!(text.ends_with(" GMT\r\n\r\n"), "{text:?}");
            assert!(!text.contains("content-length") && !text.contains("transfer-encoding"), "{text:?}");
        }

        // A handler's header saying `Connection: close` closes the connection.
        let closing = Response::builder().header("connection", "close").body(axum::body::Body::empty()).unwrap();
        assert_eq!(written(closing, false).await.0, Ok(true));
    }

    /// A model call's answer carries its own request id once, in place of one the upstream
    /// sent; an answer written without one keeps the id it holds.
    #[tokio::test]
    async fn an_answer_carries_the_request_id_it_is_written_with_and_only_that_one() {
        let from_upstream = || Response::builder().header("x-acs-request-id", "UPSTREAM-ID").body("{}".into()).unwrap();
        let (_, text) = written_with_id(from_upstream(), false, Some("0123-KEYGATE")).await;
        assert_eq!(text.matches("x-acs-request-id").count(), 1, "{text:?}");
        assert!(text.contains("\r\nx-acs-request-id: 0123-KEYGATE\r\n"), "{text:?}");
        let (_, text) = written_with_id(from_upstream(), false, None).await;
        assert!(text.contains("\r\nx-acs-request-id: UPSTREAM-ID\r\n"), "{text:?}");
    }

    /// The front splits a plain target at its first `?`; `Uri` must read the same path and
    /// query from it, whichever plain byte is in either.
    #[test]
    fn a_plain_target_has_the_path_and_query_uri_reads() {
        let plain: Vec<u8> = (0..=u8::MAX).filter(|byte| is_plain_target_byte(*byte)).collect();
        assert!(plain.iter().all(|byte| byte.is_ascii_alphanumeric() || PLAIN_TARGET_PUNCTUATION.contains(byte)));
        assert_eq!(plain.len(), 62 + 20, "letters, digits and 20 marks");
        for byte in (0..=u8::MAX).filter(|byte| is_plain_target_byte(*byte)) {
            let byte = char::from(byte);
            let target = format!("/a{byte}b?c{byte}d");
            let uri: axum::http::Uri = target.parse().unwrap_or_else(|error| panic!("{target:?}: {error}"));
            let (path, query) = target.split_once('?').unwrap();
            assert_eq!((uri.path(), uri.query()), (path, Some(query)), "{target:?}");
            assert_eq!(plain_path_length(target.as_bytes()), Some(path.len()), "{target:?}");
        }
        assert_eq!(plain_path_length(b"/v1/chat"), Some(8));
        assert_eq!(plain_path_length(b"/v1/chat?"), Some(8));
        assert_eq!(plain_path_length(b"/v1/chat?a=?b"), Some(8));
        assert_eq!(plain_path_length(b"/v1/chat#top"), None);
        // Against a byte-by-byte reading, for every length up to 40 and every place of a
        // `?`, a second `?` and a byte that is not plain.
        let reference = |target: &[u8]| -> Option<usize> {
            target
                .iter()
                .all(|byte| is_plain_target_byte(*byte))
                .then(|| target.iter().position(|byte| *byte == b'?').unwrap_or(target.len()))
        };
        for length in 0..40usize {
            for first in 0..=length {
                for second in [first, first + 1, first + 9, length] {
                    for odd in [None, Some(first), Some(second), Some(0), Some(length.saturating_sub(1))] {
                        let mut target = vec![b'a'; length];
                        for (at, byte) in [(first, b'?'), (second, b'?')] {
                            if let Some(place) = target.get_mut(at) {
                                *place = byte;
                            }
                        }
                        if let Some(place) = odd.and_then(|at| target.get_mut(at)) {
                            *place = b'#';
                        }
                        assert_eq!(plain_path_length(&target), reference(&target), "{:?}", String::from_utf8_lossy(&target));
                    }
                }
            }
        }
        assert_eq!(plain_path_length(b"/v1/chat?a=\"b\""), None);
    }

    #[test]
    fn only_plain_model_calls_with_a_known_body_length_are_served_in_front() {
        let chat = "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(is_plain(chat), Some(("call /compatible-mode/v1/chat/completions 12".into(), false)));
        let padded = "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 0000000000000001000\r\n\r\n";
        assert_eq!(is_plain(padded), Some(("call /compatible-mode/v1/chat/completions 1000".into(), false)));
        let largest = "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n";
        assert_eq!(is_plain(largest), None, "nineteen nines: over the limit, not wrapped around");
        let query = "POST /compatible-mode/v1/chat/completions?a=1&b=%2F:@!$'()*+,;~ HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(is_plain(query), Some(("call /compatible-mode/v1/chat/completions?a=1&b=%2F:@!$'()*+,;~ 2".into(), false)));
        assert_eq!(
            is_plain("POST /apps/anthropic/v1/messages?beta=true HTTP/1.1\r\ncontent-length: 1000\r\nConnection: close\r\n\r\n"),
            Some(("call /apps/anthropic/v1/messages?beta=true 1000".into(), true))
        );
        let long_query = format!("POST /compatible-mode/v1/chat/completions?q={} HTTP/1.1\r\nContent-Length: 2\r\n\r\n", "a".repeat(9000));
        for hyper_s in [
            // No length, or one that is not plain digits, or two.
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: +12\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            // Over the body limit: hyper's path refuses it before reading it.
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 1001\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions HTTP/1.0\r\nContent-Length: 12\r\n\r\n",
            "PUT /compatible-mode/v1/chat/completions HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            "POST /compatible-mode/v1/embeddings HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            long_query.as_str(),
            // Bytes `Uri` cuts off (a fragment) or reads its own way: hyper's.
            "POST /compatible-mode/v1/chat/completions#x HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions?q=\"x\" HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
            "POST /compatible-mode/v1/chat/completions?q={x} HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
        ] {
            assert_eq!(is_plain(hyper_s), None, "{hyper_s:?} is hyper's");
        }
    }
}
