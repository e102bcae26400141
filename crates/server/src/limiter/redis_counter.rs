//! Limits counted in Redis, shared by every node (docs/CONTRACT.md#model-limits, "Across
//! nodes"). A call's admission is one Lua script, so the check and the count are atomic
//! across nodes: the request window is read, the token window is read, and the request is
//! counted only when both have room, each window's key expiring at its window's end. Token
//! charges and the release of a call in flight are queued (bounded) and sent in pipelined
//! batches by a task of their own, so the end of a call never waits for Redis.
//!
//! Keys are `<prefix>{<subject>}:<kind>:<period>:<window start>`, the subject's strings
//! percent-encoded so that no workspace, model or key id can reach into another's keys, and
//! the subject in braces so that a subject's keys would share one slot of a Redis Cluster
//! (the connection itself is to one server).
//!
//! Calls in flight are a hash per subject with one count per node (`n<node>`) and the time
//! (Redis's clock) that node last confirmed it (`s<node>`); each node confirms the subjects
//! it has calls in flight for every heartbeat, and a node not heard from for three
//! heartbeats is dropped from the sum, so a crashed node's calls stop counting within
//! seconds. A release that could not be sent (queue full, Redis failing) is kept as a
//! count per subject and sent with the next heartbeat, so none is lost while the node runs.
//!
//! Every call to Redis has `redis_timeout_milliseconds`. When one fails, the node counts in
//! memory against its share of each limit ([`super::NodeShareCounter`]), or refuses limited
//! calls when `limits_fail_closed` is set, and does not ask Redis again for a second, so an
//! outage costs each node at most one timeout a second; the connection reconnects by itself
//! and the next call that succeeds makes the node healthy again. The node's memory also
//! counts what Redis admitted through it and the tokens it charged, so that its share,
//! when it must count alone, starts from what it already let through in the window: a
//! Redis that fails now and then (timeouts under load) does not add a share on top of the
//! limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use keygate_core::limits::{seconds_until_reset, window_start, EffectiveLimits, LimitKind, RateLimit, WindowStanding};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::{
    entry_of, Admission, HeldSubject, LimitCounter, LimitSubject, LimiterBackend, LimiterHealth, LiveNodes, NodeShareCounter, Pending,
    SubjectMap,
};
use crate::clock::Clock;

/// What [`RedisLimitCounter::new`] needs from the settings.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub url: String,
    pub key_prefix: String,
    pub timeout: Duration,
    pub fail_closed: bool,
    /// This node's name in the in-flight hashes (random per process).
    pub node_id: String,
    /// How often in-flight counts are confirmed and Redis is pinged.
    pub heartbeat: Duration,
}

/// Charges and releases waiting to be sent; past it they are dropped and counted
/// (`keygate_limiter_dropped_updates_total`) rather than held in memory without bound.
const QUEUE_CAPACITY: usize = 8192;
/// Most updates sent in one pipeline.
const BATCH: usize = 512;
/// After a failure, calls count without Redis for this long before it is asked again.
const PAUSE_AFTER_FAILURE_MILLISECONDS: i64 = 1000;
/// At most one warning about Redis per this long; the others are counted in it.
const LOG_EVERY_MILLISECONDS: i64 = 10_000;
/// A window's key outlives its window by this much (clocks of nodes differ a little).
const EXPIRY_SLACK_SECONDS: u64 = 5;

/// Admission: `KEYS[1]` the request window, `KEYS[2]` the token window; `ARGV` the request
/// limit and token limit (`-1`: none) and the two windows' lifetimes in seconds. Answers
/// `{refused, requests, tokens}`: refused 0 (admitted, the request counted), 1 (by the
/// request limit) or 2 (by the token limit; the request not counted); the windows' counts.
const ADMIT_SCRIPT: &str = r"
local request_limit = tonumber(ARGV[1])
local token_limit = tonumber(ARGV[2])
local requests = 0
local tokens = 0
if request_limit >= 0 then
  requests = tonumber(redis.call('GET', KEYS[1]) or '0')
  if requests >= request_limit then return {1, requests, 0} end
end
if token_limit >= 0 then
  tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tokens >= token_limit then return {2, requests, tokens} end
