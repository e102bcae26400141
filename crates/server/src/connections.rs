//! Connection hygiene on every listener: how many connections a node serves at once, how
//! long a client may take to send its headers or sit idle between requests, and an accept
//! loop that backs off when the process runs out of descriptors instead of spinning.
//!
//! A connection is in one of three phases. It starts *reading a head* (a client that
//! connects and sends nothing is cut off after `header_read_timeout_seconds`); once the
//! head is read it is *busy* until its response has been written (no connection timer
//! runs then: the body has its own deadline where it is read, and a model's stream may be
//! silent for a long time); then it is *idle* until the next request's first byte (cut
//! off after `idle_timeout_seconds`). One watchdog per connection enforces both, re-armed
//! only when it fires, so a request pays two atomic stores and a clock read, not a timer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::settings::Settings;

/// Descriptors kept out of the connection cap: the database pool, the change feed,
/// files, and the listeners themselves.
const RESERVED_DESCRIPTORS: u64 = 256;
/// The smallest cap derived from a low open-file limit.
const MINIMUM_DERIVED_CAP: u64 = 64;
/// The largest cap derived from a high one: past this, memory (tens of KiB a connection)
/// matters more than descriptors.
const MAXIMUM_DERIVED_CAP: u64 = 50_000;
/// Largest request head, and so the most one connection's read buffer holds while a
/// client sends it (hyper's default lets a slow client park 400 KB).
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// The limits every listener of this process applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Connections served at once by the whole process (all listeners together).
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits of `settings`, deriving the cap from `open_file_limit` when the settings
    /// leave it out.
    pub fn from_settings(settings: &Settings, open_file_limit: u64) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(settings.idle_timeout_seconds),
            max_connections: settings.max_connections.unwrap_or_else(|| derived_connection_cap(open_file_limit)),
        }
    }
}

/// Half of the descriptors left after the reserve: every forwarded call holds an
/// upstream connection beside its client's.
pub fn derived_connection_cap(open_file_limit: u64) -> usize {
    let cap = open_file_limit.saturating_sub(RESERVED_DESCRIPTORS) / 2;
    usize::try_from(cap.clamp(MINIMUM_DERIVED_CAP, MAXIMUM_DERIVED_CAP)).unwrap_or(usize::MAX)
}

/// Raises this process's soft open-file limit to its hard limit and returns the soft
/// limit now in force (a node behind the usual 1024 runs out long before its memory does).
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    }
}

const READING_HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// The phase of one connection and when it began, shared by its reader, its service and
/// its watchdog.
#[derive(Debug)]
pub struct ConnectionActivity {
    opened: Instant,
    phase: AtomicU8,
    /// Milliseconds after `opened` when the phase began.
    phase_began: AtomicU64,
}

impl ConnectionActivity {
    /// A new connection, reading its first head.
    pub fn new() -> Arc<ConnectionActivity> {
        Arc::new(ConnectionActivity { opened: Instant::now(), phase: AtomicU8::new(READING_HEAD), phase_began: AtomicU64::new(0) })
    }

    fn enter(&self, phase: u8) {
        let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.phase_began.store(elapsed, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// A request's head has been read: no connection deadline while it is served.
    pub fn request_started(&self) {
        self.phase.store(BUSY, Ordering::Release);
    }

    /// The response has been written: the connection waits for the next request.
    pub fn response_finished(&self) {
        self.enter(IDLE);
    }

    /// Bytes arrived: an idle connection starts reading its next head.
    fn bytes_arrived(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(READING_HEAD);
        }
    }

    /// When the current phase runs out, or `None` while busy.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let allowed = match self.phase.load(Ordering::Acquire) {
            READING_HEAD => limits.header_read_timeout,
            IDLE => limits.idle_timeout,
            _ => return None,
        };
        Some(self.opened + Duration::from_millis(self.phase_began.load(Ordering::Relaxed)) + allowed)
    }
}

