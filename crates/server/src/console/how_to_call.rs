//! The "how to call" panel: the base URL of each protocol keygate serves in the selected
//! region (DashScope native, OpenAI-compatible, Anthropic-compatible) and a curl and a
//! Python snippet that call a model with a key, each with a Copy button. Shown next to a
//! key just created (its snippet names a model the key may call) and on an empty key list.
//!
//! The snippets read the key from `DASHSCOPE_API_KEY`; the plaintext is never repeated in
//! them.

use keygate_core::permissions::KeyAuth;
use maud::{html, Markup};

use super::i18n::Language;
use super::session::Console;
use crate::state::AppState;

/// The scheme, host and port a region's model calls go to. The region this request came
/// in on: the request's own (`Host`, and `https` behind an HTTPS proxy). Another region:
/// its first pay-as-you-go listener's port, on the request's host name when that listener
/// is bound to every address or to loopback, else on the listener's address.
pub fn region_origin(state: &AppState, console: &Console) -> String {
    let origin = &console.origin;
    let region = console.region();
    let listener =
        state.shared.listener_addresses.get().and_then(|bound| bound.iter().find(|(_, listener_region)| listener_region == region));
    match listener {
        Some((address, _)) if region != state.listener_region => {
            let port = address.port();
            let address = address.ip();
            let host = if address.is_unspecified() || address.is_loopback() {
                origin.hostname().to_string()
            } else if address.is_ipv6() {
                format!("[{address}]")
            } else {
                address.to_string()
            };
            format!("{}://{host}:{port}", origin.scheme)
        }
        _ => format!("{}://{}", origin.scheme, origin.host),
    }
}

/// The base URL of each protocol, as its SDK takes it.
pub struct BaseUrls {
    pub native: String,
    pub openai: String,
    pub anthropic: String,
}

impl BaseUrls {
    pub fn of(origin: &str) -> BaseUrls {
        BaseUrls {
            native: format!("{origin}/api/v1"),
            openai: format!("{origin}/compatible-mode/v1"),
            anthropic: format!("{origin}/apps/anthropic"),
        }
    }
}

/// What the snippets call, and what a key's workspace does not let it call.
pub struct SnippetModel {
    /// A model the key may call; `None`: its workspace grants it none, so calls are refused
    /// ("Model access denied") until an administrator grants one on the Workspaces page.
    pub model: Option<String>,
    pub workspace_name: String,
    /// Models the key's own scope names that its workspace does not grant.
    pub not_granted: Vec<String>,
}

/// The model a snippet names: of the catalog models a key may call (its workspace's grants,
/// `None`: every model; and its own model scope), a demo model first (it answers without a
/// provider), then the first chat model; embedding models only when nothing else is left.
pub fn snippet_model(state: &AppState, workspace_models: Option<&[String]>, auth: Option<&KeyAuth>, workspace_name: &str) -> SnippetModel {
    let in_workspace = |name: &str| workspace_models.is_none_or(|models| models.iter().any(|model| model == name));
    let scope = match auth {
        Some(KeyAuth::Custom(custom)) if !custom.model_scope.allow_all_models => Some(&custom.model_scope.accessible_models),
        _ => None,
    };
    let in_scope = |name: &str| scope.is_none_or(|models| models.iter().any(|model| model == name));
    let candidates: Vec<_> = state.shared.catalog.iter().filter(|model| in_workspace(&model.name) && in_scope(&model.name)).collect();
    let is_embedding = |name: &str| name.contains("embed");
    let chosen = candidates
        .iter()
        .find(|model| model.demo && !is_embedding(&model.name))
        .or_else(|| candidates.iter().find(|model| !is_embedding(&model.name)))
        .or_else(|| candidates.first());
    SnippetModel {
        model: chosen.map(|model| model.name.clone()),
        workspace_name: workspace_name.to_string(),
        not_granted: scope.map(|models| models.iter().filter(|name| !in_workspace(name)).cloned().collect()).unwrap_or_default(),
    }
}