end
if request_limit >= 0 then
  requests = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {0, requests, tokens}
";

/// Entering: `KEYS[1]` the subject's in-flight hash; `ARGV` this node, the most in flight,
/// seconds after which a silent node's count is dropped. Answers `{admitted, count}`.
const ENTER_SCRIPT: &str = r"
local now = tonumber(redis.call('TIME')[1])
local stale = tonumber(ARGV[3])
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local field = fields[i]
  if string.sub(field, 1, 1) == 'n' then
    local node = string.sub(field, 2)
    local seen = tonumber(redis.call('HGET', KEYS[1], 's' .. node) or '0')
    if node ~= ARGV[1] and seen < now - stale then
      redis.call('HDEL', KEYS[1], field, 's' .. node)
    else
      total = total + math.max(0, tonumber(fields[i + 1]))
    end
  end
end
if total >= tonumber(ARGV[2]) then return {0, total} end
redis.call('HINCRBY', KEYS[1], 'n' .. ARGV[1], 1)
redis.call('HSET', KEYS[1], 's' .. ARGV[1], now)
redis.call('EXPIRE', KEYS[1], stale * 2)
return {1, total + 1}
";

/// A node confirming it still runs its calls in flight: `KEYS[1]` the hash; `ARGV` the node
/// and the stale seconds.
const CONFIRM_SCRIPT: &str = r"
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], 's' .. ARGV[1], now)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
";

/// Releases: `KEYS[1]` the hash; `ARGV` the node and how many of its calls left. Never
/// below 0 (after Redis lost its data, a release may find no count).
const LEAVE_SCRIPT: &str = r"
local count = redis.call('HINCRBY', KEYS[1], 'n' .. ARGV[1], -tonumber(ARGV[2]))
if count < 0 then redis.call('HSET', KEYS[1], 'n' .. ARGV[1], 0) end
return count
";

/// An update sent in the background.
#[derive(Debug)]
enum Update {
    /// Tokens added to a token window's key, which lives `ttl` seconds.
    Charge { key: String, tokens: u64, ttl: u64 },
    /// One call of this node left an in-flight hash.
    Leave { key: String },
}

/// This node's calls in flight for one subject: counted in Redis, or in memory (entered
/// while Redis failed), so that each leaves where it entered.
#[derive(Debug, Default, Clone, Copy)]
struct InFlightHere {
    in_redis: u64,
    in_memory: u64,
}

/// The limit counter shared through Redis; see the module's documentation.
#[derive(Debug)]
pub struct RedisLimitCounter {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    connecting: AtomicBool,
    options: RedisOptions,
    fallback: NodeShareCounter,
    updates: mpsc::Sender<Update>,
    clock: Arc<Clock>,
    healthy: AtomicBool,
    /// Until when (Unix ms) Redis is not asked, after a failure.
    paused_until: AtomicI64,
    last_error: Mutex<Option<(i64, String)>>,
    last_logged: AtomicI64,
    failures: AtomicU64,
    failures_logged: AtomicU64,
    fallback_admissions: AtomicU64,
    refused_unavailable: AtomicU64,
    dropped_updates: AtomicU64,
    in_flight: Mutex<SubjectMap<InFlightHere>>,
    /// Releases not sent yet, by in-flight hash: at most one entry per subject.
    pending_leaves: Mutex<HashMap<String, u64>>,
    admit_script: redis::Script,
    enter_script: redis::Script,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the prefix and the node are shown.
        formatter
            .debug_struct("RedisLimitCounter")
            .field("key_prefix", &self.options.key_prefix)
            .field("node_id", &self.options.node_id)
            .finish_non_exhaustive()
    }
}

/// `value` with every byte but ASCII letters, digits, `-`, `_` and `.` written `%XX`: no
/// `:`, `{`, `}` or `%` of a client's string survives, so distinct subjects name distinct
/// keys.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

fn subject_tag(subject: LimitSubject<'_>) -> String {
    match subject {
        LimitSubject::Model { workspace_id, model } => format!("m:{}:{}", escape(workspace_id), escape(model)),
        LimitSubject::Key { key_id } => format!("k:{key_id}"),
    }
}

