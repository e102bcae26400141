//! Reading a request body into memory under a size limit and a deadline: the one way any
//! surface buffers a body. A declared `Content-Length` over the limit is refused before a
//! byte is read, and a client that stops sending is cut off when the deadline passes, so
//! no client can hold memory or a connection open by sending slowly.

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use crate::request_headers::RequestHeaders;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyReadError {
    /// Declared or sent more than `limit` bytes.
    TooLarge { limit: usize },
    /// Not finished within the deadline.
    TimedOut { seconds: u64 },
    /// The client went away or sent a malformed body.
    Broken,
}

/// Whether the request declares a body larger than `limit` (its `Content-Length`).
pub fn declares_more_than(headers: RequestHeaders<'_>, limit: usize) -> bool {
    headers
        .get_str(&axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|declared| declared > limit as u64)
}

/// Reads `body` whole, at most `limit` bytes, within `deadline`.
pub async fn read_body(headers: RequestHeaders<'_>, body: Body, limit: usize, deadline: Duration) -> Result<Bytes, BodyReadError> {
    if declares_more_than(headers, limit) {
        return Err(BodyReadError::TooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(deadline, limited.collect()).await {
        Err(_) => Err(BodyReadError::TimedOut { seconds: deadline.as_secs() }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(BodyReadError::TooLarge { limit }),
        Ok(Err(_)) => Err(BodyReadError::Broken),
    }
}
