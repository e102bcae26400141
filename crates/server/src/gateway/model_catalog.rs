//! The models a key may call, as the OpenAI and Anthropic clients ask for them
//! (docs/CONTRACT.md#models-and-token-counts): `GET /compatible-mode/v1/models` and
//! `/{id}` in OpenAI's shapes, `GET /apps/anthropic/v1/models` and `/{id}` in Anthropic's,
//! with its `limit`, `after_id` and `before_id` paging. keygate answers all of them from
//! its catalog, never from a provider: a provider's list names every model of the
//! deployment's credential, while a key may call only the models its workspace was
//! granted and its scope allows, served in the protocol asked. A model that the key may
//! not call is answered exactly like one that does not exist (404), so the listing tells
//! a key nothing about what other keys may do.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::catalog::CatalogModel;
use keygate_core::verification::CallTarget;
use serde_json::{json, Value};

use super::authorize::{authenticate_request, authorize_target, Authorized};
use super::errors::{GatewayRefusal, Protocol};
use super::respond;
use crate::planes::Path;
use crate::request_context::RequestContext;
use crate::state::AppState;

/// The first listed model's creation time as Anthropic writes it: the catalog keeps no
/// dates, so every model says the Unix epoch (OpenAI's `created` is 0 likewise).
const CREATED_AT: &str = "1970-01-01T00:00:00Z";

/// Anthropic's default and largest page.
const ANTHROPIC_DEFAULT_LIMIT: usize = 20;
const ANTHROPIC_MAX_LIMIT: usize = 1000;

/// The catalog's models that the caller's key may call in `protocol`, in catalog order.
fn callable_models<'a>(
    state: &'a AppState,
    authorized: &'a Authorized,
    context: &'a RequestContext,
    headers: &'a HeaderMap,
    protocol: Protocol,
) -> impl Iterator<Item = &'a CatalogModel> + 'a {
    state
        .shared
        .catalog
        .iter()
        .filter(move |model| state.shared.upstreams.serves_in(&model.name, protocol))
        .filter(move |model| authorize_target(state, authorized, context, headers.into(), CallTarget::Model(&model.name)).is_ok())
}

/// Authenticates the key and checks its address and workspace, as for any call.
fn authorize_listing(
    state: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    protocol: Protocol,
) -> Result<Authorized, GatewayRefusal> {
    let authorized = authenticate_request(state, protocol, headers.into(), context)?;
    authorize_target(state, &authorized, context, headers.into(), CallTarget::Nothing)?;
    Ok(authorized)
}

fn not_found(model_id: &str) -> GatewayRefusal {
    GatewayRefusal::ModelNotListed(format!("The model '{}' does not exist or this API key may not call it.", shown_model_id(model_id)))
}

/// A model id as repeated in an error: at most 100 characters, so that nothing long a
/// client sent comes back whole, and never a key pasted into the path.
fn shown_model_id(model_id: &str) -> String {
    keygate_core::keys::shown_input(model_id, 100)
}

fn openai_model(model: &CatalogModel) -> Value {
    json!({"id": model.name, "object": "model", "created": 0, "owned_by": owner(model)})
}

fn anthropic_model(model: &CatalogModel) -> Value {
    json!({"type": "model", "id": model.name, "display_name": model.display_name, "created_at": CREATED_AT})
}

fn owner(model: &CatalogModel) -> &'static str {
    if model.demo {
        "keygate-demo"
    } else {
        "keygate"
    }
}

/// `GET /compatible-mode/v1/models`: only the models this key may call, served in this
/// protocol.
pub(super) async fn openai_models(State(state): State<AppState>, context: RequestContext, headers: HeaderMap) -> Response {
    let result = authorize_listing(&state, &context, &headers, Protocol::OpenAi).map(|authorized| {
        let callable: Vec<Value> = callable_models(&state, &authorized, &context, &headers, Protocol::OpenAi).map(openai_model).collect();
        Json(json!({"object": "list", "data": callable})).into_response()
    });
    respond(&state, Protocol::OpenAi, &context, result)
}

/// `GET /compatible-mode/v1/models/{id}`: the model, when this key may call it here.
pub(super) async fn openai_model_by_id(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    Path(model_id): Path<String>,
) -> Response {
    let result = authorize_listing(&state, &context, &headers, Protocol::OpenAi).and_then(|authorized| {
        let found = callable_models(&state, &authorized, &context, &headers, Protocol::OpenAi).find(|model| model.name == model_id);
        found.map(|model| Json(openai_model(model)).into_response()).ok_or_else(|| not_found(&model_id))
    });
    respond(&state, Protocol::OpenAi, &context, result)
}

/// Anthropic's paging of a list: at most `limit` items after `after_id` or before
/// `before_id` (ids that are not listed start from the beginning or the end).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AnthropicPage {
    limit: usize,
    after_id: Option<String>,
    before_id: Option<String>,
}

