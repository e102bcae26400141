//! Token accounting of model calls (docs/CONTRACT.md#usage): the usage a provider reports,
//! read from its answer as it passes through, and the end of a call (its counts, its
//! metrics, its log line).
//!
//! Where the usage is: OpenAI-compatible `usage` (in a stream, the final chunk, which
//! keygate asks for when the client did not: then it removes that chunk from what it
//! relays); DashScope native `usage` of each event, cumulative, so the last one wins;
//! Anthropic `message_start` (input) and `message_delta` (output, cumulative). Of a JSON
//! answer only the last [`TAIL_BYTES`] are kept (as the chunks themselves, not copied), since
//! every provider writes `usage` after the content; an SSE line longer than
//! [`MAX_LINE_BYTES`] is relayed but not read: a hostile upstream or client cannot make
//! accounting hold more memory than that.
//!
//! A chunk of a stream is searched for `"usage"` once, not line by line: the bytes up to the
//! line that mentions it are relayed as they came, that line is read where it is (its usage
//! object by the small reader of [`keygate_wire::provider_usage`], serde_json when that one
//! is unsure), and the search goes on past it. Only the chunk's last, unfinished line is
//! kept, for the next chunk may complete it into a line that mentions usage; such a line,
//! and the line after a removed chunk, are read the slow way, one line at a time. What is
//! relayed of a chunk is the chunk itself, or a slice of it, except where the removed usage
//! chunk (or a line held back from earlier chunks) leaves two pieces: then one buffer of
//! exactly their size, so that the client still gets one piece of body per chunk.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keygate_core::limits::RateLimit;
use keygate_core::usage::TokenUsage;
use keygate_core::verification::CompiledKey;
use keygate_wire::provider_usage::{self, UsageFields};

use super::errors::Protocol;
use crate::limiter::LimitSubject;
use crate::state::SharedState;
use crate::thread_handles::ThreadHandle;
use crate::usage::CallUsage;

/// Longest SSE line read for usage.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// How much of the end of a JSON answer is kept to find its usage in.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The name of a protocol in logs and metrics.
pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Native => "dashscope",
        Protocol::OpenAi => "openai",
        Protocol::Anthropic => "anthropic",
    }
}

/// Usage fields seen so far: a later report of a field replaces an earlier one (the
/// providers' stream reports are cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reported {
    input: Option<i64>,
    output: Option<i64>,
    cached: Option<i64>,
    reasoning: Option<i64>,
}

impl Reported {
    fn merge(&mut self, other: Reported) {
        self.input = other.input.or(self.input);
        self.output = other.output.or(self.output);
        self.cached = other.cached.or(self.cached);
        self.reasoning = other.reasoning.or(self.reasoning);
    }

    fn tokens(&self) -> TokenUsage {
        let clamp = |value: Option<i64>| value.unwrap_or(0).max(0);
        TokenUsage { input: clamp(self.input), output: clamp(self.output), cached: clamp(self.cached), reasoning: clamp(self.reasoning) }
    }
}

/// The usage object in `protocol`'s words.
fn read_usage_object(protocol: Protocol, usage: &UsageFields) -> Reported {
    match protocol {
        Protocol::OpenAi => Reported {
            input: usage.prompt_tokens.or(usage.input_tokens),
            output: usage.completion_tokens.or(usage.output_tokens),
            cached: usage.prompt_tokens_details.as_ref().and_then(|details| details.cached_tokens),
            reasoning: usage.completion_tokens_details.as_ref().and_then(|details| details.reasoning_tokens),
        },
        Protocol::Native => {
            if let Some(models) = &usage.models {
                let input = models.iter().filter_map(|model| model.input_tokens).sum();
                let output = models.iter().filter_map(|model| model.output_tokens).sum();
                return Reported { input: Some(input), output: Some(output), ..Reported::default() };
            }
            Reported {
                // Embeddings report only a total, which is all input.
                input: usage.input_tokens.or(if usage.output_tokens.is_none() { usage.total_tokens } else { None }),
                output: usage.output_tokens,
                cached: usage.prompt_tokens_details.as_ref().and_then(|details| details.cached_tokens),
                reasoning: usage.output_tokens_details.as_ref().and_then(|details| details.reasoning_tokens),
            }
        }
        Protocol::Anthropic => {
            let parts = [usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens];
            Reported {
                input: parts.iter().any(Option::is_some).then(|| parts.iter().flatten().sum()),
                output: usage.output_tokens,
                cached: usage.cache_read_input_tokens,
                reasoning: None,
            }
        }
    }
}

/// What is searched for: a member named `usage`.
const USAGE: &[u8] = b"\"usage\"";

