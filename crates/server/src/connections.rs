//! Connection hygiene on every listener: how many connections a node serves at once, how
//! long a client may take to send its headers or sit idle between requests, and an accept
//! loop that backs off when the process runs out of descriptors instead of spinning.
//!
//! A connection is in one of three phases. It starts *reading a head* (a client that
//! connects and sends nothing is cut off after `header_read_timeout_seconds`; on a TLS
//! listener the handshake comes first, under `tls_handshake_timeout_seconds` and that same
//! header-read deadline, which starts again once it is done); once the
//! head is read it is *busy* until its response has been written (no connection timer
//! runs then: the body has its own deadline where it is read, and a model's stream may be
//! silent for a long time); then it is *idle* until the next request's first byte (cut
//! off after `idle_timeout_seconds`). One watchdog per connection enforces both, re-armed
//! only when it fires, so a request pays two atomic stores and a clock read, not a timer.
//!
//! At the cap a new connection does not simply wait: the [`ConnectionTable`] sheds the
//! connection that has waited longest without a request in progress (reading a head or
//! idle), so a flood of silent connections cannot lock out a client that has a request to
//! make, even when the open-file limit keeps the cap low. A busy connection is never shed.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
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
    /// How long a client of a TLS listener may take to finish its handshake.
    pub tls_handshake_timeout: Duration,
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
            tls_handshake_timeout: Duration::from_secs(settings.tls_handshake_timeout_seconds),
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
    /// Set when the connection is shed to make room for a new one.
    shed: AtomicBool,
    /// Wakes the watchdog when `shed` is set.
    shed_signal: tokio::sync::Notify,
}

impl ConnectionActivity {
    /// A new connection, reading its first head.
    pub fn new() -> Arc<ConnectionActivity> {
        Arc::new(ConnectionActivity {
            opened: crate::thread_clock::now(),
            phase: AtomicU8::new(READING_HEAD),
            phase_began: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            shed_signal: tokio::sync::Notify::new(),
        })
    }

