//! keygate's own HTTP/1.1 client for forwarded calls (docs/PERFORMANCE.md, "Forwarding
//! against nginx"; docs/DECISIONS.md).
//!
//! Why not hyper-util's pooled client: it runs every upstream connection as a task of its
//! own, so a call crosses to it through a channel, its answer's head comes back through
//! another and its body through a third, each with a wake-up; its pool is a map keyed by
//! scheme and authority, hashed per call. A forwarded call needs none of this: one request,
//! already whole in memory, on one connection, its answer read by whoever relays it. Here
//! the connection is held by the calling task: the request is written and the answer's head
//! read by the handler, and the answer's body read when the client's connection polls it
//! ([`UpstreamBody`]), so there is no connection task and no channel.
//!
//! What it does:
//! - one pool of idle connections per upstream base ([`UpstreamEndpoint`], made once at
//!   start from the parsed base: scheme, host, port), split in shards by thread (a
//!   connection runtime takes and gives back only its own shard's connections, so that a
//!   call's upstream socket is on the reactor of the thread that serves the call:
//!   `crate::connection_runtimes`), last in first out, at most
//!   [`MAX_IDLE_CONNECTIONS_PER_BASE`] per shard; a connection idle longer than [`POOL_IDLE_TIMEOUT`]
//!   is closed when the pool is next used, or by the pool's reaper task (one per base, from
//!   its first idle connection, woken once per timeout); a connection idle for a second or
//!   more that the upstream has closed meanwhile is seen as closed when it is taken, and
//!   left;
//! - the request head written into one buffer ([`RequestHead`]): request line, `Host`, the
//!   headers as they are (they are `HeaderValue`s already: nothing is validated again),
//!   `Content-Length`; a small body is appended to the same buffer, so a call is one write;
//! - the answer's head parsed with `httparse`, at most [`MAX_RESPONSE_HEAD_BYTES`] and
//!   [`MAX_RESPONSE_HEADERS`] headers, into the headers a proxy relays (the framing and
//!   hop-by-hop ones read and left out in the same pass: the gateway relays the map as it
//!   is); its body framed by `Content-Length`, chunked transfer coding (extensions and
//!   trailers read and dropped) or the end of the connection;
//! - a connection goes back to the pool only when its answer was read to the end and allowed
//!   keep-alive (HTTP/1.1 without `Connection: close`, framed by length or chunks, nothing
//!   read past its end); a body dropped before its end closes the connection;
//! - a call that fails on a *reused* connection before any byte of the answer was read (the
//!   upstream closed the idle connection while it sat in the pool) is sent once more on a
//!   new connection; no other failure is retried here (failing over to another upstream is
//!   `gateway::upstream`'s);
//! - https with rustls (the ring provider, the Mozilla roots of `webpki-roots`, as the
//!   listeners and the client before this one), SNI from the base's host, ALPN `http/1.1`.
//!
//! What it does not do: HTTP/2, proxies, redirects, decompression, `Expect: 100-continue`
//! (a `1xx` interim answer is skipped), request bodies that are not already in memory.
//! Anything an upstream sends that cannot be read is an [`UpstreamError`], never a panic:
//! the gateway answers it as an upstream failure (502).

use std::cell::Cell;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The largest answer head read (status line and headers): an upstream that sends more is
/// refused rather than buffered without end.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;
/// The most headers an answer may have.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// Idle connections kept per upstream base and shard; one more is closed instead.
pub const MAX_IDLE_CONNECTIONS_PER_BASE: usize = 256;
/// Shards of each pool: shard 0 is every thread's but the connection runtimes', which
/// take 1, 2, ... (wrapping round past the last).
const POOL_SHARDS: usize = 16;

thread_local! {
    /// The pool shard this thread takes connections from and puts them back into.
    static POOL_SHARD: Cell<usize> = const { Cell::new(0) };
    /// The connection runtime this thread runs (numbered from 1), 0 on any other thread.
    static RUNTIME_NUMBER: Cell<usize> = const { Cell::new(0) };
}

/// Makes this thread use its own shard of every upstream pool (a connection runtime's
/// thread, numbered from 1).
pub fn use_pool_shard_on_this_thread(number: usize) {
    POOL_SHARD.with(|shard| shard.set(number % POOL_SHARDS));
    RUNTIME_NUMBER.with(|runtime| runtime.set(number));
}

fn runtime_of_this_thread() -> usize {
    RUNTIME_NUMBER.with(Cell::get)
}

fn pool_shard_of_this_thread() -> usize {
    POOL_SHARD.with(Cell::get)
}
/// How long an idle connection is kept (hyper-util's pool, before this client, kept them
/// 60 s too). Upstreams commonly close idle connections after 60 s or more; a connection
/// closed earlier is caught by the one retry on a new connection.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection must have been idle before it is looked at (for a close by the
/// upstream) when it is taken from the pool.
const LOOKED_AT_AFTER_IDLE: Duration = Duration::from_secs(1);
/// Headers an answer's map has room for beyond the upstream's own (see [`parse_head`]).
const ROOM_FOR_RELAYED_HEADERS: usize = 8;
/// Room made in a connection's read buffer before a read.
const READ_CHUNK: usize = 16 * 1024;
/// A request body up to this size is copied after the head into the one buffer (one
/// write); a larger one is written after it from its own bytes.
const BODY_COPIED_WITH_HEAD: usize = 16 * 1024;
/// The longest chunk-size line (with its extensions) or trailer line of a chunked answer.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes of a chunked answer (read and dropped).
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Why a call to an upstream failed: a sentence for the log (never the request, which
/// carries the upstream's credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    message: String,
    /// No answer head came within the first-byte timeout (the message says so).
    first_byte_timeout: bool,
}

impl UpstreamError {
    fn new(message: impl Into<String>) -> UpstreamError {
        UpstreamError { message: message.into(), first_byte_timeout: false }
    }

    fn first_byte_timeout(timeout: Duration) -> UpstreamError {
        UpstreamError { message: format!("no answer within the first-byte timeout of {} s", timeout.as_secs()), first_byte_timeout: true }
    }