/// The searcher for [`USAGE`], built once (building one costs more than a search of a
/// short line).
fn usage_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(USAGE))
}

/// Where the last [`USAGE`] in `haystack` starts. Each `g` is looked for backwards with
/// the vectorised byte search and the name checked around it: the usage object ends a
/// JSON answer, so the first `g` from the end is usually the name's (a backwards substring
/// search, which has no vectorised first step, cost five instructions a byte).
fn last_usage_mention(haystack: &[u8]) -> Option<usize> {
    const G_AT: usize = 4; // `"usage"` has its `g` at index 4.
    let mut end = haystack.len();
    while let Some(g) = memchr::memrchr(b'g', &haystack[..end]) {
        if g >= G_AT && haystack[g - G_AT..].starts_with(USAGE) {
            return Some(g - G_AT);
        }
        end = g;
    }
    None
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads a provider's answer for its usage as it passes through.
#[derive(Debug)]
pub struct UsageReader {
    protocol: Protocol,
    event_stream: bool,
    /// Remove the usage-only chunk of an OpenAI-compatible stream (keygate asked for it).
    strip_usage_chunk: bool,
    /// Relay whole lines only, holding back a partial one (for the whole stream when a
    /// chunk is to be removed).
    relay_by_lines: bool,
    /// The line being assembled (SSE).
    line: Vec<u8>,
    /// Skipping the rest of a line that was too long.
    overlong: bool,
    /// The blank line that ended a removed chunk is removed too.
    drop_blank_line: bool,
    /// DashScope's reports are cumulative: only the last is read, at the end.
    last_native_event: Vec<u8>,
    /// A JSON answer's last chunks, at least [`TAIL_BYTES`] of them when it is that long:
    /// the newest in `tail_last`, the ones before it in `tail` (so that an answer that
    /// comes in one chunk, the usual one, keeps it without allocating a queue).
    tail: std::collections::VecDeque<Bytes>,
    tail_last: Option<Bytes>,
    tail_bytes: usize,
    reported: Reported,
}

impl UsageReader {
    pub fn new(protocol: Protocol, event_stream: bool, strip_usage_chunk: bool) -> UsageReader {
        UsageReader {
            protocol,
            event_stream,
            strip_usage_chunk: strip_usage_chunk && event_stream,
            relay_by_lines: strip_usage_chunk && event_stream,
            line: Vec::new(),
            overlong: false,
            drop_blank_line: false,
            last_native_event: Vec::new(),
            tail: std::collections::VecDeque::new(),
            tail_last: None,
            tail_bytes: 0,
            reported: Reported::default(),
        }
    }

    /// Reads `chunk`; returns what is relayed in its place (the chunk itself unless a
    /// chunk is being removed, and then only whole lines).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if !self.event_stream {
            self.keep_tail(chunk.clone());
            return chunk;
        }
        let mut relay = Relay::new(&chunk, self.relay_by_lines);
        let mut at = 0;
        // The result of the last search for usage: where it started and what it found (a
        // search past a line's mention finds the next line's too).
        let mut searched: Option<(usize, Option<usize>)> = None;
        while at < chunk.len() {
            if self.overlong || !self.line.is_empty() || self.drop_blank_line {
                // A line begun in an earlier chunk, or the one after a removed chunk.
                let (end, complete) = match memchr::memchr(b'\n', &chunk[at..]) {
                    Some(newline) => (at + newline + 1, true),
                    None => (chunk.len(), false),
                };
                self.take_piece(&chunk, at..end, complete, &mut relay);
                at = end;
                continue;
            }
            let mention = match searched {
                Some((from, found)) if from <= at && found.is_none_or(|found| found >= at) => found,
                _ => usage_finder().find(&chunk[at..]).map(|offset| at + offset),
            };
            let Some(mut mention) = mention else {
                // No mention in the rest: relayed as it came, its unfinished last line kept.
                let line_start = memchr::memrchr(b'\n', &chunk[at..]).map_or(at, |newline| at + newline + 1);
                relay.keep(at..line_start);
                if line_start < chunk.len() {
                    self.take_piece(&chunk, line_start..chunk.len(), false, &mut relay);
                }
                break;
            };
            let line_start = memchr::memrchr(b'\n', &chunk[at..mention]).map_or(at, |newline| at + newline + 1);
            relay.keep(at..line_start);
            let Some(newline) = memchr::memchr(b'\n', &chunk[mention..]) else {
                self.take_piece(&chunk, line_start..chunk.len(), false, &mut relay);
                break;
            };
            let line_end = mention + newline + 1;
            // The line's usage is its last mention (see `usage_in_tail`); the search past it
            // finds the next line's, if any, for the next turn.
            loop {
                let after = mention + USAGE.len();
                match usage_finder().find(&chunk[after..]).map(|offset| after + offset) {
                    Some(next) if next < line_end => mention = next,
                    found => {
                        searched = Some((after, found));
                        break;
                    }
                }
            }
            // A line longer than the limit is relayed unread, as `take_piece` does.
            if line_end - line_start > MAX_LINE_BYTES || self.read_line(&chunk[line_start..line_end], Some(mention - line_start)) {
                relay.keep(line_start..line_end);
            }
            at = line_end;
        }
        if self.relay_by_lines {
            relay.into_bytes()
        } else {
            chunk
        }
    }

    /// Keeps `chunk` in the JSON answer's tail, dropping the chunks before the last
    /// [`TAIL_BYTES`] (the chunks are shared with what is relayed, not copied).
    fn keep_tail(&mut self, chunk: Bytes) {
        self.tail_bytes += chunk.len();
        if let Some(before) = self.tail_last.replace(chunk) {
            self.tail.push_back(before);
        }
        while let Some(front) = self.tail.front() {
            if self.tail_bytes - front.len() < TAIL_BYTES {
                break;
            }
            self.tail_bytes -= front.len();
            self.tail.pop_front();
        }
    }

    /// Takes `chunk[piece]`, a line or its beginning (`complete`: it ends the line), one line
    /// at a time: assembled with what was kept of it, read when whole.
    fn take_piece(&mut self, chunk: &[u8], piece: Range<usize>, complete: bool, relay: &mut Relay) {
        if self.overlong {
            relay.keep(piece);
            self.overlong = !complete;
            return;
        }
        if self.line.len() + piece.len() > MAX_LINE_BYTES {
            relay.keep_copy(&self.line);
            relay.keep(piece);
            self.line.clear();
            self.overlong = !complete;
            return;
        }
        if complete && self.line.is_empty() {
            // A whole line within the chunk is read where it is, not copied first.
            if self.read_line(&chunk[piece.clone()], None) {
                relay.keep(piece);
            }
            return;
        }
        self.line.extend_from_slice(&chunk[piece]);
        if complete {
            let line = std::mem::take(&mut self.line);
            if self.read_line(&line, None) {
                relay.keep_copy(&line);
            }
            self.line = line;
            self.line.clear();
        }
    }

    /// Reads one whole line, whose last mention of usage starts at `last_mention` when the
    /// caller found it (else it is searched for); answers whether it is relayed.
    fn read_line(&mut self, line: &[u8], last_mention: Option<usize>) -> bool {
        let content = trim_line_end(line);
        if std::mem::take(&mut self.drop_blank_line) && content.is_empty() {
            return false;
        }
        let Some(data) = content.strip_prefix(b"data:") else { return true };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        // `"usage"` cannot overlap `data:`, so a mention of the line is one of its data.
        let data_start = content.len() - data.len();
        let mention = match last_mention {
            Some(mention) => mention - data_start,
            None => match last_usage_mention(data) {
                Some(mention) => mention,
                None => return true,
            },
        };
        if self.protocol == Protocol::Native {
            self.last_native_event.clear();
            self.last_native_event.extend_from_slice(data);
            return true;
        }
        // Only the usage object is parsed, not the event around it (see `usage_in_tail`);
        // `"usage":null`, which OpenAI-compatible providers send on every chunk of a stream
        // that asked for usage, reports nothing.
        let Some(usage) = usage_at(data, mention) else { return true };
        self.reported.merge(read_usage_object(self.protocol, &usage));
        if self.strip_usage_chunk && choices_are_empty(data) {
            self.strip_usage_chunk = false;
            self.drop_blank_line = true;
            return false;
        }
        true
    }

    /// Whether every chunk is relayed as it came (nothing removed, nothing held back), so
    /// that the relayed answer is as long as the provider's.
    pub fn relays_unchanged(&self) -> bool {
        !self.relay_by_lines
    }

    /// What is left unrelayed at the end of the stream (a last line without its newline).
    pub fn remainder(&mut self) -> Option<Bytes> {
        if self.relay_by_lines && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            return Some(Bytes::from(line));
        }
        None
    }

    /// The tokens the answer reported.
    pub fn tokens(&mut self) -> TokenUsage {
        if self.event_stream {
            if self.protocol == Protocol::Native {
                if let Some(usage) = usage_in_tail(&self.last_native_event) {
                    self.reported.merge(read_usage_object(self.protocol, &usage));
                }
            }
        } else {
            let tail = match (self.tail.is_empty(), &self.tail_last) {
                (_, None) => Bytes::new(),
                (true, Some(last)) => last.clone(),
                (false, Some(last)) => {
                    Bytes::from(self.tail.iter().chain([last]).flat_map(|chunk| chunk.iter().copied()).collect::<Vec<u8>>())
                }
            };
            if let Some(usage) = usage_in_tail(&tail) {
                self.reported.merge(read_usage_object(self.protocol, &usage));
            }
        }
        self.reported.tokens()
    }
}