fn curl_snippet(urls: &BaseUrls, model: &str) -> String {
    format!(
        "curl {}/chat/completions \\\n  -H \"Authorization: Bearer $DASHSCOPE_API_KEY\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
        urls.openai
    )
}

fn python_snippet(urls: &BaseUrls, model: &str) -> String {
    format!(
        "import os\nfrom openai import OpenAI\n\nclient = OpenAI(api_key=os.environ[\"DASHSCOPE_API_KEY\"], base_url=\"{}\")\ncompletion = client.chat.completions.create(\n    model=\"{model}\",\n    messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}],\n)\nprint(completion.choices[0].message.content)",
        urls.openai
    )
}

/// A value with its Copy button; `id` names the element the button copies.
fn copyable(language: Language, id: &str, status_id: &str, label: &str, text: &str, block: bool) -> Markup {
    html! {
        div.copyable {
            @if block { pre.snippet id=(id) { code { (text) } } } @else { code.base-url id=(id) { (text) } }
            button.secondary.copy type="button" data-copy-target=(id) data-status-target=(status_id) aria-label=(language.fill("call.copy_label", &[&label])) { (language.text("call.copy")) }
        }
    }
}

/// The panel, for the region of `console`; `model`: what the snippets call. Element ids
/// start with `prefix` (the page may hold the panel twice: on the list and in a dialog).
pub fn how_to_call_panel(state: &AppState, console: &Console, model: &SnippetModel, prefix: &str) -> Markup {
    let urls = BaseUrls::of(&region_origin(state, console));
    let administers = console.auth.caller.may_administer().is_ok();
    let workspaces = super::layout::with_region("/console/workspaces", console.region());
    let status_id = format!("{prefix}how-to-call-status");
    let language = console.language;
    html! {
        section.panel.how-to-call id={ (prefix) "how-to-call" } aria-labelledby={ (prefix) "how-to-call-title" } {
            h2 id={ (prefix) "how-to-call-title" } { (language.text("call.heading")) }
            @let hint = language.text("call.hint");
            @let (before, after) = hint.split_once("{}").unwrap_or((hint, ""));
            p.hint { (before) code { "export DASHSCOPE_API_KEY=sk-..." } (after) }
            dl.base-urls {
                dt { (language.text("call.native")) }
                dd { (copyable(language, &format!("{prefix}base-url-native"), &status_id, language.text("call.native"), &urls.native, false)) }
                dt { (language.text("call.openai")) }
                dd { (copyable(language, &format!("{prefix}base-url-openai"), &status_id, language.text("call.openai"), &urls.openai, false)) }
                dt { (language.text("call.anthropic")) }
                dd { (copyable(language, &format!("{prefix}base-url-anthropic"), &status_id, language.text("call.anthropic"), &urls.anthropic, false)) }
            }
            @if let Some(name) = &model.model {
                h3 { "curl" }
                (copyable(language, &format!("{prefix}snippet-curl"), &status_id, "curl", &curl_snippet(&urls, name), true))
                h3 { (language.text("call.python")) " (" code { "pip install openai" } ")" }
                (copyable(language, &format!("{prefix}snippet-python"), &status_id, "Python", &python_snippet(&urls, name), true))
            }
            @let grant_hint = html! {
                @if administers { (language.text("call.on_the")) a href=(workspaces) { (language.text("call.workspaces_page")) } "." } @else { (language.text("call.ask")) }
            };
            @if model.model.is_none() {
                p.notice.notice-warning.model-not-granted role="status" {
                    strong { (language.fill("call.none_granted", &[&model.workspace_name])) }
                    (language.text("call.none_granted_text")) (grant_hint)
                }
            } @else if !model.not_granted.is_empty() {
                p.notice.notice-warning.model-not-granted role="status" {
                    strong { (language.fill("call.not_granted", &[&model.workspace_name, &model.not_granted.join(", ")])) }
                    (language.text("call.not_granted_text")) (grant_hint)
                }
            }
            p.visually-hidden id=(status_id) role="status" {}
        }
    }
}
