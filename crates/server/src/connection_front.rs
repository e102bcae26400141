//! The front of every connection on a pay-as-you-go listener: `/auth/verify` answered from
//! a head parsed here with httparse, without hyper; at the first request that is anything
//! else, the connection is handed to hyper with the bytes already read, and stays with
//! hyper to its end.
//!
//! Why: `/auth/verify` sits on the hot path of another proxy (nginx's `auth_request`,
//! Envoy's `ext_authz`) and reads only memory, so what it costs is mostly the HTTP server
//! around it. hyper's connection dispatch (its request and header map, its response
//! encoding, its task wake-ups) was most of that: keygate answered at 0.83 of a bare hyper
//! server's requests a second on the same machine (docs/PERFORMANCE.md, "`/auth/verify`
//! without hyper").
//!
//! Only the plain case is answered here, and everything else is hyper's, so that its
//! answers to odd requests stay what they were: a request that is not HTTP/1.1, a `HEAD`
//! or `CONNECT`, a request with a body (`Content-Length` other than 0, `Transfer-Encoding`:
//! Envoy's `with_request_body`), `Expect` or `Upgrade`, a target that is not a path of
//! visible ASCII, a head that does not parse, has more than [`FRONT_HEADERS`] headers or
//! is larger than hyper takes. Timeouts are the connection's watchdog's, as under hyper:
//! the bytes read here go through the same `WatchedStream`, and each answer moves the
//! connection's phase like hyper's service does.

use std::cell::RefCell;
use std::net::IpAddr;

use axum::response::Response;
use bytes::{Buf, Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::connections::{ConnectionActivity, WatchedStream, MAX_REQUEST_HEAD_BYTES};
use crate::gateway;
use crate::gateway::verify_headers::VerifyHeaders;
use crate::state::AppState;

/// Headers a head answered here may have; a head with more goes to hyper (which takes
/// up to 100 and answers 431 beyond).
pub const FRONT_HEADERS: usize = 64;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// How the front of a connection ended.
pub enum FrontEnd<S> {
    /// The client closed, the connection asked to close, or the listener stopped while the
    /// connection was idle: nothing more to serve.
    Closed,
    /// A request for hyper: the stream, with the bytes read so far put back in front.
    HandOver(WatchedStream<S>),
}

/// Answers `/auth/verify` requests on `stream` until the connection closes or a request
/// comes that is hyper's. `stop` ends an idle connection when the listener stops.
pub async fn serve_front<S>(
    mut stream: WatchedStream<S>,
    state: &AppState,
    peer: IpAddr,
    activity: &ConnectionActivity,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> FrontEnd<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut answer = Vec::with_capacity(512);
    loop {
        if buffer.is_empty() {
            // Between requests: the only place where a stopping listener closes the
            // connection, as hyper's graceful shutdown closes an idle one.
            buffer.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                read = stream.read_buf(&mut buffer) => read,
                _ = stop.wait_for(|stopped| *stopped) => return FrontEnd::Closed,
            };
            match read {
                Ok(0) | Err(_) => return FrontEnd::Closed,
                Ok(_) => continue,
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; FRONT_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head_length = match request.parse(&buffer) {
            Ok(httparse::Status::Complete(head_length)) => head_length,
            Ok(httparse::Status::Partial) if buffer.len() < MAX_REQUEST_HEAD_BYTES => {
                // The rest of the head is on its way.
                buffer.reserve(READ_CHUNK);
                match stream.read_buf(&mut buffer).await {
                    Ok(0) | Err(_) => return FrontEnd::Closed,
                    Ok(_) => continue,
                }
            }
            // Too large, malformed, too many headers: hyper answers those its own way.
            Ok(httparse::Status::Partial) | Err(_) => return hand_over(stream, buffer),
        };
        let Some(plain) = plain_verify_request(&request) else {
            return hand_over(stream, buffer);
        };
        activity.request_started();
        let close = plain.close;
        let response = gateway::answer_verify(state, peer, plain.target, VerifyHeaders::of_parsed(request.headers));
        answer.clear();
        if write_response(response, close, &mut answer).await.is_err() {
            return FrontEnd::Closed;
        }
        buffer.advance(head_length);
        if stream.write_all(&answer).await.is_err() {
            return FrontEnd::Closed;
        }
        activity.response_finished();
        if close {
            let _ = stream.shutdown().await;
            return FrontEnd::Closed;
        }
    }
}

/// Gives the connection to hyper with what was read of it put back.
fn hand_over<S>(mut stream: WatchedStream<S>, read: BytesMut) -> FrontEnd<S> {
    stream.put_back(read.freeze());
    FrontEnd::HandOver(stream)
}

/// What the front needs of a request it answers.
struct PlainVerifyRequest<'a> {
    /// The request line's path and query.
    target: &'a str,
    /// `Connection: close`: answered, then the connection closes.
    close: bool,
}

/// The request when it is a plain `/auth/verify` one the front answers; `None` for
/// anything hyper should see.
fn plain_verify_request<'a>(request: &httparse::Request<'_, 'a>) -> Option<PlainVerifyRequest<'a>> {
    if request.version != Some(1) || matches!(request.method, None | Some("HEAD" | "CONNECT")) {
        return None;
    }
    let target = request.path?;
    // httparse lets bytes above ASCII through in a target; hyper refuses them with a 400.
    if !target.starts_with('/') || !target.bytes().all(|byte| byte.is_ascii_graphic()) || !gateway::is_verify_target(target) {
        return None;
    }
    let mut close = false;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|byte| *byte == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
                close |= token.eq_ignore_ascii_case(b"close");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if header.value != b"0" {
                return None;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        }
    }
    Some(PlainVerifyRequest { target, close })
}