/// Whether an OpenAI-compatible chunk's `choices` is empty (`"choices":[]`): the usage-only
/// chunk that keygate removes when it asked for usage.
fn choices_are_empty(data: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let needle = b"\"choices\"";
    let Some(at) = FINDER.get_or_init(|| memchr::memmem::Finder::new(needle)).find(data) else { return false };
    let mut rest = data[at + needle.len()..].iter().copied().filter(|byte| !byte.is_ascii_whitespace());
    rest.next() == Some(b':') && rest.next() == Some(b'[') && rest.next() == Some(b']')
}

/// The value of the last `"usage"` member of a JSON answer (or of its tail, past the
/// limit). Each provider puts the answer's `usage` after its content, and a `"usage"`
/// inside a string is escaped (`\"usage\"`), so the last one found is the answer's: only
/// that object is parsed, not the content before it.
fn usage_in_tail(tail: &[u8]) -> Option<UsageFields> {
    usage_at(tail, last_usage_mention(tail)?)
}

/// The usage object of the member whose name, [`USAGE`], starts at `mention` in `bytes`.
fn usage_at(bytes: &[u8], mention: usize) -> Option<UsageFields> {
    let after = &bytes[mention + USAGE.len()..];
    let colon = after.iter().position(|byte| !byte.is_ascii_whitespace())?;
    if after[colon] != b':' {
        return None;
    }
    provider_usage::read_usage_object(&after[colon + 1..])
}