fn read_anthropic_page(query: Option<&str>) -> Result<AnthropicPage, GatewayRefusal> {
    let mut page = AnthropicPage { limit: ANTHROPIC_DEFAULT_LIMIT, after_id: None, before_id: None };
    let pairs = query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()).map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    for (name, raw_value) in pairs {
        let value = percent_encoding::percent_decode_str(&raw_value.replace('+', " ")).decode_utf8_lossy().into_owned();
        match name {
            "limit" => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=ANTHROPIC_MAX_LIMIT).contains(limit))
                    .ok_or_else(|| GatewayRefusal::BadRequest(format!("limit must be from 1 to {ANTHROPIC_MAX_LIMIT}.")))?;
            }
            "after_id" => page.after_id = Some(value),
            "before_id" => page.before_id = Some(value),
            _ => {}
        }
    }
    if page.after_id.is_some() && page.before_id.is_some() {
        return Err(GatewayRefusal::BadRequest("after_id and before_id cannot be given together.".into()));
    }
    Ok(page)
}

/// The page of `models` that `page` asks for, and whether more are beyond it (in the
/// direction of the paging).
fn page_of<'a>(models: &'a [&'a CatalogModel], page: &AnthropicPage) -> (&'a [&'a CatalogModel], bool) {
    let position = |id: &str| models.iter().position(|model| model.name == id);
    if let Some(before) = page.before_id.as_deref() {
        let end = position(before).unwrap_or(models.len());
        let start = end.saturating_sub(page.limit);
        return (&models[start..end], start > 0);
    }
    let start = page.after_id.as_deref().and_then(position).map_or(0, |index| index + 1);
    let end = (start + page.limit).min(models.len());
    (&models[start..end], end < models.len())
}

/// `GET /apps/anthropic/v1/models`: the models this key may call in the Anthropic
/// protocol, paged as Anthropic pages them.
pub(super) async fn anthropic_models(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = authorize_listing(&state, &context, &headers, Protocol::Anthropic).and_then(|authorized| {
        let page = read_anthropic_page(query.as_deref())?;
        let models: Vec<&CatalogModel> = callable_models(&state, &authorized, &context, &headers, Protocol::Anthropic).collect();
        let (listed, has_more) = page_of(&models, &page);
        let data: Vec<Value> = listed.iter().map(|model| anthropic_model(model)).collect();
        Ok(Json(json!({
            "data": data,
            "has_more": has_more,
            "first_id": listed.first().map(|model| model.name.as_str()),
            "last_id": listed.last().map(|model| model.name.as_str()),
        }))
        .into_response())
    });
    respond(&state, Protocol::Anthropic, &context, result)
}

/// `GET /apps/anthropic/v1/models/{id}`: the model, when this key may call it here.
pub(super) async fn anthropic_model_by_id(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    Path(model_id): Path<String>,
) -> Response {
    let result = authorize_listing(&state, &context, &headers, Protocol::Anthropic).and_then(|authorized| {
        let found = callable_models(&state, &authorized, &context, &headers, Protocol::Anthropic).find(|model| model.name == model_id);
        found.map(|model| Json(anthropic_model(model)).into_response()).ok_or_else(|| not_found(&model_id))
    });
    respond(&state, Protocol::Anthropic, &context, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(names: &[&str]) -> Vec<CatalogModel> {
        names
            .iter()
            .map(|name| CatalogModel { name: name.to_string(), display_name: name.to_string(), demo: true, default_limit: None })
            .collect()
    }

    fn names(listed: &[&CatalogModel]) -> Vec<String> {
        listed.iter().map(|model| model.name.clone()).collect()
    }

    #[test]
    fn anthropic_pages_go_forward_after_an_id_and_back_before_one() {
        let owned = models(&["a", "b", "c", "d", "e"]);
        let all: Vec<&CatalogModel> = owned.iter().collect();
        let page = |query: &str| read_anthropic_page(Some(query)).unwrap();
        let (listed, more) = page_of(&all, &page("limit=2"));
        assert_eq!((names(listed), more), (vec!["a".into(), "b".into()], true));
        let (listed, more) = page_of(&all, &page("limit=2&after_id=c"));
        assert_eq!((names(listed), more), (vec!["d".into(), "e".into()], false));
        let (listed, more) = page_of(&all, &page("limit=2&before_id=c"));
        assert_eq!((names(listed), more), (vec!["a".into(), "b".into()], false));
        let (listed, more) = page_of(&all, &page("before_id=e&limit=1"));
        assert_eq!((names(listed), more), (vec!["d".into()], true));
        assert!(read_anthropic_page(Some("limit=0")).is_err());
        assert!(read_anthropic_page(Some("limit=1001")).is_err());
        assert!(read_anthropic_page(Some("after_id=a&before_id=b")).is_err());
    }

    #[test]
    fn a_key_pasted_as_a_model_id_is_not_repeated() {
        assert!(!shown_model_id("sk-abc").contains("sk-abc"));
        assert_eq!(shown_model_id(&"m".repeat(300)).len(), 100);
    }
}