impl Shared {
    fn window_key(&self, subject: LimitSubject<'_>, kind: LimitKind, limit: RateLimit, now: i64) -> String {
        let kind = match kind {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
        };
        let start = window_start(now, limit.period_seconds);
        format!("{}{{{}}}:{kind}:{}:{start}", self.options.key_prefix, subject_tag(subject), limit.period_seconds)
    }

    fn in_flight_key(&self, subject: LimitSubject<'_>) -> String {
        format!("{}{{{}}}:in-flight", self.options.key_prefix, subject_tag(subject))
    }

    /// Seconds a silent node's in-flight count is kept: three heartbeats.
    fn stale_seconds(&self) -> u64 {
        self.options.heartbeat.as_secs().max(1) * 3
    }

    /// The connection, unless Redis failed less than a second ago or none is open yet (then
    /// one is being opened in the background).
    fn connection(self: &Arc<Self>) -> Option<ConnectionManager> {
        if self.clock.now_milliseconds() < self.paused_until.load(Ordering::Relaxed) {
            return None;
        }
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if connection.is_none() {
            self.start_connecting();
        }
        connection
    }

    /// Opens the connection in the background (one attempt at a time). Once open, the
    /// connection manager reconnects by itself after Redis comes back.
    fn start_connecting(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::downgrade(self);
        let client = self.client.clone();
        let timeout = self.options.timeout;
        runtime.spawn(async move {
            // Opening a connection (TCP, maybe TLS) may take longer than one command.
            let connect_timeout = (timeout * 10).max(Duration::from_millis(500));
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(connect_timeout)
                .set_response_timeout(timeout)
                .set_number_of_retries(1)
                .set_max_delay(1000);
            let opened = tokio::time::timeout(connect_timeout * 2, ConnectionManager::new_with_config(client, config)).await;
            let Some(shared) = shared.upgrade() else { return };
            match opened {
                Ok(Ok(connection)) => {
                    *shared.connection.lock().unwrap_or_else(PoisonError::into_inner) = Some(connection);
                    shared.succeeded();
                }
                Ok(Err(error)) => shared.failed(&format!("connecting: {error}")),
                Err(_) => shared.failed(&format!("connecting: no answer within {} ms", connect_timeout.as_millis())),
            }
            shared.connecting.store(false, Ordering::Release);
        });
    }

    /// Runs one Redis call under the timeout, recording how it went.
    async fn call<T>(&self, call: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(self.options.timeout, call).await {
            Ok(Ok(value)) => {
                self.succeeded();
                Some(value)
            }
            Ok(Err(error)) => {
                self.failed(&error.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {} ms", self.options.timeout.as_millis()));
                None
            }
        }
    }

    fn succeeded(&self) {
        // A load first: every admission passes here, and a write would bounce the cache
        // line between the threads.
        if !self.healthy.load(Ordering::Acquire) && !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::info!(node = %self.options.node_id, "Redis answers: limits are counted there again");
        }
    }