/// What a chunk of a stream relayed by lines is relayed as: the bytes copied here (a line
/// held back from earlier chunks), then the ranges of the chunk that are kept, in order.
/// Two ranges are enough (one chunk, one removed usage chunk); past them, the ranges are
/// copied too.
#[derive(Debug)]
struct Relay<'a> {
    chunk: &'a Bytes,
    /// Whether anything is kept (only when relaying by lines; else the chunk is relayed
    /// whole, whatever is read of it).
    active: bool,
    copied: Vec<u8>,
    ranges: [Range<usize>; 2],
    n_ranges: usize,
}

impl<'a> Relay<'a> {
    fn new(chunk: &'a Bytes, active: bool) -> Relay<'a> {
        Relay { chunk, active, copied: Vec::new(), ranges: [0..0, 0..0], n_ranges: 0 }
    }

    /// Keeps `range` of the chunk, after what is kept already.
    fn keep(&mut self, range: Range<usize>) {
        if !self.active || range.is_empty() {
            return;
        }
        if let Some(last) = self.n_ranges.checked_sub(1).map(|last| &mut self.ranges[last]) {
            if last.end == range.start {
                last.end = range.end;
                return;
            }
        }
        if self.n_ranges == self.ranges.len() {
            self.copy_ranges();
        }
        self.ranges[self.n_ranges] = range;
        self.n_ranges += 1;
    }

    /// Keeps a copy of `bytes` (not of the chunk), after what is kept already.
    fn keep_copy(&mut self, bytes: &[u8]) {
        if !self.active || bytes.is_empty() {
            return;
        }
        self.copy_ranges();
        self.copied.extend_from_slice(bytes);
    }

    fn copy_ranges(&mut self) {
        for range in &self.ranges[..self.n_ranges] {
            self.copied.extend_from_slice(&self.chunk[range.clone()]);
        }
        self.n_ranges = 0;
    }

    /// What is relayed: the chunk or a slice of it (no copy) when that is all, else one
    /// buffer of exactly the relayed size (whose `Bytes` needs no second allocation).
    fn into_bytes(self) -> Bytes {
        match (self.copied.is_empty(), self.n_ranges) {
            (true, 0) => Bytes::new(),
            (true, 1) if self.ranges[0] == (0..self.chunk.len()) => self.chunk.clone(),
            (true, 1) => self.chunk.slice(self.ranges[0].clone()),
            _ => {
                let ranges = &self.ranges[..self.n_ranges];
                let size = self.copied.len() + ranges.iter().map(ExactSizeIterator::len).sum::<usize>();
                let mut relayed = Vec::with_capacity(size);
                relayed.extend_from_slice(&self.copied);
                for range in ranges {
                    relayed.extend_from_slice(&self.chunk[range.clone()]);
                }
                Bytes::from(relayed)
            }
        }
    }
}

/// A model call in flight: who made it and when, counted once when it ends.
#[derive(Debug)]
pub struct CallMeter {
    /// This thread's handles (`crate::thread_handles`): a meter lives as long as its answer,
    /// and a clone of the shared `Arc`s would write counts every core writes.
    pub shared: ThreadHandle<SharedState>,
    /// Kept for the call's log line only ([`CallMeter::logged`]).
    pub request_id: Option<Arc<str>>,
    /// The registry's entry of the key (shared, not copied: its account and workspace are
    /// read when the call is counted).
    pub key: ThreadHandle<CompiledKey>,
    pub model: String,
    pub protocol: Protocol,
    pub at_milliseconds: i64,
    /// When the call started, read only when its log line is written ([`CallMeter::logged`]):
    /// the line's latencies are all the clock is read for.
    pub started: Option<Instant>,
    /// The token limits the call's tokens are charged to when it is counted.
    pub token_charges: TokenCharges,
    /// The call's place among its key's calls in flight, for a relayed answer: the meter
    /// lives as long as the answer's body, so the place is left when the body ends or is
    /// dropped, without another layer around the body.
    pub in_flight: Option<super::key_limits::InFlightGuard>,
}

/// The token limits a call's tokens are charged to when it ends: its workspace's limit of
/// its model, its key's tokens per minute (none, one or both). Their subjects are not kept:
/// they are the meter's key and model, borrowed when the call is counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenCharges {
    pub model: Option<RateLimit>,
    pub key: Option<RateLimit>,
}