    /// Whether the call ran out of its first-byte timeout (rather than failing on the way).
    pub fn is_first_byte_timeout(&self) -> bool {
        self.first_byte_timeout
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for UpstreamError {}

/// A TCP connection to an upstream, with TLS for an https base.
type Transport = crate::tls::PlainOrTls<TlsStream<TcpStream>>;

/// A connection and its read buffer (kept with it, so that a reused connection reuses the
/// buffer's memory too), and the timer of its calls' first-byte timeouts.
struct Connection {
    transport: Transport,
    read_buffer: BytesMut,
    /// Made with the connection's first call and set again for each call after it, rather
    /// than a timer made and dropped per call: tokio puts a new timer into its wheel and
    /// takes it out again, each under the wheel's lock, where moving a filed one's deadline
    /// later (the next call's deadline is later than the last's) is one atomic
    /// compare-and-swap; the wheel finds the later deadline when the earlier one comes, and
    /// files the timer again. Between calls it stays at the last call's deadline: a
    /// connection idle past it has its timer fire once, waking the task of the call that
    /// set it, which finds nothing to do, and the next call files it again. `None` until the
    /// first call.
    first_byte_timer: Option<FirstByteTimer>,
}

/// A connection's first-byte timer, and the connection runtime whose timer wheel holds it
/// (see `use_pool_shard_on_this_thread`). Past [`POOL_SHARDS`] runtimes, two share a pool
/// shard and so a connection: a call on the other runtime makes a timer of its own, since a
/// timer polled after its runtime has stopped panics (a socket only fails, and the call is
/// sent again on a new connection).
struct FirstByteTimer {
    runtime: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Connection {
    /// Whether an idle connection looks open: a read that does not wait finds nothing to
    /// read. A connection the upstream has closed reads its end (or an error); one with
    /// bytes waiting (unasked for, or a TLS record) is not trusted either. tokio answers
    /// without a system call when the runtime has not seen the socket become readable.
    fn looks_open(&self) -> bool {
        let tcp = match &self.transport {
            Transport::Plain(stream) => stream,
            Transport::Tls(stream) => stream.get_ref().0,
        };
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }
}

struct IdleConnection {
    connection: Connection,
    since: Instant,
}

/// Where one upstream base's calls go (scheme, host, port, parsed once at start) and its
/// pool of idle connections.
pub struct UpstreamEndpoint {
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// Set for https: the name the certificate must be valid for, also sent as SNI.
    tls_server_name: Option<ServerName<'static>>,
    /// The pool, by shard.
    shards: [Arc<PoolShard>; POOL_SHARDS],
    /// How long a connection may stay idle (the reaper's period too).
    idle_timeout: Duration,
    /// Whether the task that closes connections idle too long has been started (at the
    /// first answer whose connection may go back, on the runtime of the calls).
    reaper_started: AtomicBool,
}

/// One shard of a base's pool: its idle connections, the most recently used last (taken
/// first: the likeliest still open). An answer holds the shard it goes back to, not the
/// endpoint: each shard has a reference count of its own, written only by the thread whose
/// shard it is, where the endpoint's one count was a cache line passed between the cores
/// at every call (docs/PERFORMANCE.md, "Cache lines the cores pass to each other"). Padded
/// so that no two shards share a cache line either.
type PoolShard = crossbeam_utils::CachePadded<IdleConnections>;

struct IdleConnections {
    idle: Mutex<Vec<IdleConnection>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl std::fmt::Debug for UpstreamEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpstreamEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls_server_name.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamEndpoint {
    /// The endpoint of `host` (as in a URL's authority: an IPv6 address in brackets) and
    /// `port`, over TLS when `tls`.
    pub fn new(host: &str, port: u16, tls: bool) -> Result<UpstreamEndpoint, String> {
        let host = host.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')).unwrap_or(host).to_string();
        if host.is_empty() {
            return Err("no host".into());
        }
        let tls_server_name = if tls {
            Some(ServerName::try_from(host.clone()).map_err(|_| format!("{host} is not a name a certificate can be checked against"))?)
        } else {
            None
        };
        Ok(UpstreamEndpoint {
            host,
            port,
            tls_server_name,
            shards: pool_shards(MAX_IDLE_CONNECTIONS_PER_BASE, POOL_IDLE_TIMEOUT),
            idle_timeout: POOL_IDLE_TIMEOUT,
            reaper_started: AtomicBool::new(false),
        })
    }

    /// How many idle connections the pool holds now, in all its shards.
    pub fn idle_connections(&self) -> usize {
        self.shards.iter().map(|shard| shard.idle.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// This thread's shard of the idle connections.
    fn own_shard(&self) -> &Arc<PoolShard> {
        &self.shards[pool_shard_of_this_thread()]
    }

    /// Starts the task that closes this pool's connections idle too long when no call
    /// comes to take them: it wakes once per idle timeout and ends with the endpoint (it
    /// holds it weakly).
    fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.reaper_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let endpoint: Weak<UpstreamEndpoint> = Arc::downgrade(self);
        let period = self.idle_timeout;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(endpoint) = endpoint.upgrade() else {
                    return;
                };
                for shard in &endpoint.shards {
                    let mut idle = shard.idle.lock().unwrap_or_else(PoisonError::into_inner);
                    let expired = shard.take_expired(&mut idle, Instant::now());
                    drop(idle);
                    drop(expired);
                }
            }
        });
    }
}

/// Empty shards of a pool that keeps at most `max_idle` connections per shard, each for at
/// most `idle_timeout`.
fn pool_shards(max_idle: usize, idle_timeout: Duration) -> [Arc<PoolShard>; POOL_SHARDS] {
    std::array::from_fn(|_| {
        Arc::new(crossbeam_utils::CachePadded::new(IdleConnections { idle: Mutex::new(Vec::new()), max_idle, idle_timeout }))
    })
}

impl IdleConnections {
    /// The most recently used idle connection that has not been idle too long and still
    /// looks open. The others met on the way are closed (after the lock is let go: a close
    /// is a system call).
    fn checkout(&self, now: Instant) -> Option<Connection> {
        let mut closed = Vec::new();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let found = loop {
            let Some(newest) = idle.pop() else {
                break None;
            };
            let idle_for = now.duration_since(newest.since);
            if idle_for >= self.idle_timeout {
                // The newest is too old, so are all the others (they are older).
                closed.push(newest);
                closed.append(&mut idle);
                break None;
            }
            // A connection used within the last second is taken without a look: an upstream
            // closes an idle connection after seconds, not at once (and one that asked to
            // close it said so in its answer), and the look costs a system call per call
            // while the socket is still marked readable from the last answer. The retry on
            // a new connection covers the rest.
            if idle_for < LOOKED_AT_AFTER_IDLE || newest.connection.looks_open() {
                break Some(newest.connection);
            }
            closed.push(newest);
        };
        drop(idle);
        drop(closed);
        found
    }

    /// Puts a connection whose answer was read to its end back into the pool, unless the
    /// shard is full; connections idle too long (the oldest, at the front) are closed.
    fn checkin(&self, connection: Connection) {
        let now = crate::thread_clock::now().into_std();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = self.take_expired(&mut idle, now);
        let refused = if idle.len() < self.max_idle {
            idle.push(IdleConnection { connection, since: now });
            None
        } else {
            Some(connection)
        };
        drop(idle);
        drop(expired);
        drop(refused);
    }

    /// The connections idle longer than the timeout (the oldest, at the front).
    fn take_expired(&self, idle: &mut Vec<IdleConnection>, now: Instant) -> Vec<IdleConnection> {
        let expired_count = idle.iter().take_while(|entry| now.duration_since(entry.since) >= self.idle_timeout).count();
        idle.drain(..expired_count).collect()
    }
}

/// A request ready to be written: its head (and a small body) in one buffer. Deliberately
/// not `Debug`, like [`OutgoingRequest`]: the buffer holds the upstream's credential, which
/// must never reach a log line.
pub struct RequestHead {
    buffer: Vec<u8>,
    /// A HEAD request: its answer has no body whatever its headers say.
    head_only: bool,
}

impl RequestHead {
    /// Starts a request: its request line (the target is `path_parts` one after the other,
    /// then `?query`) and `Host`. `None` when the target holds a byte a request line cannot
    /// (anything but visible ASCII): the path was checked by `keygate_wire::forwarding_path`
    /// and the query encoded again, so this is a last guard against a line break.
    pub fn new(method: &Method, path_parts: &[&str], query: Option<&str>, host: &HeaderValue, header_room: usize) -> Option<RequestHead> {
        let target_length: usize = path_parts.iter().map(|part| part.len()).sum::<usize>() + query.map_or(0, |query| query.len() + 1);
        let mut buffer = Vec::with_capacity(64 + target_length + host.len() + header_room);
        buffer.extend_from_slice(method.as_str().as_bytes());
        buffer.push(b' ');
        let start = buffer.len();
        for part in path_parts {
            buffer.extend_from_slice(part.as_bytes());
        }
        if buffer.len() == start {
            buffer.push(b'/');
        }
        if let Some(query) = query {
            buffer.push(b'?');
            buffer.extend_from_slice(query.as_bytes());
        }
        if !buffer[start..].iter().all(|byte| (0x21..=0x7e).contains(byte)) {
            return None;
        }
        buffer.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        buffer.extend_from_slice(host.as_bytes());
        buffer.extend_from_slice(b"\r\n");
        Some(RequestHead { buffer, head_only: method == Method::HEAD })
    }

    /// Adds a header. Names and values are `http`'s types, valid by construction (no line
    /// break can be in them): they are copied as they are.
    pub fn header(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.buffer.extend_from_slice(name.as_str().as_bytes());
        self.buffer.extend_from_slice(b": ");
        self.buffer.extend_from_slice(value.as_bytes());
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// Adds a header of the client's request, its name in lower case as `http` writes
    /// names. The name and value come from a `RequestHeaders`, which holds only what
    /// httparse or `http` accepted (a token, a value without a line break): they are copied
    /// as they are.
    pub fn client_header(&mut self, name: &[u8], value: &[u8]) {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(name);
        self.buffer[start..].make_ascii_lowercase();
        self.buffer.extend_from_slice(b": ");
        self.buffer.extend_from_slice(value);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// Ends the head with the body's `Content-Length` (left out for an empty body of a
    /// method that has none, as hyper did) and makes the request.
    pub fn finish(mut self, method: &Method, body: Bytes) -> OutgoingRequest {
        let bodiless = body.is_empty() && matches!(*method, Method::GET | Method::HEAD | Method::CONNECT);
        if !bodiless {
            self.buffer.extend_from_slice(b"content-length: ");
            self.buffer.extend_from_slice(itoa_u64(body.len() as u64).as_bytes());
            self.buffer.extend_from_slice(b"\r\n");
        }
        self.buffer.extend_from_slice(b"\r\n");
        let separate_body = if body.len() <= BODY_COPIED_WITH_HEAD {
            self.buffer.extend_from_slice(&body);
            None
        } else {
            Some(body)
        };
        OutgoingRequest { bytes: self.buffer, separate_body, head_only: self.head_only }
    }
}

/// Whether a comma-separated header value (`Connection`'s) lists `token`, in any case.
/// Where `part` lies within `whole`, as a range of `whole`'s indices; `None` when it is
/// not inside it. For the slices a parser hands back of the buffer it parsed (httparse's
/// names, values and targets), so that they can be taken again from the buffer once it is
/// frozen, without a copy.
pub(crate) fn place_within(whole: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len()).filter(|end| *end <= whole.len())?;
    Some(start..end)
}

pub(crate) fn lists_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|byte| *byte == b',').any(|listed| listed.trim_ascii().eq_ignore_ascii_case(token))
}

/// A number in decimal without allocating.
pub(crate) fn itoa_u64(mut value: u64) -> DecimalText {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    DecimalText { digits, start }
}

pub(crate) struct DecimalText {
    digits: [u8; 20],
    start: usize,
}

impl DecimalText {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// A request as it is written: the head (and the body when small), then a larger body.
/// Kept whole until the answer's head has come, so that it can be written again on a new
/// connection.
pub struct OutgoingRequest {
    bytes: Vec<u8>,
    separate_body: Option<Bytes>,
    head_only: bool,
}

impl OutgoingRequest {
    /// The bytes of the head (and of a small body), for tests.
    pub fn head_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// An upstream's answer: its status and end-to-end headers (see [`parse_head`]: the
/// framing and hop-by-hop headers are not among them), whether it is an event stream, and
/// its body to be read as it comes.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Its `Content-Type` is `text/event-stream`.
    pub event_stream: bool,
    pub body: UpstreamBody,
}

/// The shared TLS configuration of https upstreams: rustls with the ring provider (the one
/// the listeners use), TLS 1.2 and 1.3, the Mozilla roots of `webpki-roots`, ALPN
/// `http/1.1` (this client speaks nothing else). Made once.
pub fn default_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            Arc::new(tls_config_with_roots(roots))
        })
        .clone()
}