    /// Marks Redis failed, pauses asking it, and logs at most once per
    /// [`LOG_EVERY_MILLISECONDS`] (with the number of failures since the last line).
    fn failed(&self, error: &str) {
        let now = self.clock.now_milliseconds();
        self.healthy.store(false, Ordering::Release);
        self.paused_until.store(now + PAUSE_AFTER_FAILURE_MILLISECONDS, Ordering::Relaxed);
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, error.to_string()));
        let last_logged = self.last_logged.load(Ordering::Relaxed);
        if now - last_logged >= LOG_EVERY_MILLISECONDS
            && self.last_logged.compare_exchange(last_logged, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            let since_last_line = failures - self.failures_logged.swap(failures, Ordering::Relaxed);
            let mode = if self.options.fail_closed {
                "limited calls are refused (limits_fail_closed)"
            } else {
                "each node counts its share of every limit in memory"
            };
            tracing::warn!(%error, failures = since_last_line, "Redis failed: {mode} until it answers");
        }
    }

    /// The admission when Redis could not be asked: this node's share, or (fail closed) a
    /// refusal.
    fn admit_without_redis(&self, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Admission {
        if self.options.fail_closed {
            self.refused_unavailable.fetch_add(1, Ordering::Relaxed);
            return Admission { unavailable: true, ..Admission::NONE };
        }
        self.fallback_admissions.fetch_add(1, Ordering::Relaxed);
        self.fallback.admit_share(subject, limits, now)
    }

    async fn admit(self: &Arc<Self>, subject: LimitSubject<'_>, limits: EffectiveLimits, now: i64) -> Admission {
        let Some(mut connection) = self.connection() else {
            return self.admit_without_redis(subject, limits, now);
        };
        let (request_key, token_key) = match (limits.requests, limits.tokens) {
            (Some(requests), Some(tokens)) => {
                (self.window_key(subject, LimitKind::Requests, requests, now), self.window_key(subject, LimitKind::Tokens, tokens, now))
            }
            (Some(requests), None) => {
                let key = self.window_key(subject, LimitKind::Requests, requests, now);
                (key.clone(), key)
            }
            (None, Some(tokens)) => {
                let key = self.window_key(subject, LimitKind::Tokens, tokens, now);
                (key.clone(), key)
            }
            (None, None) => return Admission::NONE,
        };
        let ttl = |limit: Option<RateLimit>| limit.map_or(1, |limit| seconds_until_reset(now, limit.period_seconds) + EXPIRY_SLACK_SECONDS);
        let limit_argument = |limit: Option<RateLimit>| limit.map_or(-1, |limit| i64::try_from(limit.limit).unwrap_or(i64::MAX));
        let mut invocation = self.admit_script.prepare_invoke();
        invocation
            .key(&request_key)
            .key(&token_key)
            .arg(limit_argument(limits.requests))
            .arg(limit_argument(limits.tokens))
            .arg(ttl(limits.requests))
            .arg(ttl(limits.tokens));
        let Some((refused, requests, tokens)) = self.call(invocation.invoke_async::<(i64, u64, u64)>(&mut connection)).await else {
            return self.admit_without_redis(subject, limits, now);
        };
        let standing = |limit: Option<RateLimit>, used: u64| {
            limit.map(|limit| WindowStanding {
                limit: limit.limit,
                remaining: limit.limit.saturating_sub(used),
                reset_seconds: seconds_until_reset(now, limit.period_seconds),
            })
        };
        match refused {
            1 => Admission { refused_by: Some(LimitKind::Requests), requests: standing(limits.requests, requests), ..Admission::NONE },
            2 => Admission {
                refused_by: Some(LimitKind::Tokens),
                requests: standing(limits.requests, requests),
                tokens: standing(limits.tokens, tokens),
                unavailable: false,
            },
            _ => {
                self.fallback.count_admitted(subject, limits, now);
                Admission {
                    refused_by: None,
                    requests: standing(limits.requests, requests),
                    tokens: standing(limits.tokens, tokens),
                    unavailable: false,
                }
            }
        }
    }

    async fn enter(self: &Arc<Self>, subject: LimitSubject<'_>, max: u64) -> Result<u64, u64> {
        if let Some(mut connection) = self.connection() {
            let key = self.in_flight_key(subject);
            let mut invocation = self.enter_script.prepare_invoke();
            invocation.key(&key).arg(&self.options.node_id).arg(max).arg(self.stale_seconds());
            if let Some((admitted, count)) = self.call(invocation.invoke_async::<(i64, u64)>(&mut connection)).await {
                if admitted == 0 {
                    return Err(count);
                }
                entry_of(&mut self.in_flight.lock().unwrap_or_else(PoisonError::into_inner), subject).in_redis += 1;
                return Ok(count);
            }
        }
        // Calls in flight fall back to this node's share in either failure mode: the bound
        // is on concurrency, which a node can keep by itself.
        let entered = self.fallback.enter_share(subject, max);
        if entered.is_ok() {
            entry_of(&mut self.in_flight.lock().unwrap_or_else(PoisonError::into_inner), subject).in_memory += 1;
        }
        entered
    }

    fn leave(&self, subject: LimitSubject<'_>) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(here) = in_flight.get_mut(&subject) else { return };
        if here.in_redis > 0 {
            here.in_redis -= 1;
            self.send(Update::Leave { key: self.in_flight_key(subject) });
        } else if here.in_memory > 0 {
            here.in_memory -= 1;
            self.fallback.leave(subject);
        }
        if here.in_redis == 0 && here.in_memory == 0 {
            in_flight.remove(&subject);
        }
    }

    fn send(&self, update: Update) {
        match self.updates.try_send(update) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Update::Leave { key }) | mpsc::error::TrySendError::Closed(Update::Leave { key })) => {
                self.keep_leaves(key, 1)
            }
            Err(_) => {
                self.dropped_updates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Keeps releases for the next heartbeat.
    fn keep_leaves(&self, key: String, count: u64) {
        *self.pending_leaves.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_insert(0) += count;
    }

    fn health(&self) -> LimiterHealth {
        LimiterHealth {
            backend: LimiterBackend::Redis,
            healthy: self.healthy.load(Ordering::Acquire),
            fail_closed: self.options.fail_closed,
            last_error: self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            live_nodes: self.fallback.live_nodes(),
            failures: self.failures.load(Ordering::Relaxed),
            fallback_admissions: self.fallback_admissions.load(Ordering::Relaxed),
            refused_unavailable: self.refused_unavailable.load(Ordering::Relaxed),
            dropped_updates: self.dropped_updates.load(Ordering::Relaxed),
        }
    }

    /// Sends a batch of updates in one pipeline: charges of one key summed, each key's
    /// lifetime set again, releases of one subject summed.
    async fn send_batch(self: &Arc<Self>, batch: &mut Vec<Update>) {
        let mut charges: HashMap<String, (u64, u64)> = HashMap::new();
        let mut leaves: HashMap<String, u64> = HashMap::new();
        for update in batch.drain(..) {
            match update {
                Update::Charge { key, tokens, ttl } => {
                    let entry = charges.entry(key).or_insert((0, ttl));
                    entry.0 = entry.0.saturating_add(tokens);
                }
                Update::Leave { key } => *leaves.entry(key).or_insert(0) += 1,
            }
        }
        let mut pipeline = redis::pipe();
        for (key, (tokens, ttl)) in &charges {
            pipeline.cmd("INCRBY").arg(key).arg(tokens).ignore();
            pipeline.cmd("EXPIRE").arg(key).arg(ttl).ignore();
        }
        self.add_leaves(&mut pipeline, &leaves);
        let sent = match self.connection() {
            Some(mut connection) => self.call(pipeline.query_async::<()>(&mut connection)).await.is_some(),
            None => false,
        };
        if !sent {
            // The tokens are lost to Redis (while it fails, windows are counted in memory);
            // the releases are kept for the next heartbeat.
            self.dropped_updates.fetch_add(charges.len() as u64, Ordering::Relaxed);
            for (key, count) in leaves {
                self.keep_leaves(key, count);
            }
        }
    }

    fn add_leaves(&self, pipeline: &mut redis::Pipeline, leaves: &HashMap<String, u64>) {
        for (key, count) in leaves {
            pipeline.cmd("EVAL").arg(LEAVE_SCRIPT).arg(1).arg(key).arg(&self.options.node_id).arg(count).ignore();
        }
    }

    /// Each heartbeat: pings Redis (so `/readyz` knows even without traffic), confirms the
    /// subjects this node has calls in flight for, and sends the releases kept back.
    async fn heartbeat(self: &Arc<Self>) {
        let Some(mut connection) = self.connection() else { return };
        let subjects: Vec<HeldSubject> = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, here)| here.in_redis > 0)
            .map(|(subject, _)| subject.clone())
            .collect();
        if self.call(redis::cmd("PING").query_async::<String>(&mut connection)).await.is_none() {
            return;
        }
        let mut pipeline = redis::pipe();
        for subject in &subjects {
            pipeline
                .cmd("EVAL")
                .arg(CONFIRM_SCRIPT)
                .arg(1)
                .arg(self.in_flight_key(subject.borrowed()))
                .arg(&self.options.node_id)
                .arg(self.stale_seconds())
                .ignore();
        }
        let leaves = std::mem::take(&mut *self.pending_leaves.lock().unwrap_or_else(PoisonError::into_inner));
        self.add_leaves(&mut pipeline, &leaves);
        if (!subjects.is_empty() || !leaves.is_empty()) && self.call(pipeline.query_async::<()>(&mut connection)).await.is_none() {
            for (key, count) in leaves {
                self.keep_leaves(key, count);
            }
        }
    }
}