    /// When this connection last started waiting for a client that owes it bytes (a head
    /// or a next request), or `None` while a request is in progress.
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase.load(Ordering::Acquire) {
            BUSY => None,
            _ => Some(self.opened + Duration::from_millis(self.phase_began.load(Ordering::Relaxed))),
        }
    }

    /// Closes the connection through its watchdog.
    fn shed(&self) {
        self.shed.store(true, Ordering::Release);
        self.shed_signal.notify_one();
    }

    fn enter(&self, phase: u8) {
        // The thread's time, not the clock's: a call enters two phases, and its deadlines
        // are seconds (`thread_clock`).
        let elapsed = crate::thread_clock::now().saturating_duration_since(self.opened);
        let elapsed = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.phase_began.store(elapsed, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// A TLS handshake is done: the header-read deadline starts again for the first head
    /// (the handshake had a deadline of its own).
    pub fn handshake_finished(&self) {
        self.enter(READING_HEAD);
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
/// It also completes at once when the connection is shed.
pub async fn watchdog(activity: Arc<ConnectionActivity>, limits: ConnectionLimits) {
    let longest_sleep = limits.header_read_timeout.min(limits.idle_timeout);
    loop {
        if activity.shed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let wake = match activity.deadline(&limits) {
            Some(deadline) if deadline <= now => return,
            Some(deadline) => deadline.min(now + longest_sleep),
            None => now + longest_sleep,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = activity.shed_signal.notified() => {}
        }
    }
}

/// How often a connection waiting for a place looks again for one to shed.
const SHED_RETRY: Duration = Duration::from_millis(50);

/// The connections a process serves, shared by all its listeners: the cap, and who may be
/// shed when it is reached.
#[derive(Debug)]
pub struct ConnectionTable {
    permits: Arc<tokio::sync::Semaphore>,
    open: Mutex<HashMap<u64, Arc<ConnectionActivity>>>,
    next_id: AtomicU64,
}

/// A connection's place in the [`ConnectionTable`]; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    /// The new connection's phases, its clock started when it was admitted.
    pub activity: Arc<ConnectionActivity>,
    table: Arc<ConnectionTable>,
    id: u64,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.table.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

impl ConnectionTable {
    pub fn new(max_connections: usize) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable {
            permits: Arc::new(tokio::sync::Semaphore::new(max_connections)),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A place for a new connection. At the cap, the connection that has waited longest for
    /// its client is shed and its place taken when it closes; while every connection is
    /// busy this waits, looking again every [`SHED_RETRY`] for one that has become idle.
    /// `None` once closed.
    pub async fn admit(self: &Arc<ConnectionTable>) -> Option<ConnectionSlot> {
        let permit = loop {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => break permit,
                Err(tokio::sync::TryAcquireError::Closed) => return None,
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    self.shed_longest_waiting();
                    if let Ok(permit) = tokio::time::timeout(SHED_RETRY, self.permits.clone().acquire_owned()).await {
                        break permit.ok()?;
                    }
                }
            }
        };
        // Its clock starts now: time spent waiting for a place is not the client's.
        let activity = ConnectionActivity::new();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, activity.clone());
        Some(ConnectionSlot { activity, table: self.clone(), id, _permit: permit })
    }

    /// Sheds the connection that has waited longest without a request in progress, if any,
    /// unless one shed before has not closed yet (its place is coming). A scan of every
    /// connection, made only at the cap.
    fn shed_longest_waiting(&self) {
        let open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.values().any(|activity| activity.shed.load(Ordering::Acquire)) {
            return;
        }
        let longest =
            open.values().filter_map(|activity| activity.waiting_since().map(|since| (since, activity))).min_by_key(|(since, _)| *since);
        if let Some((_, activity)) = longest {
            activity.shed();
        }
    }
}

/// A connection's stream that tells its [`ConnectionActivity`] when bytes arrive, and
/// reads first the bytes put back into it (what the connection's front read before handing
/// the connection to hyper, `crate::connection_front`).
#[derive(Debug)]
pub struct WatchedStream<S> {
    inner: S,
    activity: Arc<ConnectionActivity>,
    put_back: bytes::Bytes,
}

impl<S> WatchedStream<S> {
    pub fn new(inner: S, activity: Arc<ConnectionActivity>) -> WatchedStream<S> {
        WatchedStream { inner, activity, put_back: bytes::Bytes::new() }
    }

    /// Bytes already read from the stream, to be read again before anything new. Their
    /// arrival was told to the activity when they were first read.
    pub fn put_back(&mut self, bytes: bytes::Bytes) {
        self.put_back = bytes;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.put_back.is_empty() {
            let taken = self.put_back.len().min(buffer.remaining());
            buffer.put_slice(&self.put_back[..taken]);
            bytes::Buf::advance(&mut self.put_back, taken);
            return Poll::Ready(Ok(()));
        }
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

    #[tokio::test]
    async fn bytes_put_back_are_read_before_the_rest_of_the_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let mut stream = WatchedStream::new(server, ConnectionActivity::new());
        stream.put_back(bytes::Bytes::from_static(b"GET /he"));
        client.write_all(b"althz HTTP/1.1\r\n\r\n").await.unwrap();
        drop(client);
        let mut read = Vec::new();
        stream.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"GET /healthz HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn the_cap_is_derived_from_the_open_file_limit_within_bounds() {
        assert_eq!(derived_connection_cap(1024), 384);
        assert_eq!(derived_connection_cap(20_000), 9872);
        assert_eq!(derived_connection_cap(100), 64);
        assert_eq!(derived_connection_cap(1 << 20), 50_000);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_connection_waiting_longest_is_shed_and_a_busy_one_never() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 2,
        };
        let table = ConnectionTable::new(2);
        let busy = table.admit().await.expect("a place");
        busy.activity.request_started();
        tokio::time::advance(Duration::from_secs(1)).await;
        let silent = table.admit().await.expect("a place");
        let silent_watchdog = tokio::spawn(watchdog(silent.activity.clone(), limits));
        tokio::time::advance(Duration::from_secs(1)).await;

        // The table is full: a newcomer sheds the silent connection, not the busy one, and
        // gets its place when it closes (here: when its slot is dropped, as serving does).
        let newcomer = tokio::spawn({
            let table = table.clone();
            async move { table.admit().await.map(|_| ()) }
        });
        tokio::time::timeout(Duration::from_millis(10), silent_watchdog).await.expect("the silent connection is shed at once").unwrap();
        assert!(!busy.activity.shed.load(Ordering::Acquire), "a busy connection is never shed");
        drop(silent);
        assert_eq!(newcomer.await.unwrap(), Some(()));

        // With only busy connections, a newcomer waits for one to finish.
        let table = ConnectionTable::new(1);
        let only = table.admit().await.unwrap();
        only.activity.request_started();
        let waiting = tokio::spawn({
            let table = table.clone();
            async move { table.admit().await.map(|_| ()) }
        });
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished() && !only.activity.shed.load(Ordering::Acquire));
        // Once its response is written it waits for its client, and is shed in turn.
        only.activity.response_finished();
        for _ in 0..4 {
            tokio::time::advance(SHED_RETRY).await;
            tokio::task::yield_now().await;
        }
        assert!(only.activity.shed.load(Ordering::Acquire), "an idle connection is shed for a waiting newcomer");
        drop((only, busy));
        assert_eq!(waiting.await.unwrap(), Some(()));
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
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 1,
        };
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
