//! Objects that a call leaves behind at a provider and that later calls name by id: the
//! responses of the OpenAI Responses API (docs/CONTRACT.md#responses-api) and DashScope's
//! asynchronous tasks (docs/CONTRACT.md#asynchronous-tasks). The provider
//! keeps them under the deployment's one credential, so it would hand any of them to any
//! key; keygate remembers which workspace made each (and with which model, through which
//! upstream) and lets only keys of that workspace name it again.
//!
//! The record is kept in this node's memory, bounded ([`MAX_REMEMBERED`], the oldest
//! forgotten first): an id this node does not know is refused as not found, never
//! forwarded, so a restart or another node fails closed. The demo's own objects are kept
//! here whole, since no provider holds them.
//!
//! [`IdScanner`] reads a provider's id from the start of an answer as it is relayed.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// What kind of object an id names: ids of different kinds never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A response of the OpenAI Responses API.
    Response,
    /// A DashScope asynchronous task.
    Task,
}

/// How many objects a node remembers.
pub const MAX_REMEMBERED: usize = 100_000;

/// Who made an object, and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderObject {
    pub workspace_id: String,
    pub model: String,
    /// The upstream that holds it, by name; `None`: the demo made it.
    pub upstream: Option<String>,
    /// What the demo made, kept whole.
    pub demo: Option<Arc<DemoObject>>,
}

/// An object the demo made.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoObject {
    /// The object `GET /responses/{id}` answers, and the items of its input
    /// (`GET /responses/{id}/input_items`).
    Response { response: Value, input_items: Vec<Value> },
    /// A finished task: its `output` and `usage` as `GET /api/v1/tasks/{id}` answers them.
    Task { output: Value, usage: Value },
}

type ObjectKey = (ObjectKind, String);

#[derive(Debug, Default)]
struct Remembered {
    by_id: HashMap<ObjectKey, ProviderObject>,
    /// Ids in the order they were remembered, to forget the oldest.
    order: VecDeque<ObjectKey>,
}

/// This node's record of provider objects.
#[derive(Debug, Default)]
pub struct ProviderObjects {
    remembered: Mutex<Remembered>,
}

impl ProviderObjects {
    /// Remembers that `id` was made as `object` (the first record of an id stands: a
    /// provider that answered the same id twice does not move it to another workspace).
    pub fn remember(&self, kind: ObjectKind, id: &str, object: ProviderObject) {
        let key = (kind, id.to_string());
        let mut remembered = self.remembered.lock().unwrap_or_else(PoisonError::into_inner);
        if remembered.by_id.contains_key(&key) {
            return;
        }
        if remembered.order.len() >= MAX_REMEMBERED {
            if let Some(oldest) = remembered.order.pop_front() {
                remembered.by_id.remove(&oldest);
            }
        }
        remembered.order.push_back(key.clone());
        remembered.by_id.insert(key, object);
    }

    /// The object `id` of `kind`, when this node remembers it.
    pub fn get(&self, kind: ObjectKind, id: &str) -> Option<ProviderObject> {
        self.remembered.lock().unwrap_or_else(PoisonError::into_inner).by_id.get(&(kind, id.to_string())).cloned()
    }

    /// Forgets `id` (a deleted response).
    pub fn forget(&self, kind: ObjectKind, id: &str) {
        let key = (kind, id.to_string());
        let mut remembered = self.remembered.lock().unwrap_or_else(PoisonError::into_inner);
        if remembered.by_id.remove(&key).is_some() {
            remembered.order.retain(|kept| kept != &key);
        }
    }
}

/// How far into an answer an id is looked for: providers write it first.
const ID_SCAN_BYTES: usize = 8 * 1024;
/// The longest id recorded.
const MAX_ID_CHARACTERS: usize = 200;

/// Relays a body unchanged while it looks for the first string value of `key` (`"id"`,
/// `"task_id"`) in its first [`ID_SCAN_BYTES`], and hands it to `found` once.
pub struct IdScanner<S> {
    inner: S,
    key: &'static [u8],
    seen: Vec<u8>,
    found: Option<Box<dyn FnOnce(String) + Send>>,
}

impl<S> IdScanner<S> {
    pub fn new(inner: S, key: &'static [u8], found: Box<dyn FnOnce(String) + Send>) -> IdScanner<S> {
        IdScanner { inner, key, seen: Vec::new(), found: Some(found) }
    }

    fn look_at(&mut self, chunk: &[u8]) {
        if self.found.is_none() {
            return;
        }
        let room = ID_SCAN_BYTES.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some(id) = first_string_of(&self.seen, self.key) {
            if let Some(found) = self.found.take() {
                found(id);
            }
            self.seen = Vec::new();
        } else if self.seen.len() >= ID_SCAN_BYTES {
            self.found = None;
            self.seen = Vec::new();
        }
    }
}

impl<S, E> Stream for IdScanner<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(context);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            let chunk = chunk.clone();
            self.look_at(&chunk);
        }
        polled
    }
}

/// The value of the first `key` (a quoted JSON key such as `"id"`) in `bytes` (a JSON
/// object or SSE `data:` lines), when it is a complete string of at most
/// [`MAX_ID_CHARACTERS`] id characters.
pub fn first_string_of(bytes: &[u8], key: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(bytes, key)?;
    let rest = &bytes[at + key.len()..];
    let rest = rest.iter().position(|byte| !byte.is_ascii_whitespace()).map(|start| &rest[start..])?;
    let rest = rest.strip_prefix(b":")?;
    let rest = rest.iter().position(|byte| !byte.is_ascii_whitespace()).map(|start| &rest[start..])?;
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&byte| byte == b'"')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    let valid = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARACTERS
        && id.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.' | ':'));
    valid.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made_in(workspace_id: &str) -> ProviderObject {
        ProviderObject { workspace_id: workspace_id.into(), model: "m".into(), upstream: None, demo: None }
    }

    #[test]
    fn the_first_record_of_an_id_stands_and_a_forgotten_id_is_unknown() {
        let objects = ProviderObjects::default();
        objects.remember(ObjectKind::Response, "resp_1", made_in("llm-a"));
        objects.remember(ObjectKind::Response, "resp_1", made_in("llm-b"));
        assert_eq!(objects.get(ObjectKind::Response, "resp_1").map(|object| object.workspace_id), Some("llm-a".into()));
        // Kinds are apart: a task of the same id is another object.
        assert_eq!(objects.get(ObjectKind::Task, "resp_1"), None);
        objects.forget(ObjectKind::Response, "resp_1");
        assert_eq!(objects.get(ObjectKind::Response, "resp_1"), None);
    }

    #[test]
    fn the_first_id_of_a_json_answer_or_an_event_stream_is_found_whole() {
        assert_eq!(first_string_of(br#"{"id": "resp_abc", "object": "response"}"#, b"\"id\""), Some("resp_abc".into()));
        let stream = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"output\":[]}}\n\n";
        assert_eq!(first_string_of(stream, b"\"id\""), Some("resp_1".into()));
        let task = br#"{"request_id":"r","output":{"task_id":"0f3c-11","task_status":"PENDING"}}"#;
        assert_eq!(first_string_of(task, b"\"task_id\""), Some("0f3c-11".into()));
        // Not yet complete: wait for more bytes.
        assert_eq!(first_string_of(br#"{"id":"resp_ab"#, b"\"id\""), None);
        // Not an id.
        assert_eq!(first_string_of(br#"{"id":"a b"}"#, b"\"id\""), None);
        assert_eq!(first_string_of(br#"{"id":12}"#, b"\"id\""), None);
    }
}