impl RedisLimitCounter {
    /// A counter on `options.url`: the connection is opened in the background (calls count
    /// without Redis until it is), with the task that sends charges and the heartbeat.
    /// Must be called inside a Tokio runtime.
    pub fn new(options: RedisOptions, live_nodes: Arc<LiveNodes>, clock: Arc<Clock>) -> anyhow::Result<RedisLimitCounter> {
        let client = redis::Client::open(options.url.as_str()).map_err(|error| anyhow::anyhow!("redis_url: {error}"))?;
        let (updates, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let heartbeat = options.heartbeat;
        let shared = Arc::new(Shared {
            client,
            connection: Mutex::new(None),
            connecting: AtomicBool::new(false),
            options,
            fallback: NodeShareCounter::new(live_nodes),
            updates,
            clock,
            healthy: AtomicBool::new(false),
            paused_until: AtomicI64::new(0),
            last_error: Mutex::new(None),
            last_logged: AtomicI64::new(i64::MIN / 2),
            failures: AtomicU64::new(0),
            failures_logged: AtomicU64::new(0),
            fallback_admissions: AtomicU64::new(0),
            refused_unavailable: AtomicU64::new(0),
            dropped_updates: AtomicU64::new(0),
            in_flight: Mutex::new(SubjectMap::default()),
            pending_leaves: Mutex::new(HashMap::new()),
            admit_script: redis::Script::new(ADMIT_SCRIPT),
            enter_script: redis::Script::new(ENTER_SCRIPT),
        });
        shared.start_connecting();
        tokio::spawn(send_updates(Arc::downgrade(&shared), receiver));
        tokio::spawn(beat(Arc::downgrade(&shared), heartbeat));
        Ok(RedisLimitCounter { shared })
    }
}

/// Sends queued updates until the counter is dropped (its sender with it).
async fn send_updates(shared: Weak<Shared>, mut receiver: mpsc::Receiver<Update>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let Some(shared) = shared.upgrade() else { return };
        shared.send_batch(&mut batch).await;
    }
}

