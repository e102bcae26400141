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
//! The usual chunk of a stream does not mention `"usage"`: it is relayed as it came, and
//! only its last, unfinished line is kept, for the next chunk may complete it into a line
//! that does. Only chunks that mention usage (or continue a kept line) are read line by line.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use keygate_core::limits::RateLimit;
use keygate_core::usage::TokenUsage;
use keygate_core::verification::CompiledKey;
use serde::Deserialize;

use super::errors::Protocol;
use crate::limiter::LimitSubject;
use crate::state::SharedState;
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

/// Token counts under the names each protocol uses; serde skips everything else without
/// building it.
#[derive(Debug, Default, Deserialize)]
struct UsageFields {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    total_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
    /// An application's usage, per model it called (DashScope).
    models: Option<Vec<ModelUsage>>,
}

#[derive(Debug, Default, Deserialize)]
struct Details {
    cached_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct ModelUsage {
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
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

/// The searcher for `"usage"`, built once.
fn usage_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"usage\""))
}

fn mentions_usage(haystack: &[u8]) -> bool {
    usage_finder().find(haystack).is_some()
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
    /// A JSON answer's last chunks, at least [`TAIL_BYTES`] of them when it is that long.
    tail: std::collections::VecDeque<Bytes>,
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
        // Whole lines before the first mention of usage need no reading when no line is being
        // assembled: they are relayed as they came, and reading starts at the line that
        // mentions it (or, without one, only the chunk's unfinished last line is kept).
        let mut unread = 0;
        if self.line.is_empty() && !self.overlong && !self.drop_blank_line {
            let first_mention = usage_finder().find(&chunk);
            let before_mention = &chunk[..first_mention.unwrap_or(chunk.len())];
            unread = memchr::memrchr(b'\n', before_mention).map_or(0, |newline| newline + 1);
            if first_mention.is_none() && unread > 0 && chunk.len() - unread <= MAX_LINE_BYTES {
                self.line.extend_from_slice(&chunk[unread..]);
                // Held back until it is whole when a chunk may be removed (it may be that one).
                return if self.relay_by_lines { chunk.slice(..unread) } else { chunk };
            }
        }
        let mut relayed = if self.relay_by_lines {
            let mut relayed = Vec::with_capacity(chunk.len() + self.line.len());
            relayed.extend_from_slice(&chunk[..unread]);
            Some(relayed)
        } else {
            None
        };
        let mut rest: &[u8] = &chunk[unread..];
        while !rest.is_empty() {
            let (piece, after, complete) = match memchr::memchr(b'\n', rest) {
                Some(end) => (&rest[..=end], &rest[end + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            self.take_piece(piece, complete, relayed.as_mut());
            rest = after;
        }
        match relayed {
            Some(relayed) => Bytes::from(relayed),
            None => chunk,
        }
    }

    /// Keeps `chunk` in the JSON answer's tail, dropping the chunks before the last
    /// [`TAIL_BYTES`] (the chunks are shared with what is relayed, not copied).
    fn keep_tail(&mut self, chunk: Bytes) {
        self.tail_bytes += chunk.len();
        self.tail.push_back(chunk);
        while let Some(front) = self.tail.front() {
            if self.tail_bytes - front.len() < TAIL_BYTES {
                break;
            }
            self.tail_bytes -= front.len();
            self.tail.pop_front();
        }
    }

    fn take_piece(&mut self, piece: &[u8], complete: bool, relayed: Option<&mut Vec<u8>>) {
        if self.overlong {
            if let Some(relayed) = relayed {
                relayed.extend_from_slice(piece);
            }
            self.overlong = !complete;
            return;
        }
        if self.line.len() + piece.len() > MAX_LINE_BYTES {
            if let Some(relayed) = relayed {
                relayed.extend_from_slice(&self.line);
                relayed.extend_from_slice(piece);
            }
            self.line.clear();
            self.overlong = !complete;
            return;
        }
        if complete && self.line.is_empty() {
            // A whole line within the chunk is read where it is, not copied first.
            if self.read_line(piece) {
                if let Some(relayed) = relayed {
                    relayed.extend_from_slice(piece);
                }
            }
            return;
        }
        self.line.extend_from_slice(piece);
        if complete {
            let line = std::mem::take(&mut self.line);
            if self.read_line(&line) {
                if let Some(relayed) = relayed {
                    relayed.extend_from_slice(&line);
                }
            }
            self.line = line;
            self.line.clear();
        }
    }

    /// Reads one whole line; answers whether it is relayed.
    fn read_line(&mut self, line: &[u8]) -> bool {
        let content = trim_line_end(line);
        if std::mem::take(&mut self.drop_blank_line) && content.is_empty() {
            return false;
        }
        let Some(data) = content.strip_prefix(b"data:") else { return true };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if !mentions_usage(data) {
            return true;
        }
        if self.protocol == Protocol::Native {
            self.last_native_event.clear();
            self.last_native_event.extend_from_slice(data);
            return true;
        }
        // Only the usage object is parsed, not the event around it (see `usage_in_tail`);
        // `"usage":null`, which OpenAI-compatible providers send on every chunk of a stream
        // that asked for usage, reports nothing.
        let Some(usage) = usage_in_tail(data) else { return true };
        self.reported.merge(read_usage_object(self.protocol, &usage));
        if self.strip_usage_chunk && choices_are_empty(data) {
            self.strip_usage_chunk = false;
            self.drop_blank_line = true;
            return false;
        }
        true
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
            let tail = match self.tail.len() {
                0 => Bytes::new(),
                1 => self.tail[0].clone(),
                _ => Bytes::from(self.tail.iter().flat_map(|chunk| chunk.iter().copied()).collect::<Vec<u8>>()),
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
    static FINDER: std::sync::OnceLock<memchr::memmem::FinderRev<'static>> = std::sync::OnceLock::new();
    let needle = b"\"usage\"";
    let at = FINDER.get_or_init(|| memchr::memmem::FinderRev::new(needle)).rfind(tail)?;
    let after = &tail[at + needle.len()..];
    let colon = after.iter().position(|byte| !byte.is_ascii_whitespace())?;
    if after[colon] != b':' {
        return None;
    }
    serde_json::Deserializer::from_slice(&after[colon + 1..]).into_iter::<UsageFields>().next()?.ok()
}

/// A model call in flight: who made it and when, counted once when it ends.
#[derive(Debug)]
pub struct CallMeter {
    pub shared: Arc<SharedState>,
    pub request_id: String,
    /// The registry's entry of the key (shared, not copied: its account and workspace are
    /// read when the call is counted).
    pub key: Arc<CompiledKey>,
    pub model: String,
    pub protocol: Protocol,
    pub at_milliseconds: i64,
    pub started: Instant,
    /// The token limits the call's tokens are charged to when it is counted: its
    /// workspace's limit of the model, its key's tokens per minute (none, one or both).
    pub token_charges: Vec<(LimitSubject, RateLimit)>,
}

impl Drop for CallMeter {
    /// A call dropped before it was finished (its client went away while keygate waited for
    /// the provider) still counts, with no token and status 499.
    fn drop(&mut self) {
        self.count(499, TokenUsage::default(), None, None);
    }
}

impl CallMeter {
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
        if !self.token_charges.is_empty() {
            let total = u64::try_from(tokens.total()).unwrap_or(0);
            let now = shared.clock.now_seconds();
            for (subject, limit) in std::mem::take(&mut self.token_charges) {
                shared.limiter.charge(&subject, limit, total, now);
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
            request_id = %self.request_id,
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
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "model call"
        );
    }
}

/// An upstream's answer relayed to the client while its usage is read; the call is
/// counted when the answer ends, or when the client goes away before.
pub struct MeteredBody<S> {
    /// The provider's body (generic, not boxed: one allocation less per call).
    inner: S,
    reader: UsageReader,
    meter: Option<CallMeter>,
    status: u16,
    upstream_latency: Duration,
    first_byte: Option<Duration>,
    ended: bool,
}

impl<S> MeteredBody<S> {
    pub fn new(inner: S, reader: UsageReader, meter: CallMeter, status: u16, upstream_latency: Duration) -> MeteredBody<S> {
        MeteredBody { inner, reader, meter: Some(meter), status, upstream_latency, first_byte: None, ended: false }
    }

    fn finish(&mut self) {
        if let Some(meter) = self.meter.take() {
            let tokens = self.reader.tokens();
            meter.finish(self.status, tokens, Some(self.upstream_latency), self.first_byte);
        }
    }
}

impl<S: Stream<Item = Result<Bytes, E>> + Unpin, E> Stream for MeteredBody<S> {
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.first_byte.is_none() {
                        this.first_byte = this.meter.as_ref().map(|meter| meter.started.elapsed());
                    }
                    let relayed = this.reader.feed(chunk);
                    if relayed.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(relayed)));
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
                    return Poll::Ready(remainder.map(Ok));
                }
            }
        }
    }
}

impl<S> Drop for MeteredBody<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_large_json_answer_is_read_from_its_tail() {
        let body = padded(b"{\"data\":[\"", 4 * 1024 * 1024, b"\"],\"usage\": {\"prompt_tokens\": 11, \"total_tokens\": 11}}");
        let mut reader = UsageReader::new(Protocol::OpenAi, false, false);
        feed_in_pieces(&mut reader, &body, 65536, |reader| assert!(reader.tail_bytes <= TAIL_BYTES + 65536));
        assert_eq!(reader.tokens().input, 11);
    }
}
