//! Objects that a call leaves behind at a provider and that later calls name by id: the
//! responses of the OpenAI Responses API (docs/CONTRACT.md#responses-api). The provider
//! keeps them under the deployment's one credential, so it would hand any of them to any
//! key; keygate remembers which workspace made each (and with which model, through which
//! upstream) and lets only keys of that workspace name it again.
//!
//! The record is kept in this node's memory, bounded ([`MAX_REMEMBERED`], the oldest
//! forgotten first): an id this node does not know is refused as not found, never
//! forwarded, so a restart or another node fails closed. The demo's own responses are kept
//! here whole, since no provider holds them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// How many objects a node remembers.
pub const MAX_REMEMBERED: usize = 100_000;

/// Who made an object, and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderObject {
    pub workspace_id: String,
    pub model: String,
    /// The upstream that holds it, by name; `None`: the demo made it.
    pub upstream: Option<String>,
    /// A demo response as it would be retrieved, and its input items.
    pub demo: Option<Arc<DemoResponse>>,
}

/// A response the demo made: the object `GET /responses/{id}` answers, and the items of its
/// input (`GET /responses/{id}/input_items`).
#[derive(Debug, Clone, PartialEq)]
pub struct DemoResponse {
    pub response: Value,
    pub input_items: Vec<Value>,
}

#[derive(Debug, Default)]
struct Remembered {
    by_id: HashMap<String, ProviderObject>,
    /// Ids in the order they were remembered, to forget the oldest.
    order: VecDeque<String>,
}

/// This node's record of provider objects.
#[derive(Debug, Default)]
pub struct ProviderObjects {
    remembered: Mutex<Remembered>,
}

impl ProviderObjects {
    /// Remembers that `id` was made as `object` (the first record of an id stands: a
    /// provider that answered the same id twice does not move it to another workspace).
    pub fn remember(&self, id: &str, object: ProviderObject) {
        let mut remembered = self.remembered.lock().unwrap_or_else(PoisonError::into_inner);
        if remembered.by_id.contains_key(id) {
            return;
        }
        if remembered.order.len() >= MAX_REMEMBERED {
            if let Some(oldest) = remembered.order.pop_front() {
                remembered.by_id.remove(&oldest);
            }
        }
        remembered.order.push_back(id.to_string());
        remembered.by_id.insert(id.to_string(), object);
    }

    /// The object `id`, when this node remembers it.
    pub fn get(&self, id: &str) -> Option<ProviderObject> {
        self.remembered.lock().unwrap_or_else(PoisonError::into_inner).by_id.get(id).cloned()
    }

    /// Forgets `id` (a deleted response).
    pub fn forget(&self, id: &str) {
        let mut remembered = self.remembered.lock().unwrap_or_else(PoisonError::into_inner);
        if remembered.by_id.remove(id).is_some() {
            remembered.order.retain(|kept| kept != id);
        }
    }
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
        objects.remember("resp_1", made_in("llm-a"));
        objects.remember("resp_1", made_in("llm-b"));
        assert_eq!(objects.get("resp_1").map(|object| object.workspace_id), Some("llm-a".into()));
        objects.forget("resp_1");
        assert_eq!(objects.get("resp_1"), None);
    }
}