impl Drop for CallMeter {
    /// A call dropped before it was finished (its client went away while keygate waited for
    /// the provider) still counts, with no token and status 499.
    fn drop(&mut self) {
        self.count(499, TokenUsage::default(), None, None);
    }
}

impl CallMeter {
    /// Whether a call's log line (target `keygate::model_call`, `info`) is written: its
    /// request id is kept and its latencies timed only then.
    pub fn logged() -> bool {
        tracing::enabled!(target: "keygate::model_call", tracing::Level::INFO)
    }

    /// Counts the call: its tokens per key, model and minute, the metrics, and its log line.
    pub fn finish(mut self, status: u16, tokens: TokenUsage, upstream_latency: Option<Duration>, first_byte: Option<Duration>) {
        self.count(status, tokens, upstream_latency, first_byte);
    }

    /// Counts the call once (a later call does nothing).
    fn count(&mut self, status: u16, tokens: TokenUsage, upstream_latency: Option<Duration>, first_byte: Option<Duration>) {
        if self.model.is_empty() {
            return;
        }
        let model = std::mem::take(&mut self.model);
        let shared = &self.shared;
        shared.usage.record_call(&CallUsage {
            key_id: self.key.key_id,
            account_id: self.key.account_id,
            workspace_id: &self.key.workspace_id,
            model: &model,
            at_milliseconds: self.at_milliseconds,
            tokens,
        });
        let charges = std::mem::take(&mut self.token_charges);
        if charges.model.is_some() || charges.key.is_some() {
            let total = u64::try_from(tokens.total()).unwrap_or(0);
            let now = shared.clock.now_seconds();
            if let Some(limit) = charges.model {
                let subject = LimitSubject::Model { workspace_id: &self.key.workspace_id, model: &model };
                shared.limiter.charge(subject, limit, total, now);
            }
            if let Some(limit) = charges.key {
                shared.limiter.charge(LimitSubject::Key { key_id: self.key.key_id }, limit, total, now);
            }
        }
        // A key with a budget counts the call at once, before the usage is flushed.
        if self.key.limits.as_ref().is_some_and(|limits| limits.budget.is_some()) {
            shared.key_budgets.charge(self.key.key_id, &model, &tokens, self.at_milliseconds.div_euclid(1000));
        }
        let protocol = protocol_name(self.protocol);
        shared.metrics.record_model_call(&model, protocol, &tokens);
        let milliseconds = |duration: Option<Duration>| duration.map(|duration| duration.as_secs_f64() * 1000.0);
        tracing::info!(
            target: "keygate::model_call",
            request_id = %self.request_id.as_deref().unwrap_or_default(),
            key_id = self.key.key_id,
            workspace = %self.key.workspace_id,
            model = %model,
            protocol,
            status,
            input_tokens = tokens.input,
            output_tokens = tokens.output,
            cached_tokens = tokens.cached,
            reasoning_tokens = tokens.reasoning,
            upstream_latency_ms = milliseconds(upstream_latency),
            first_byte_ms = milliseconds(first_byte),
            duration_ms = milliseconds(self.started.map(|started| started.elapsed())),
            "model call"
        );
    }
}