/// The TLS configuration with other roots (a test's own certificate authority).
pub fn tls_config_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// An upstream's client: its connect timeout (TCP and TLS) and the TLS configuration. The
/// pools are the endpoints'.
#[derive(Clone)]
pub struct UpstreamClient {
    connect_timeout: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("UpstreamClient").field("connect_timeout", &self.connect_timeout).finish_non_exhaustive()
    }
}

/// A failed exchange, and whether any byte of the answer had been read (a failure before
/// one, on a reused connection, is the stale keep-alive case and is retried).
struct ExchangeFailure {
    error: UpstreamError,
    before_answer: bool,
}

impl UpstreamClient {
    /// A client with the shared TLS configuration ([`default_tls_config`]).
    pub fn new(connect_timeout: Duration) -> UpstreamClient {
        UpstreamClient::with_tls_config(connect_timeout, default_tls_config())
    }

    pub fn with_tls_config(connect_timeout: Duration, config: Arc<rustls::ClientConfig>) -> UpstreamClient {
        UpstreamClient { connect_timeout, tls: TlsConnector::from(config) }
    }

    /// Sends `request` to `endpoint` on an idle connection of its pool, or a new one, and
    /// reads the answer's head, all within `first_byte` (the upstream's first-byte timeout;
    /// past it, an error that [`UpstreamError::is_first_byte_timeout`]). On a reused
    /// connection that fails before any byte of the answer, the request is sent once more on
    /// a new connection, within the same time.
    pub async fn send(
        &self,
        endpoint: &Arc<UpstreamEndpoint>,
        request: &OutgoingRequest,
        first_byte: Duration,
    ) -> Result<UpstreamResponse, UpstreamError> {
        // The connection thread's time (`thread_clock`): the deadline is seconds away, and
        // the pool's ages are seconds.
        let now = crate::thread_clock::now();
        let deadline = now + first_byte;
        let shard = endpoint.own_shard();
        let mut pooled = shard.checkout(now.into_std());
        // The timer of a connection that failed, for the next.
        let mut spare_timer = None;
        loop {
            let (mut connection, reused) = match pooled.take() {
                Some(connection) => (connection, true),
                // Boxed: a connect (TLS's handshake above all) is a large future, made only
                // when the pool has no connection, and each future that awaits this one
                // would carry its room and copy it when moved. The connect timeout is its
                // own; the first-byte timeout holds too.
                None => match tokio::time::timeout_at(deadline, Box::pin(self.connect(endpoint))).await {
                    Ok(connected) => (connected?, false),
                    Err(_) => return Err(UpstreamError::first_byte_timeout(first_byte)),
                },
            };
            let runtime = runtime_of_this_thread();
            let mut timer = match connection.first_byte_timer.take().or_else(|| spare_timer.take()).filter(|timer| timer.runtime == runtime)
            {
                // Set again only when this call's deadline is sooner than the one the timer
                // holds, the last call's (rarely: a call's deadline is later than the last
                // one's). A timer left at a sooner deadline wakes the call early once, and is
                // set to the call's own then (below): a reset per call cost more than that.
                Some(mut timer) => {
                    if timer.sleep.deadline() > deadline {
                        timer.sleep.as_mut().reset(deadline);
                    }
                    timer
                }
                None => FirstByteTimer { runtime, sleep: Box::pin(tokio::time::sleep_until(deadline)) },
            };
            // The exchange first: an answer that came is taken even when the timer ran out
            // while it was on its way.
            let exchange = exchange(connection, request);
            tokio::pin!(exchange);
            let exchanged = loop {
                tokio::select! {
                    biased;
                    exchanged = &mut exchange => break exchanged,
                    () = timer.sleep.as_mut() => {
                        if timer.sleep.deadline() >= deadline {
                            return Err(UpstreamError::first_byte_timeout(first_byte));
                        }
                        // The last call's deadline: this call's is later.
                        timer.sleep.as_mut().reset(deadline);
                    }
                }
            };
            match exchanged {
                Ok((AnswerHead { status, headers, event_stream, framing, keep_alive }, mut connection)) => {
                    connection.first_byte_timer = Some(timer);
                    if keep_alive && !endpoint.reaper_started.load(Ordering::Relaxed) {
                        endpoint.start_reaper();
                    }
                    let body = UpstreamBody::new(connection, framing, keep_alive.then(|| shard.clone()));
                    return Ok(UpstreamResponse { status, headers, event_stream, body });
                }
                Err(failure) if reused && failure.before_answer => {
                    tracing::debug!(cause = %failure.error, "a pooled upstream connection was closed; the call is sent again on a new connection");
                    spare_timer = Some(timer);
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// A new connection: TCP (`TCP_NODELAY`: a request is written whole, and waiting for an
    /// acknowledgement would delay the next), then TLS for https, within the connect timeout.
    async fn connect(&self, endpoint: &UpstreamEndpoint) -> Result<Connection, UpstreamError> {
        let timeout = self.connect_timeout;
        let connecting = async {
            let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|error| UpstreamError::new(format!("connect error: {error}")))?;
            // Without it a call only waits longer; not a reason to fail.
            let _ = stream.set_nodelay(true);
            let transport = match &endpoint.tls_server_name {
                None => Transport::Plain(stream),
                Some(name) => {
                    let tls =
                        self.tls.connect(name.clone(), stream).await.map_err(|error| UpstreamError::new(format!("TLS error: {error}")))?;
                    Transport::Tls(Box::new(tls))
                }
            };
            Ok(Connection { transport, read_buffer: BytesMut::with_capacity(READ_CHUNK), first_byte_timer: None })
        };
        match tokio::time::timeout(timeout, connecting).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::new(format!("no connection within the connect timeout of {} s", timeout.as_secs()))),
        }
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

type ExchangeResult = Result<(AnswerHead, Connection), ExchangeFailure>;

/// Writes the request on `connection` and reads the answer's head (skipping `1xx` interim
/// answers). Returns the head (with how its body is framed and whether the connection may
/// be reused after it) and the connection.
async fn exchange(mut connection: Connection, request: &OutgoingRequest) -> ExchangeResult {
    let write_failed = |error: io::Error| ExchangeFailure {
        error: UpstreamError::new(format!("the request could not be sent: {error}")),
        before_answer: true,
    };
    connection.transport.write_all(&request.bytes).await.map_err(write_failed)?;
    if let Some(body) = &request.separate_body {
        connection.transport.write_all(body).await.map_err(write_failed)?;
    }
    connection.transport.flush().await.map_err(write_failed)?;

    connection.read_buffer.clear();
    let mut answer_bytes_read = false;
    loop {
        if !connection.read_buffer.is_empty() {
            match parse_head(&mut connection.read_buffer, request.head_only) {
                Ok(Some(ParsedHead::Interim)) => continue,
                Ok(Some(ParsedHead::Final(head))) => return Ok((head, connection)),
                Ok(None) if connection.read_buffer.len() >= MAX_RESPONSE_HEAD_BYTES => {
                    let message = format!("the upstream's answer head is longer than {} KiB", MAX_RESPONSE_HEAD_BYTES / 1024);
                    return Err(ExchangeFailure { error: UpstreamError::new(message), before_answer: false });
                }
                Ok(None) => {}
                Err(error) => return Err(ExchangeFailure { error, before_answer: false }),
            }
        }
        connection.read_buffer.reserve(READ_CHUNK);
        match connection.transport.read_buf(&mut connection.read_buffer).await {
            Ok(0) => {
                let message = if answer_bytes_read {
                    "the upstream closed the connection in the middle of the answer's head"
                } else {
                    "the upstream closed the connection without answering"
                };
                return Err(ExchangeFailure { error: UpstreamError::new(message), before_answer: !answer_bytes_read });
            }
            Ok(_) => answer_bytes_read = true,
            Err(error) => {
                let message = format!("the answer could not be read: {error}");
                return Err(ExchangeFailure { error: UpstreamError::new(message), before_answer: !answer_bytes_read });
            }
        }
    }
}

enum ParsedHead {
    /// A `1xx` answer other than 101: a final one follows.
    Interim,
    Final(AnswerHead),
}

/// A final answer's head as this client reads it.
struct AnswerHead {
    status: StatusCode,
    /// The end-to-end headers (see [`parse_head`]).
    headers: HeaderMap,
    event_stream: bool,
    framing: Framing,
    /// Whether the connection may be used again once the body is read.
    keep_alive: bool,
}

/// The hop-by-hop headers of RFC 9110 section 7.6.1 and the ones proxies treat so (`Host`
/// among them: it names this hop's server): never relayed from one side to the other. The
/// list the matches of [`answer_header`] and `gateway::upstream`'s request headers are
/// held to by their tests.
#[cfg(test)]
pub(crate) const HOP_BY_HOP: [&str; 9] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"];

/// What a header of an answer is to this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerHeader {
    /// `Content-Length`: the body's framing, read here (the body says its length again).
    ContentLength,
    /// `Transfer-Encoding`: the body's framing, read here.
    TransferEncoding,
    /// `Connection`: whether the connection is kept, and which headers are hop-by-hop too.
    Connection,
    /// Another hop-by-hop header (`Keep-Alive`, `TE`, `Upgrade`...): dropped.
    HopByHop,
    /// `Content-Type`: relayed, and read for whether the answer is an event stream.
    ContentType,
    /// Any other: relayed.
    EndToEnd,
}

/// What the header named `name` (as the upstream wrote it) is: told by its length first
/// (most names match no listed length), then compared without regard to case.
fn answer_header(name: &[u8]) -> AnswerHeader {
    let is = |listed: &[u8]| crate::request_headers::eq_ignore_ascii_case(name, listed);
    match name.len() {
        2 if is(b"te") => AnswerHeader::HopByHop,
        4 if is(b"host") => AnswerHeader::HopByHop,
        7 if is(b"trailer") || is(b"upgrade") => AnswerHeader::HopByHop,
        10 if is(b"connection") => AnswerHeader::Connection,
        10 if is(b"keep-alive") => AnswerHeader::HopByHop,
        12 if is(b"content-type") => AnswerHeader::ContentType,
        14 if is(b"content-length") => AnswerHeader::ContentLength,
        17 if is(b"transfer-encoding") => AnswerHeader::TransferEncoding,
        18 if is(b"proxy-authenticate") => AnswerHeader::HopByHop,
        19 if is(b"proxy-authorization") => AnswerHeader::HopByHop,
        _ => AnswerHeader::EndToEnd,
    }
}

/// Whether a `Content-Type` value is an event stream (its media type, whatever its
/// parameters, without regard to case).
fn is_event_stream_type(value: &[u8]) -> bool {
    value.trim_ascii_start().get(..17).is_some_and(|start| start.eq_ignore_ascii_case(b"text/event-stream"))
}

/// The header names a `Connection` value lists beyond `close` and `keep-alive` (which
/// name no header to drop: `Keep-Alive` is hop-by-hop anyway), in lower case: hop-by-hop
/// too (RFC 9110 section 7.6.1), in a request as in an answer.
pub(crate) fn connection_names(value: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    value
        .split(|byte| *byte == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case(b"close") && !token.eq_ignore_ascii_case(b"keep-alive"))
        .map(<[u8]>::to_ascii_lowercase)
}

/// Reads an answer head from the start of `buffer` and takes it out of the buffer when it
/// is whole (`Ok(None)` when it is not yet). The header map holds the answer's end-to-end
/// headers only, as a proxy relays them: the framing headers (`Content-Length`,
/// `Transfer-Encoding`; the body gives its length again), `Connection` and the other
/// hop-by-hop headers, and the headers `Connection` names, are read here and left
/// out, so that the gateway relays the map as it is. The header values are slices of the
/// head's bytes, shared, not copied one by one (they are still checked, as `HeaderValue`
/// does).
fn parse_head(buffer: &mut BytesMut, head_only: bool) -> Result<Option<ParsedHead>, UpstreamError> {
    // Slots left uninitialized: httparse fills the ones it uses (4 KiB not cleared per call).
    let mut header_slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buffer, &mut header_slots) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(UpstreamError::new(format!("the upstream's answer has more than {MAX_RESPONSE_HEADERS} headers")));
        }
        Err(error) => return Err(UpstreamError::new(format!("the upstream's answer is not HTTP/1.1: {error}"))),
    };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| UpstreamError::new(format!("the upstream answered with status {code}")))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(UpstreamError::new("the upstream switched protocols, which a forwarded call does not"));
    }
    if status.is_informational() {
        buffer.advance(length);
        return Ok(Some(ParsedHead::Interim));
    }
    // Each relayed header's name, and where its value is in the head: on the stack for the
    // usual answer (a vector of them was an allocation per call).
    let mut fields: smallvec::SmallVec<[(HeaderName, std::ops::Range<usize>); 8]> = smallvec::SmallVec::new();
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding_chunked: Option<bool> = None;
    let mut connection_close = false;
    let mut connection_names_headers = false;
    let mut content_type: Option<bool> = None;
    for header in response.headers.iter() {
        let kind = answer_header(header.name.as_bytes());
        match kind {
            AnswerHeader::ContentLength => {
                let parsed = parse_content_length(header.value)?;
                if content_length.is_some_and(|earlier| earlier != parsed) {
                    return Err(UpstreamError::new("the upstream's answer has two different Content-Length headers"));
                }
                content_length = Some(parsed);
                continue;
            }
            AnswerHeader::TransferEncoding => {
                // Only whether the last coding is chunked matters (RFC 9112 section 6.3).
                let last = header.value.rsplit(|byte| *byte == b',').next().unwrap_or_default();
                transfer_encoding_chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                continue;
            }
            AnswerHeader::Connection => {
                connection_close |= lists_token(header.value, b"close");
                connection_names_headers |= connection_names(header.value).next().is_some();
                continue;
            }
            AnswerHeader::HopByHop => continue,
            // The first `Content-Type` says what the answer is, as `HeaderMap::get` reads it.
            AnswerHeader::ContentType => {
                content_type.get_or_insert_with(|| is_event_stream_type(header.value));
            }
            AnswerHeader::EndToEnd => {}
        }
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| UpstreamError::new("the upstream's answer has a header name that is not valid"))?;
        // The value is a slice of the head (httparse's contract); checked all the same, so
        // that a surprise is an error, never a panic.
        let Some(place) = place_within(&buffer[..length], header.value) else {
            return Err(UpstreamError::new("the upstream's answer head could not be read"));
        };
        fields.push((name, place));
    }
    if connection_names_headers {
        // Rare: `Connection: close` and `keep-alive` name no header.
        let named: Vec<Vec<u8>> = response
            .headers
            .iter()
            .filter(|header| answer_header(header.name.as_bytes()) == AnswerHeader::Connection)
            .flat_map(|header| connection_names(header.value))
            .collect();
        fields.retain(|(name, _)| !named.iter().any(|named| named.as_slice() == name.as_str().as_bytes()));
    }
    let event_stream = content_type.unwrap_or(false);
    let version = response.version;
    let head = buffer.split_to(length).freeze();
    // Room for the headers the gateway adds to the answer it relays (the request id, a
    // limit's), so that it does not grow the map again.
    let mut headers = HeaderMap::with_capacity(fields.len() + ROOM_FOR_RELAYED_HEADERS);
    // Drained in place (a move of the stack array into an iterator copied it whole).
    for (name, place) in fields.drain(..) {
        let value = HeaderValue::from_maybe_shared(head.slice(place))
            .map_err(|_| UpstreamError::new("the upstream's answer has a header value that is not valid"))?;
        headers.append(name, value);
    }
    // HTTP/1.0 connections are not kept (keep-alive there is an extension this client does
    // not ask for).
    let mut keep_alive = version == Some(1) && !connection_close;
    let no_body = head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Length(0)
    } else {
        match (transfer_encoding_chunked, content_length) {
            (Some(true), length) => {
                // Both framings: the chunks are read, and the connection not trusted again.
                if length.is_some() {
                    keep_alive = false;
                }
                Framing::Chunked
            }
            (Some(false), _) => Framing::UntilClose,
            (None, Some(length)) => Framing::Length(length),
            (None, None) => Framing::UntilClose,
        }
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Some(ParsedHead::Final(AnswerHead { status, headers, event_stream, framing, keep_alive })))
}