async fn beat(shared: Weak<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        shared.heartbeat().await;
    }
}

impl LimitCounter for RedisLimitCounter {
    fn admit<'a>(&'a self, subject: LimitSubject<'a>, limits: EffectiveLimits, now: i64) -> Pending<'a, Admission> {
        Box::pin(self.shared.admit(subject, limits, now))
    }

    fn charge(&self, subject: LimitSubject<'_>, limit: RateLimit, tokens: u64, now: i64) {
        // Counted in memory too: the node's own count, for when Redis fails.
        self.shared.fallback.charge(subject, limit, tokens, now);
        if !self.shared.healthy.load(Ordering::Acquire) {
            return;
        }
        let key = self.shared.window_key(subject, LimitKind::Tokens, limit, now);
        let ttl = seconds_until_reset(now, limit.period_seconds) + EXPIRY_SLACK_SECONDS;
        self.shared.send(Update::Charge { key, tokens, ttl });
    }

    fn enter<'a>(&'a self, subject: LimitSubject<'a>, max: u64) -> Pending<'a, Result<u64, u64>> {
        Box::pin(self.shared.enter(subject, max))
    }

    fn leave(&self, subject: LimitSubject<'_>) {
        self.shared.leave(subject);
    }

    fn health(&self) -> LimiterHealth {
        self.shared.health()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_strings_cannot_make_two_subjects_share_a_key() {
        let model = |workspace_id, model| LimitSubject::Model { workspace_id, model };
        let tags = [
            subject_tag(model("a:b", "c")),
            subject_tag(model("a", "b:c")),
            subject_tag(model("a%3Ab", "c")),
            subject_tag(LimitSubject::Key { key_id: 3 }),
            subject_tag(model("k:3", "")),
            subject_tag(model("a}{", "c")),
        ];
        let distinct: std::collections::HashSet<&String> = tags.iter().collect();
        assert_eq!(distinct.len(), tags.len(), "{tags:?}");
        assert!(tags.iter().all(|tag| !tag.contains(['{', '}'])), "{tags:?}");
        assert_eq!(tags[0], "m:a%3Ab:c");
    }
}