/// Completes when the connection has been reading a head or idle for longer than its
/// limit; never while a request is being served. It sleeps at most the shorter limit at a
/// time, because the phase may move on meanwhile to one whose deadline comes sooner; so a
/// connection is closed at most that much after its deadline.
pub async fn watchdog(activity: Arc<ConnectionActivity>, limits: ConnectionLimits) {
    let longest_sleep = limits.header_read_timeout.min(limits.idle_timeout);
    loop {
        let now = Instant::now();
        match activity.deadline(&limits) {
            Some(deadline) if deadline <= now => return,
            Some(deadline) => tokio::time::sleep_until(deadline.min(now + longest_sleep)).await,
            None => tokio::time::sleep(longest_sleep).await,
        }
    }
}

/// A connection's stream that tells its [`ConnectionActivity`] when bytes arrive.
#[derive(Debug)]
pub struct WatchedStream<S> {
    inner: S,
    activity: Arc<ConnectionActivity>,
}

impl<S> WatchedStream<S> {
    pub fn new(inner: S, activity: Arc<ConnectionActivity>) -> WatchedStream<S> {
        WatchedStream { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buffer);
        if matches!(polled, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffers: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that marks its connection idle when it has been written (hyper drops
/// the body then), so a long stream keeps its connection busy until its last byte.
pub struct WatchedBody {
    inner: axum::body::Body,
    activity: Arc<ConnectionActivity>,
}

impl WatchedBody {
    pub fn new(inner: axum::body::Body, activity: Arc<ConnectionActivity>) -> WatchedBody {
        WatchedBody { inner, activity }
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.activity.response_finished();
    }
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Waits between failed accepts, doubling from 5 ms to 1 s, so that a process out of
/// descriptors neither spins nor stops accepting for long once they free up.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff { next: AcceptBackoff::FIRST }
    }
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const LONGEST: Duration = Duration::from_secs(1);

    /// How long to wait after this failure.
    pub fn after_failure(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(AcceptBackoff::LONGEST);
        wait
    }

    pub fn after_success(&mut self) {
        self.next = AcceptBackoff::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_derived_from_the_open_file_limit_within_bounds() {
        assert_eq!(derived_connection_cap(1024), 384);
        assert_eq!(derived_connection_cap(20_000), 9872);
        assert_eq!(derived_connection_cap(100), 64);
        assert_eq!(derived_connection_cap(1 << 20), 50_000);
    }

    #[test]
    fn accept_failures_back_off_to_a_second_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<u128> = (0..10).map(|_| backoff.after_failure().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.after_success();
        assert_eq!(backoff.after_failure(), Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_cut_off_reading_its_head_or_idle_but_never_while_busy() {
        let limits =
            ConnectionLimits { header_read_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(75), max_connections: 1 };
        let activity = ConnectionActivity::new();
        let started = Instant::now();
        watchdog(activity.clone(), limits).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10), "a silent client gets the header timeout");

        // A phase that moves on to a sooner deadline is not waited out at the old one.
        let short_idle = ConnectionLimits { idle_timeout: Duration::from_secs(2), ..limits };
        let activity = ConnectionActivity::new();
        let watched = tokio::spawn(watchdog(activity.clone(), short_idle));
        tokio::time::sleep(Duration::from_secs(1)).await;
        activity.request_started();
        activity.response_finished();
        let switched_at = Instant::now();
        watched.await.unwrap();
        assert!(switched_at.elapsed() <= Duration::from_secs(2 + 2), "closed {:?} after going idle", switched_at.elapsed());

        let activity = ConnectionActivity::new();
        activity.request_started();
        let busy = tokio::time::timeout(Duration::from_secs(600), watchdog(activity.clone(), limits)).await;
        assert!(busy.is_err(), "a busy connection is never cut off");
        activity.response_finished();
        let idle_from = Instant::now();
        watchdog(activity.clone(), limits).await;
        assert_eq!(idle_from.elapsed(), Duration::from_secs(75), "an idle connection gets the idle timeout");
    }
}