fn parse_content_length(value: &[u8]) -> Result<u64, UpstreamError> {
    let invalid = || UpstreamError::new("the upstream's answer has a Content-Length that is not a number");
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    Ok(digits.iter().fold(0u64, |total, digit| total * 10 + u64::from(digit - b'0')))
}

/// What a decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Data(Bytes),
    /// More bytes are needed.
    NeedMore,
    /// The body has ended.
    End,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data {
        remaining: u64,
    },
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers {
        bytes_read: usize,
    },
    Done,
}

/// Decodes the chunked transfer coding from a buffer, taking what it decodes out of it:
/// chunk extensions and trailers are read and dropped.
#[derive(Debug)]
struct ChunkedDecoder {
    state: ChunkState,
}

impl ChunkedDecoder {
    fn new() -> ChunkedDecoder {
        ChunkedDecoder { state: ChunkState::Size }
    }

    #[cfg(test)]
    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    fn decode(&mut self, buffer: &mut BytesMut) -> Result<Decoded, UpstreamError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buffer)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 { ChunkState::Trailers { bytes_read: 0 } } else { ChunkState::Data { remaining: size } };
                }
                ChunkState::Data { remaining } => {
                    if buffer.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let taken = remaining.min(buffer.len() as u64);
                    let left = remaining - taken;
                    self.state = if left == 0 { ChunkState::DataEnd } else { ChunkState::Data { remaining: left } };
                    // `taken` is at most the buffer's length, a usize.
                    return Ok(Decoded::Data(buffer.split_to(taken as usize).freeze()));
                }
                ChunkState::DataEnd => match buffer.first() {
                    None => return Ok(Decoded::NeedMore),
                    Some(b'\n') => {
                        buffer.advance(1);
                        self.state = ChunkState::Size;
                    }
                    Some(b'\r') if buffer.len() < 2 => return Ok(Decoded::NeedMore),
                    Some(b'\r') if buffer[1] == b'\n' => {
                        buffer.advance(2);
                        self.state = ChunkState::Size;
                    }
                    Some(_) => return Err(UpstreamError::new("the upstream's chunked answer has a chunk longer than its size")),
                },
                ChunkState::Trailers { bytes_read } => {
                    let Some(line) = take_line(buffer)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(Decoded::End);
                    }
                    let bytes_read = bytes_read + line.len();
                    if bytes_read > MAX_TRAILER_BYTES {
                        return Err(UpstreamError::new("the upstream's chunked answer has too many trailers"));
                    }
                    self.state = ChunkState::Trailers { bytes_read };
                }
                ChunkState::Done => return Ok(Decoded::End),
            }
        }
    }
}