/// Writes `response` as HTTP/1.1 into `into`, with the `Content-Length` and `Date` hyper
/// would give it, and `Connection: close` when the connection closes after it.
async fn write_response(response: Response, close: bool, into: &mut Vec<u8>) -> Result<(), axum::Error> {
    let (parts, body) = response.into_parts();
    // An allowed answer has no body; a refusal's is a small JSON document made in memory.
    let body = if body.size_hint().exact() == Some(0) { Bytes::new() } else { body.collect().await?.to_bytes() };
    into.extend_from_slice(b"HTTP/1.1 ");
    into.extend_from_slice(parts.status.as_str().as_bytes());
    into.push(b' ');
    into.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    into.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // Written below, from the body and the connection.
        if matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection" | "date") {
            continue;
        }
        into.extend_from_slice(name.as_str().as_bytes());
        into.extend_from_slice(b": ");
        into.extend_from_slice(value.as_bytes());
        into.extend_from_slice(b"\r\n");
    }
    if close {
        into.extend_from_slice(b"connection: close\r\n");
    }
    into.extend_from_slice(b"content-length: ");
    into.extend_from_slice(crate::upstream_client::itoa_u64(body.len() as u64).as_bytes());
    into.extend_from_slice(b"\r\ndate: ");
    with_http_date(|date| into.extend_from_slice(date.as_bytes()));
    into.extend_from_slice(b"\r\n\r\n");
    into.extend_from_slice(&body);
    Ok(())
}

/// Calls `with` with the current second as an HTTP date, formatted once a second per
/// thread (as hyper caches its own).
fn with_http_date(with: impl FnOnce(&str)) {
    thread_local! {
        static DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs() as i64);
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

    fn is_plain(head: &str) -> Option<(String, bool)> {
        let mut headers = [httparse::EMPTY_HEADER; FRONT_HEADERS];
        let request = parsed(head.as_bytes(), &mut headers);
        plain_verify_request(&request).map(|plain| (plain.target.to_string(), plain.close))
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
}