/// An upstream's answer relayed to the client while its usage is read; the call is
/// counted when the answer ends, or when the client goes away before.
pub struct MeteredBody<B> {
    /// The provider's body (generic, not boxed: one allocation less per call).
    inner: B,
    reader: UsageReader,
    meter: Option<CallMeter>,
    status: u16,
    upstream_latency: Option<Duration>,
    first_byte: Option<Duration>,
    ended: bool,
}

impl<B> MeteredBody<B> {
    pub fn new(inner: B, reader: UsageReader, meter: CallMeter, status: u16, upstream_latency: Option<Duration>) -> MeteredBody<B> {
        MeteredBody { inner, reader, meter: Some(meter), status, upstream_latency, first_byte: None, ended: false }
    }

    fn finish(&mut self) {
        if let Some(meter) = self.meter.take() {
            let tokens = self.reader.tokens();
            meter.finish(self.status, tokens, self.upstream_latency, self.first_byte);
        }
    }
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for MeteredBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers pass as they are; only data is read.
                    let chunk = match frame.into_data() {
                        Ok(chunk) => chunk,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    if this.first_byte.is_none() {
                        this.first_byte = this.meter.as_ref().and_then(|meter| meter.started).map(|started| started.elapsed());
                    }
                    let relayed = this.reader.feed(chunk);
                    if relayed.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(http_body::Frame::data(relayed))));
                }
                Poll::Ready(Some(Err(error))) => {
                    this.ended = true;
                    this.finish();
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    let remainder = this.reader.remainder();
                    this.finish();
                    return Poll::Ready(remainder.map(|remainder| Ok(http_body::Frame::data(remainder))));
                }
            }
        }
    }

    /// Ended, or the upstream's body ended and nothing of it is held back. (A body dropped
    /// when it says it has ended is counted by `Drop`.)
    fn is_end_stream(&self) -> bool {
        self.ended || (self.reader.relays_unchanged() && self.inner.is_end_stream())
    }

    /// The upstream's length when what is relayed is what it sent; unknown when a chunk
    /// may be removed.
    fn size_hint(&self) -> http_body::SizeHint {
        if self.reader.relays_unchanged() {
            self.inner.size_hint()
        } else {
            http_body::SizeHint::default()
        }
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backwards search finds what a backwards substring search finds, wherever the
    /// name is, however often, and among other `g`s.
    #[test]
    fn the_last_usage_mention_is_the_last_occurrence() {
        let finder = memchr::memmem::FinderRev::new(USAGE);
        let pieces: [&[u8]; 7] = [b"\"usage\"", b"g", b"usage", b"\"usag", b"e\"", b"{\"message\":1}", b"\"usage\"\"usage\""];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut haystack = Vec::new();
            for _ in 0..(seed % 6) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                haystack.extend_from_slice(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            assert_eq!(last_usage_mention(&haystack), finder.rfind(&haystack), "{:?}", String::from_utf8_lossy(&haystack));
        }
        assert_eq!(last_usage_mention(b"\"usage\""), Some(0));
        assert_eq!(last_usage_mention(b"usage\""), None);
        assert_eq!(last_usage_mention(b""), None);
    }

    fn read_all(protocol: Protocol, event_stream: bool, strip: bool, chunks: &[&[u8]]) -> (Vec<u8>, TokenUsage) {
        let mut reader = UsageReader::new(protocol, event_stream, strip);
        let mut relayed = Vec::new();
        for chunk in chunks {
            relayed.extend_from_slice(&reader.feed(Bytes::copy_from_slice(chunk)));
        }
        if let Some(rest) = reader.remainder() {
            relayed.extend_from_slice(&rest);
        }
        (relayed, reader.tokens())
    }

    #[test]
    fn the_usage_only_chunk_is_removed_and_read_across_chunk_boundaries() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\r\n\r\ndata: [DONE]\n\n";
        let without = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
        for split in [1, 7, 40, 60, 100, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(split).collect();
            let (relayed, tokens) = read_all(Protocol::OpenAi, true, true, &chunks);
            assert_eq!(relayed, without.to_vec(), "split {split}");
            assert_eq!(tokens, TokenUsage { input: 7, output: 3, cached: 2, reasoning: 0 });
            let (relayed, tokens) = read_all(Protocol::OpenAi, true, false, &chunks);
            assert_eq!(relayed, stream.to_vec(), "a client that asked gets the chunk");
            assert_eq!(tokens.input, 7);
        }
    }

    #[test]
    fn chunks_relayed_unread_and_chunks_read_by_line_give_the_same_stream() {
        // Many content events, then the usage chunk: most pieces take the unread path, the
        // ones around the usage chunk the line-by-line one, at every split.
        let mut stream = Vec::new();
        for index in 0..20 {
            stream.extend_from_slice(format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"part {index}\"}}}}]}}\n\n").as_bytes());
        }
        let without = stream.clone();
        stream.extend_from_slice(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":20}}\n\n");
        stream.extend_from_slice(b"data: [DONE]\n\n");
        let mut expected_without = without;
        expected_without.extend_from_slice(b"data: [DONE]\n\n");
        for split in 1..=stream.len() {
            let chunks: Vec<&[u8]> = stream.chunks(split).collect();
            let (relayed, tokens) = read_all(Protocol::OpenAi, true, true, &chunks);
            assert_eq!(relayed, expected_without, "removed, split {split}");
            assert_eq!((tokens.input, tokens.output), (4, 20), "split {split}");
            let (relayed, tokens) = read_all(Protocol::OpenAi, true, false, &chunks);
            assert_eq!(relayed, stream, "kept, split {split}");
            assert_eq!(tokens.output, 20, "split {split}");
        }
    }

    #[test]
    fn native_reports_are_cumulative_and_anthropic_adds_start_and_delta() {
        let native = b"id:1\ndata:{\"output\":{},\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}\n\nid:2\ndata:{\"output\":{},\"usage\":{\"input_tokens\":5,\"output_tokens\":4,\"output_tokens_details\":{\"reasoning_tokens\":2}}}\n\n";
        assert_eq!(read_all(Protocol::Native, true, false, &[native]).1, TokenUsage { input: 5, output: 4, cached: 0, reasoning: 2 });
        let anthropic = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":6}}\n\n";
        assert_eq!(
            read_all(Protocol::Anthropic, true, false, &[anthropic]).1,
            TokenUsage { input: 12, output: 6, cached: 3, reasoning: 0 }
        );
    }

    /// `opening`, then `padding` bytes of filler, then `closing`: an input larger than the
    /// reader's limits.
    fn padded(opening: &[u8], padding: usize, closing: &[u8]) -> Vec<u8> {
        [opening, &vec![b'x'; padding], closing].concat()
    }

    /// Feeds `input` to `reader` in pieces of `piece_size` bytes, checking `bounded` after
    /// each, and answers what the reader relayed.
    fn feed_in_pieces(reader: &mut UsageReader, input: &[u8], piece_size: usize, bounded: impl Fn(&UsageReader)) -> Vec<u8> {
        let mut relayed = Vec::new();
        for piece in input.chunks(piece_size) {
            relayed.extend_from_slice(&reader.feed(Bytes::copy_from_slice(piece)));
            bounded(reader);
        }
        relayed
    }

    #[test]
    fn an_overlong_line_is_relayed_unread_and_memory_stays_bounded() {
        let opening = b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1},\"choices\":[],\"pad\":\"";
        let stream = padded(opening, MAX_LINE_BYTES * 2, b"\"}\n\ndata: [DONE]\n\n");
        let mut reader = UsageReader::new(Protocol::OpenAi, true, true);
        let relayed = feed_in_pieces(&mut reader, &stream, 4096, |reader| assert!(reader.line.capacity() <= 2 * MAX_LINE_BYTES));
        assert_eq!(relayed, stream, "relayed whole");
        assert_eq!(reader.tokens(), TokenUsage::default(), "not read");
    }

    /// A plain statement of what the reader does with a whole stream, one line at a time:
    /// every line is relayed but the first usage-only `data:` line (and the blank line right
    /// after it) when the chunk is to be removed; usage is read from the last `"usage"` of
    /// each `data:` line by serde_json.
    fn read_by_lines(protocol: Protocol, strip: bool, stream: &[u8]) -> (Vec<u8>, TokenUsage) {
        let mut relayed = Vec::new();
        let mut reported = Reported::default();
        let (mut strip, mut drop_blank_line) = (strip, false);
        for line in stream.split_inclusive(|byte| *byte == b'\n') {
            let content = trim_line_end(line);
            if std::mem::take(&mut drop_blank_line) && content.is_empty() && line.ends_with(b"\n") {
                continue;
            }
            if let Some(data) = content.strip_prefix(b"data:").filter(|_| line.ends_with(b"\n") && line.len() <= MAX_LINE_BYTES) {
                let data = data.strip_prefix(b" ").unwrap_or(data);
                if let Some(mention) = last_usage_mention(data) {
                    let after = &data[mention + USAGE.len()..];
                    let value = after.iter().position(|byte| !byte.is_ascii_whitespace()).filter(|colon| after[*colon] == b':');
                    if let Some(usage) = value.and_then(|colon| provider_usage::read_usage_object_with_serde(&after[colon + 1..])) {
                        reported.merge(read_usage_object(protocol, &usage));
                        if strip && choices_are_empty(data) {
                            strip = false;
                            drop_blank_line = true;
                            continue;
                        }
                    }
                }
            }
            relayed.extend_from_slice(line);
        }
        (relayed, reported.tokens())
    }

    #[test]
    fn chunks_searched_once_give_what_a_line_by_line_reading_gives_at_every_split() {
        let streams: [&[u8]; 6] = [
            // The usual stream; the usage chunk followed by [DONE].
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n",
            // `"usage":null` on every chunk, a usage chunk with nested details, CRLF.
            b"data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":1},\"completion_tokens_details\":{\"reasoning_tokens\":2},\"completion_tokens\":6}}\r\n\r\ndata: [DONE]\r\n\r\n",
            // Mentions in content (escaped), in a comment, in an event name, two in a line,
            // a usage object the small reader is unsure of, no space after `data:`.
            b": \"usage\" in a comment\nevent: \"usage\"\ndata:{\"choices\":[{\"delta\":{\"content\":\"say \\\"usage\\\":{\\\"prompt_tokens\\\":99}\"}}]}\n\ndata:{\"usage\":{\"prompt_tokens\":1},\"choices\":[],\"x\":{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8,\"note\":\"caf\xc3\xa9\"}}}\n\ndata: [DONE]\n\n",
            // Two usage-only chunks: only the first is removed; the second's counts win.
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
            // The removed chunk not followed by a blank line; a last line without newline.
            b"data: {\"choices\":[], \"usage\" : {\"prompt_tokens\":9,\"prompt_tokens\":9}}\ndata: {\"choices\" : [ ],\"usage\":{\"prompt_tokens\":4}}\ndata: [DONE]",
            // Hostile values: huge, negative, fractional numbers; a cut-off object.
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":99999999999999999999,\"completion_tokens\":1}}\n\ndata: {\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1.5}}\n\ndata: {\"usage\":{\"prompt_tokens\":12\n\n",
        ];
        for stream in streams {
            for strip in [true, false] {
                let expected = read_by_lines(Protocol::OpenAi, strip, stream);
                for split in 1..=stream.len() {
                    let chunks: Vec<&[u8]> = stream.chunks(split).collect();
                    assert_eq!(
                        read_all(Protocol::OpenAi, true, strip, &chunks),
                        expected,
                        "strip {strip}, split {split}: {}",
                        String::from_utf8_lossy(stream)
                    );
                }
                // Uneven chunks: every cut into two.
                for cut in 0..=stream.len() {
                    let (first, second) = stream.split_at(cut);
                    assert_eq!(read_all(Protocol::OpenAi, true, strip, &[first, second]), expected, "strip {strip}, cut {cut}");
                }
            }
        }
    }

    #[test]
    fn a_removed_chunk_leaves_slices_of_the_chunk_or_one_buffer_of_its_exact_size() {
        let content = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
        let usage = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n";
        let done = b"data: [DONE]\n\n";
        // Before the usage chunk: a slice of the chunk, no copy.
        let chunk = Bytes::from([&content[..], &usage[..]].concat());
        let mut reader = UsageReader::new(Protocol::OpenAi, true, true);
        let relayed = reader.feed(chunk.clone());
        assert_eq!(relayed, Bytes::from_static(content));
        assert_eq!(relayed.as_ptr(), chunk.as_ptr(), "a slice of the chunk");
        // Around it: one buffer.
        let mut reader = UsageReader::new(Protocol::OpenAi, true, true);
        let relayed = reader.feed(Bytes::from([&content[..], &usage[..], &done[..]].concat()));
        assert_eq!(relayed, Bytes::from([&content[..], &done[..]].concat()));
        assert_eq!(reader.tokens(), TokenUsage { input: 3, output: 4, cached: 0, reasoning: 0 });
        // A chunk without mention is the chunk itself.
        let chunk = Bytes::from_static(content);
        assert_eq!(UsageReader::new(Protocol::OpenAi, true, true).feed(chunk.clone()).as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn a_large_json_answer_is_read_from_its_tail() {
        let body = padded(b"{\"data\":[\"", 4 * 1024 * 1024, b"\"],\"usage\": {\"prompt_tokens\": 11, \"total_tokens\": 11}}");
        let mut reader = UsageReader::new(Protocol::OpenAi, false, false);
        feed_in_pieces(&mut reader, &body, 65536, |reader| assert!(reader.tail_bytes <= TAIL_BYTES + 65536));
        assert_eq!(reader.tokens().input, 11);
    }
}