/// Takes a line (without its CRLF or LF) from the front of `buffer`; `None` when there is
/// no whole line yet. A line longer than [`MAX_CHUNK_LINE`] is an error.
fn take_line(buffer: &mut BytesMut) -> Result<Option<BytesMut>, UpstreamError> {
    let Some(end) = memchr::memchr(b'\n', buffer) else {
        if buffer.len() > MAX_CHUNK_LINE {
            return Err(UpstreamError::new("the upstream's chunked answer has a line that is too long"));
        }
        return Ok(None);
    };
    if end > MAX_CHUNK_LINE {
        return Err(UpstreamError::new("the upstream's chunked answer has a line that is too long"));
    }
    let mut line = buffer.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
}

/// The size of a chunk-size line, in hexadecimal, its extensions (after `;`) ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, UpstreamError> {
    let invalid = || UpstreamError::new("the upstream's chunked answer has a chunk size that is not valid");
    let size = line.split(|byte| *byte == b';').next().unwrap_or_default().trim_ascii();
    if size.is_empty() || size.len() > 15 {
        return Err(invalid());
    }
    size.iter().try_fold(0u64, |total, digit| {
        let value = (*digit as char).to_digit(16).ok_or_else(invalid)?;
        Ok(total * 16 + u64::from(value))
    })
}

/// How the body is being read.
#[derive(Debug)]
enum BodyDecoder {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// An upstream answer's body, read from its connection when polled (by the client's
/// connection relaying it: no task of its own). When it has been read to its end and the
/// answer allowed it, the connection goes back to its endpoint's pool; dropped before, the
/// connection is closed.
pub struct UpstreamBody {
    connection: Option<Connection>,
    decoder: BodyDecoder,
    /// The pool's shard to give the connection back to, when the answer allowed keep-alive.
    pool: Option<Arc<PoolShard>>,
    ended: bool,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("UpstreamBody").field("decoder", &self.decoder).field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl UpstreamBody {
    fn new(connection: Connection, framing: Framing, pool: Option<Arc<PoolShard>>) -> UpstreamBody {
        let decoder = match framing {
            Framing::Length(remaining) => BodyDecoder::Length { remaining },
            Framing::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => BodyDecoder::UntilClose,
        };
        let mut body = UpstreamBody { connection: Some(connection), decoder, pool, ended: false };
        // An answer without a body gives its connection back at once: whoever takes the
        // answer may never poll it.
        if matches!(body.decoder, BodyDecoder::Length { remaining: 0 }) {
            body.finish();
        }
        body
    }

    /// The body has been read to its end: the connection goes back to the pool when the
    /// answer allowed it and nothing was sent past the body.
    fn finish(&mut self) {
        self.ended = true;
        if let (Some(connection), Some(pool)) = (self.connection.take(), self.pool.take()) {
            if connection.read_buffer.is_empty() {
                pool.checkin(connection);
            }
        }
    }

    /// Gives up on the connection (an error, or the end of a close-delimited body).
    fn abandon(&mut self) {
        self.ended = true;
        self.connection = None;
        self.pool = None;
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(connection) = this.connection.as_mut() else {
                this.ended = true;
                return Poll::Ready(None);
            };
            let decoded = match &mut this.decoder {
                BodyDecoder::Length { remaining } => {
                    if *remaining == 0 {
                        Ok(Decoded::End)
                    } else if connection.read_buffer.is_empty() {
                        Ok(Decoded::NeedMore)
                    } else {
                        let taken = (*remaining).min(connection.read_buffer.len() as u64);
                        *remaining -= taken;
                        Ok(Decoded::Data(connection.read_buffer.split_to(taken as usize).freeze()))
                    }
                }
                BodyDecoder::Chunked(decoder) => decoder.decode(&mut connection.read_buffer),
                BodyDecoder::UntilClose => {
                    if connection.read_buffer.is_empty() {
                        Ok(Decoded::NeedMore)
                    } else {
                        Ok(Decoded::Data(connection.read_buffer.split().freeze()))
                    }
                }
            };
            match decoded {
                Ok(Decoded::Data(bytes)) => {
                    // The last bytes of a body of known length: the connection goes back
                    // now, since the relaying side stops polling at the end of the stream.
                    if matches!(this.decoder, BodyDecoder::Length { remaining: 0 }) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(error) => {
                    this.abandon();
                    return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, error))));
                }
            }
            // More bytes from the connection.
            if connection.read_buffer.capacity() - connection.read_buffer.len() < READ_CHUNK / 4 {
                connection.read_buffer.reserve(READ_CHUNK);
            }
            let read = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut connection.transport), context, &mut connection.read_buffer));
            match read {
                Ok(0) => {
                    if matches!(this.decoder, BodyDecoder::UntilClose) {
                        this.abandon();
                        return Poll::Ready(None);
                    }
                    this.abandon();
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection in the middle of the answer",
                    ))));
                }
                Ok(_) => {}
                Err(error) => {
                    this.abandon();
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    /// Exact for a body framed by `Content-Length` (what is left of it): relayed unchanged,
    /// the client is told the same length.
    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            BodyDecoder::Length { remaining } => SizeHint::with_exact(remaining),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::net::TcpListener;

    use super::*;

    fn chunked(input: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        let mut decoder = ChunkedDecoder::new();
        let mut buffer = BytesMut::from(input);
        let mut body = Vec::new();
        loop {
            match decoder.decode(&mut buffer)? {
                Decoded::Data(bytes) => body.extend_from_slice(&bytes),
                Decoded::End => return Ok(body),
                Decoded::NeedMore => return Err(UpstreamError::new("incomplete")),
            }
        }
    }

    #[test]
    fn a_chunked_body_is_decoded_with_its_extensions_and_trailers_dropped() {
        let input = b"5;name=value\r\nhello\r\n7 ; other\r\n, world\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n";
        assert_eq!(chunked(input).unwrap(), b"hello, world");
        // The same, a byte at a time, as a slow upstream would send it.
        let mut decoder = ChunkedDecoder::new();
        let mut buffer = BytesMut::new();
        let mut body = Vec::new();
        let mut ended = false;
        for byte in input {
            buffer.extend_from_slice(&[*byte]);
            loop {
                match decoder.decode(&mut buffer).unwrap() {
                    Decoded::Data(bytes) => body.extend_from_slice(&bytes),
                    Decoded::End => {
                        ended = true;
                        break;
                    }
                    Decoded::NeedMore => break,
                }
            }
        }
        assert!(ended && decoder.is_done());
        assert_eq!(body, b"hello, world");
        // Sizes in hexadecimal, upper or lower case; bare LF line ends.
        assert_eq!(chunked(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(), b"0123456789");
        assert_eq!(chunked(b"1\nx\n0\n\n").unwrap(), b"x");
    }

    #[test]
    fn a_chunked_body_that_cannot_be_read_is_an_error() {
        for input in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"\r\nhello\r\n0\r\n\r\n", b"3\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n"] {
            assert!(chunked(input).is_err(), "{}", String::from_utf8_lossy(input));
        }
        let endless_line = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert!(chunked(&endless_line).is_err());
    }

    #[test]
    fn a_request_head_is_written_whole_with_its_length() {
        let host = HeaderValue::from_static("provider.example:8080");
        let mut head = RequestHead::new(&Method::POST, &["/v1", "/chat/completions"], Some("a=1"), &host, 0).unwrap();
        head.header(&axum::http::header::CONTENT_TYPE, &HeaderValue::from_static("application/json"));
        let request = head.finish(&Method::POST, Bytes::from_static(b"{}"));
        assert_eq!(
            request.head_bytes(),
            b"POST /v1/chat/completions?a=1 HTTP/1.1\r\nhost: provider.example:8080\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        let request = RequestHead::new(&Method::GET, &["", ""], None, &host, 0).unwrap().finish(&Method::GET, Bytes::new());
        assert_eq!(request.head_bytes(), b"GET / HTTP/1.1\r\nhost: provider.example:8080\r\n\r\n");
        // A line break or a space cannot reach the request line.
        assert!(RequestHead::new(&Method::GET, &["/v1 HTTP/1.1\r\nx: y"], None, &host, 0).is_none());
        assert!(RequestHead::new(&Method::GET, &["/v1"], Some("a=\n"), &host, 0).is_none());
        assert_eq!(itoa_u64(0).as_bytes(), b"0");
        assert_eq!(itoa_u64(u64::MAX).as_bytes(), u64::MAX.to_string().as_bytes());
    }

    /// A scripted upstream on loopback: each accepted connection is handed to `serve` with
    /// its number (from 0); how many were accepted is counted.
    async fn scripted_upstream<F, Fut>(serve: F) -> (Arc<UpstreamEndpoint>, Arc<AtomicUsize>)
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(number, stream));
            }
        });
        (Arc::new(UpstreamEndpoint::new("127.0.0.1", port, false).unwrap()), accepted)
    }

    /// Reads one request head and its `Content-Length` body from `stream`; false when the
    /// connection was closed first.
    async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
        loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length: usize =
                    head.lines().find_map(|line| line.strip_prefix("content-length: ")).map_or(0, |value| value.trim().parse().unwrap());
                if buffer.len() >= end + 4 + length {
                    buffer.drain(..end + 4 + length);
                    return true;
                }
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// Answers every request on the connection with `answer`, then closes it after
    /// `requests_per_connection` answers.
    async fn answer_each(mut stream: TcpStream, answer: &'static [u8], requests_per_connection: usize) {
        let mut buffer = Vec::new();
        for _ in 0..requests_per_connection {
            if !read_request(&mut stream, &mut buffer).await {
                return;
            }
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }

    fn post(body: &'static [u8]) -> OutgoingRequest {
        let host = HeaderValue::from_static("upstream.test");
        RequestHead::new(&Method::POST, &["/v1/chat/completions"], None, &host, 0).unwrap().finish(&Method::POST, Bytes::from_static(body))
    }

    /// The first-byte timeout of the tests' calls that are answered.
    const FIRST_BYTE: Duration = Duration::from_secs(5);

    fn client() -> UpstreamClient {
        UpstreamClient::new(Duration::from_secs(5))
    }

    async fn body_text(body: UpstreamBody) -> Result<String, io::Error> {
        Ok(String::from_utf8(body.collect().await?.to_bytes().to_vec()).unwrap())
    }

    const JSON_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

    /// Every hop-by-hop name is left out in any case, the framing ones read, and nothing
    /// else: a longer name, or one a letter off, is relayed.
    #[test]
    fn an_answers_hop_by_hop_and_framing_headers_are_told_apart() {
        assert_eq!(HOP_BY_HOP.len(), 9, "a name added to the list is added to the match too");
        for name in HOP_BY_HOP {
            for written in [name.to_string(), name.to_ascii_uppercase()] {
                let kind = answer_header(written.as_bytes());
                assert!(
                    matches!(kind, AnswerHeader::HopByHop | AnswerHeader::Connection | AnswerHeader::TransferEncoding),
                    "{written}: {kind:?}"
                );
            }
        }
        assert_eq!(answer_header(b"Content-Length"), AnswerHeader::ContentLength);
        assert_eq!(answer_header(b"CONNECTION"), AnswerHeader::Connection);
        assert_eq!(answer_header(b"Content-TYPE"), AnswerHeader::ContentType);
        for name in
            ["content-lengths", "hosts", "tes", "x-upstream-hop", "date", "proxy-authorizations", "a-name-longer-than-any-listed-one"]
        {
            assert_eq!(answer_header(name.as_bytes()), AnswerHeader::EndToEnd, "{name}");
        }
    }

    /// The answer's map holds what a proxy relays: not its framing, not `Connection` and
    /// the names it lists, not the other hop-by-hop headers; every value of the rest.
    #[tokio::test]
    async fn an_answers_map_holds_its_end_to_end_headers_only() {
        const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nX-Trace: 1\r\nConnection: keep-alive, X-Upstream-Hop\r\nContent-Type: text/event-stream; charset=utf-8\r\nKeep-Alive: timeout=5\r\nX-Upstream-Hop: 1\r\nContent-Length: 2\r\nUpgrade: h2c\r\nContent-Type: application/json\r\nX-Trace: 2\r\n\r\n{}";
        let (endpoint, _) = scripted_upstream(|_, stream| answer_each(stream, ANSWER, usize::MAX)).await;
        let response = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        let names: Vec<&str> = response.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-trace", "content-type"]);
        assert_eq!(response.headers.get_all("x-trace").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(response.headers.get_all("content-type").iter().count(), 2);
        assert!(response.event_stream, "the first Content-Type says what the answer is");
        assert_eq!(response.body.size_hint().exact(), Some(2));
        assert_eq!(body_text(response.body).await.unwrap(), "{}");
    }

    #[test]
    fn an_event_stream_is_told_by_its_media_type() {
        for value in ["text/event-stream", " Text/Event-Stream; charset=utf-8", "TEXT/EVENT-STREAM"] {
            assert!(is_event_stream_type(value.as_bytes()), "{value}");
        }
        for value in ["text/event-strea", "application/json", "", "text/plain; x=text/event-stream"] {
            assert!(!is_event_stream_type(value.as_bytes()), "{value}");
        }
    }

    #[tokio::test]
    async fn an_answer_framed_by_its_length_is_read_and_its_length_kept() {
        let (endpoint, _) = scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, usize::MAX)).await;
        let response = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.body.size_hint().exact(), Some(11));
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
    }

    #[tokio::test]
    async fn a_pooled_connection_is_reused_for_the_next_call() {
        let (endpoint, accepted) = scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, usize::MAX)).await;
        let client = client();
        for _ in 0..3 {
            let response = client.send(&endpoint, &post(b"{\"model\":\"m\"}"), FIRST_BYTE).await.unwrap();
            assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
            assert_eq!(endpoint.idle_connections(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// Writes `JSON_ANSWER` to each request on `stream`, the ones numbered in `slow` (from
    /// 0, counted over the connection) after `delay`.
    async fn answer_each_after(mut stream: TcpStream, slow: &'static [usize], delay: Duration) {
        let mut buffer = Vec::new();
        for number in 0.. {
            if !read_request(&mut stream, &mut buffer).await {
                return;
            }
            if slow.contains(&number) {
                tokio::time::sleep(delay).await;
            }
            if stream.write_all(JSON_ANSWER).await.is_err() {
                return;
            }
        }
    }

    /// An upstream that has not answered within the first-byte timeout fails the call as a
    /// timeout (not as an upstream that could not be reached), and a pooled connection's
    /// timer is set for each call anew: a call after the last one's deadline has passed is
    /// not cut by it, a later deadline holds, and an earlier one fires.
    #[tokio::test]
    async fn the_first_byte_timeout_is_each_calls_own_on_a_reused_connection() {
        let (endpoint, accepted) = scripted_upstream(|_, stream| answer_each_after(stream, &[2, 3], Duration::from_millis(600))).await;
        let client = client();
        let request = post(b"{}");
        let call = |first_byte: Duration| client.send(&endpoint, &request, first_byte);
        // Answered at once, within a short timeout; then the connection waits past that
        // deadline in the pool.
        let response = call(Duration::from_millis(300)).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let response = call(Duration::from_millis(300)).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        // Answered after 600 ms: within a timeout of 5 s, then not within one of 200 ms.
        let response = call(Duration::from_secs(5)).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        let error = call(Duration::from_millis(200)).await.err().expect("no answer head within 200 ms");
        assert!(error.is_first_byte_timeout(), "{error}");
        assert_eq!(error.to_string(), "no answer within the first-byte timeout of 0 s");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "the first three calls shared one connection");
        // A failure that is not a timeout says so.
        let (closing, _) = scripted_upstream(|_, stream| async move { drop(stream) }).await;
        let error = client.send(&closing, &post(b"{}"), FIRST_BYTE).await.err().unwrap();
        assert!(!error.is_first_byte_timeout(), "{error}");
    }

    /// Two connection runtimes that share a pool shard (numbers 1 and 1 + `POOL_SHARDS`):
    /// a connection the first pooled, timer and all, is taken by the second after the first
    /// has stopped, and the call is answered, on a new connection (the stopped runtime's
    /// socket fails; its timer, which would panic, is not polled).
    #[test]
    fn a_connection_pooled_by_a_stopped_runtime_serves_a_call_on_another() {
        // The upstream double on a runtime of its own, which outlives both.
        let double = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (endpoint, accepted) = double.block_on(scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, usize::MAX)));
        let call_on_runtime = |number: usize, endpoint: Arc<UpstreamEndpoint>| {
            std::thread::spawn(move || {
                use_pool_shard_on_this_thread(number);
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    let response = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
                    assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
                    assert_eq!(endpoint.idle_connections(), 1);
                });
            })
            .join()
            .unwrap();
        };
        call_on_runtime(1, endpoint.clone());
        call_on_runtime(1 + POOL_SHARDS, endpoint);
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the second call was sent again on a new connection");
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_and_its_connection_reused() {
        const CHUNKED: &[u8] =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6;ext=1\r\ndata: \r\n5\r\nhello\r\n0\r\nx-trailer: t\r\n\r\n";
        let (endpoint, accepted) = scripted_upstream(|_, stream| answer_each(stream, CHUNKED, usize::MAX)).await;
        let client = client();
        for _ in 0..2 {
            let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
            assert_eq!(response.body.size_hint().exact(), None);
            assert_eq!(body_text(response.body).await.unwrap(), "data: hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_without_length_is_read_to_the_close_and_its_connection_not_kept() {
        let (endpoint, accepted) =
            scripted_upstream(|_, stream| answer_each(stream, b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end", 1))
                .await;
        let client = client();
        for _ in 0..2 {
            let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
            assert_eq!(body_text(response.body).await.unwrap(), "until the end");
            assert_eq!(endpoint.idle_connections(), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_whose_answer_was_not_read_to_its_end_is_not_pooled() {
        let (endpoint, accepted) = scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, usize::MAX)).await;
        let client = client();
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        // The client went away before the body was relayed.
        drop(response);
        assert_eq!(endpoint.idle_connections(), 0);
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // `Connection: close` is honoured too.
        let (endpoint, _) = scripted_upstream(|_, stream| {
            answer_each(stream, b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", usize::MAX)
        })
        .await;
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "ok");
        assert_eq!(endpoint.idle_connections(), 0);
    }

    /// The first connection answers one call, then takes the next request and closes
    /// without answering (an upstream closing an idle keep-alive connection just as a call
    /// is sent on it); later connections answer when `later_answer`, else do the same at
    /// once.
    async fn closing_after_first_answer(later_answer: bool) -> (Arc<UpstreamEndpoint>, Arc<AtomicUsize>) {
        scripted_upstream(move |number, mut stream| async move {
            let mut buffer = Vec::new();
            if number == 0 {
                if !read_request(&mut stream, &mut buffer).await || stream.write_all(JSON_ANSWER).await.is_err() {
                    return;
                }
                read_request(&mut stream, &mut buffer).await;
            } else if later_answer {
                answer_each(stream, JSON_ANSWER, usize::MAX).await;
            } else {
                read_request(&mut stream, &mut buffer).await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_stale_pooled_connection_is_retried_once_on_a_new_one() {
        let (endpoint, accepted) = closing_after_first_answer(true).await;
        let client = client();
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        assert_eq!(endpoint.idle_connections(), 1);
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.expect("the call is sent again on a new connection");
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        // Once only: when the new connection fails too, the call fails (no third try).
        let (endpoint, accepted) = closing_after_first_answer(false).await;
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        body_text(response.body).await.unwrap();
        let error = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.err().expect("the retry failed too");
        assert!(error.to_string().contains("without answering"), "{error}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_new_connection_that_fails_is_not_retried() {
        // The upstream takes the request and closes without answering.
        let (endpoint, accepted) = scripted_upstream(|_, mut stream| async move {
            let mut buffer = Vec::new();
            read_request(&mut stream, &mut buffer).await;
        })
        .await;
        let error = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.err().expect("no answer is an error");
        assert!(error.to_string().contains("without answering"), "{error}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_oversized_or_malformed_answer_head_is_an_error_not_a_panic() {
        let (endpoint, _) = scripted_upstream(|_, mut stream| async move {
            let mut buffer = Vec::new();
            read_request(&mut stream, &mut buffer).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let header = format!("x-filler: {}\r\n", "a".repeat(1000));
            for _ in 0..80 {
                if stream.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"\r\n").await;
        })
        .await;
        let error = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.err().expect("an oversized head is refused");
        assert!(error.to_string().contains("longer than 64 KiB"), "{error}");

        for answer in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 99 Odd\r\n\r\n",
        ] {
            let (endpoint, _) = scripted_upstream(move |_, stream| answer_each(stream, answer, 1)).await;
            assert!(client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.is_err(), "{}", String::from_utf8_lossy(answer));
        }

        let many_headers: &'static [u8] = Box::leak(
            format!("HTTP/1.1 200 OK\r\n{}content-length: 0\r\n\r\n", "x-h: 1\r\n".repeat(MAX_RESPONSE_HEADERS + 1))
                .into_bytes()
                .into_boxed_slice(),
        );
        let (endpoint, _) = scripted_upstream(move |_, stream| answer_each(stream, many_headers, 1)).await;
        let error = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.err().expect("too many headers are refused");
        assert!(error.to_string().contains("headers"), "{error}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_an_interim_answer_is_skipped() {
        let (endpoint, _) =
            scripted_upstream(|_, stream| answer_each(stream, b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", 1)).await;
        let response = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert!(body_text(response.body).await.is_err());

        let (endpoint, _) = scripted_upstream(|_, stream| {
            answer_each(stream, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 1)
        })
        .await;
        let response = client().send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(body_text(response.body).await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn a_large_request_body_is_sent_whole() {
        static LARGE: OnceLock<Vec<u8>> = OnceLock::new();
        let large = LARGE.get_or_init(|| vec![b'x'; BODY_COPIED_WITH_HEAD * 4]);
        let received = Arc::new(Mutex::new(0usize));
        let seen = received.clone();
        let (endpoint, _) = scripted_upstream(move |_, mut stream| {
            let seen = seen.clone();
            async move {
                let mut buffer = Vec::new();
                let mut total = 0;
                while total < 64 * 1024 + 40 {
                    let mut chunk = [0u8; 8192];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => {
                            buffer.extend_from_slice(&chunk[..read]);
                            total += read;
                        }
                    }
                    if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                        if buffer.len() - end - 4 >= BODY_COPIED_WITH_HEAD * 4 {
                            *seen.lock().unwrap() = buffer.len() - end - 4;
                            let _ = stream.write_all(JSON_ANSWER).await;
                            return;
                        }
                    }
                }
            }
        })
        .await;
        let host = HeaderValue::from_static("upstream.test");
        let request =
            RequestHead::new(&Method::POST, &["/v1"], None, &host, 0).unwrap().finish(&Method::POST, Bytes::from_static(large.as_slice()));
        let response = client().send(&endpoint, &request, FIRST_BYTE).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        assert_eq!(*received.lock().unwrap(), BODY_COPIED_WITH_HEAD * 4);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_and_expire() {
        let (endpoint, _) = scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, usize::MAX)).await;
        let mut endpoint = Arc::try_unwrap(endpoint).unwrap();
        endpoint.idle_timeout = Duration::from_millis(100);
        endpoint.shards = pool_shards(2, endpoint.idle_timeout);
        let endpoint = Arc::new(endpoint);
        let client = client();
        // Three calls at once: three connections, of which two are kept.
        let calls = (0..3).map(|_| {
            let client = client.clone();
            let endpoint = endpoint.clone();
            async move { client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap() }
        });
        let responses = futures_util::future::join_all(calls).await;
        for response in responses {
            body_text(response.body).await.unwrap();
        }
        assert_eq!(endpoint.idle_connections(), 2);
        // The reaper closes them without a call coming to take them (it wakes once per
        // timeout: they are gone within two).
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(endpoint.idle_connections(), 0, "connections idle too long are closed");
        assert!(endpoint.own_shard().checkout(Instant::now()).is_none());
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_left_for_a_new_one() {
        let (endpoint, accepted) = scripted_upstream(|_, stream| answer_each(stream, JSON_ANSWER, 1)).await;
        let client = client();
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        body_text(response.body).await.unwrap();
        assert_eq!(endpoint.idle_connections(), 1);
        // The upstream closes it; a connection idle that long is looked at, and not taken.
        tokio::time::sleep(LOOKED_AT_AFTER_IDLE + Duration::from_millis(100)).await;
        assert!(endpoint.own_shard().checkout(Instant::now()).is_none(), "a closed connection is not handed out");
        assert_eq!(endpoint.idle_connections(), 0);
        let response = client.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
        assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_default_tls_configuration_uses_the_webpki_roots_and_http1() {
        let config = default_tls_config();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(UpstreamEndpoint::new("provider.example", 443, true).unwrap().tls_server_name.is_some());
        assert!(UpstreamEndpoint::new("[::1]", 443, true).unwrap().tls_server_name.is_some());
        assert_eq!(UpstreamEndpoint::new("[::1]", 80, false).unwrap().host, "::1");
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }

    /// A certificate for `localhost`, self-signed, made with the `openssl` command (as the
    /// listeners' TLS tests make theirs): its PEM files in `directory`.
    fn self_signed_localhost(directory: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let certificate = directory.join("localhost.pem");
        let key = directory.join("localhost.key");
        let output = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext"])
            .arg("subjectAltName=DNS:localhost")
            // An end-entity certificate (openssl marks a self-signed one as a CA by default,
            // which a certificate check refuses for a server).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .output()
            .expect("the openssl command runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        (certificate, key)
    }

    #[tokio::test]
    async fn an_https_upstream_is_called_over_tls_with_its_name_checked() {
        let directory = tempfile::tempdir().unwrap();
        let (certificate, key) = self_signed_localhost(directory.path());
        let listener_tls = crate::tls::ListenerTls::load(&certificate, &key).unwrap();
        let acceptor = listener_tls.acceptor().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                            // The requests of this test have a 2-byte body.
                            buffer.drain(..end + 4 + 2);
                            if tls.write_all(JSON_ANSWER).await.is_err() {
                                return;
                            }
                        }
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                        }
                    }
                });
            }
        });

        // Trusting the test's certificate: answered over TLS, the connection kept.
        let pem = std::fs::read(&certificate).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for der in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(der.unwrap()).unwrap();
        }
        let trusting = UpstreamClient::with_tls_config(Duration::from_secs(5), Arc::new(tls_config_with_roots(roots)));
        let endpoint = Arc::new(UpstreamEndpoint::new("localhost", port, true).unwrap());
        for _ in 0..2 {
            let response = trusting.send(&endpoint, &post(b"{}"), FIRST_BYTE).await.unwrap();
            assert_eq!(body_text(response.body).await.unwrap(), "{\"ok\":true}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // The default configuration (the webpki roots) does not trust a self-signed
        // certificate.
        let default_endpoint = Arc::new(UpstreamEndpoint::new("localhost", port, true).unwrap());
        let error = client().send(&default_endpoint, &post(b"{}"), FIRST_BYTE).await.err().expect("an unknown issuer is refused");
        assert!(error.to_string().contains("TLS error"), "{error}");

        // The name is checked: the same certificate is not valid for another name.
        let wrong_name = Arc::new(UpstreamEndpoint::new("127.0.0.1", port, true).unwrap());
        let error = trusting.send(&wrong_name, &post(b"{}"), FIRST_BYTE).await.err().expect("a certificate for another name is refused");
        assert!(error.to_string().contains("TLS error"), "{error}");
    }
}
