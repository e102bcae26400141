//! The paged lists of the Model Studio API (ListApiKeys, ListWorkspaces,
//! ListModelPermissions) read page by page, 100 items a page, into their `keygate_wire`
//! types (the server's, [`Paged`]); `Item` is the typed item for tables, or a JSON value to
//! print the items as the server sent them.

use keygate_wire::model_studio::Paged;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{Client, RequestBody};

/// The items of one page or of every page, the list's total, and the first page's JSON as
/// the server sent it.
pub struct Pages<Item> {
    pub items: Vec<Item>,
    pub total_count: u64,
    pub first_page: Value,
}

/// Reads the first page of the list at `path`, or every page when `every_page`.
pub async fn fetch_pages<Listed: Paged + DeserializeOwned>(
    client: &Client,
    path: &[&str],
    query: &[(String, String)],
    every_page: bool,
) -> anyhow::Result<Pages<Listed::Item>> {
    let mut items = Vec::new();
    let mut first_page = None;
    let mut next_token = String::new();
    loop {
        let mut page_query = query.to_vec();
        page_query.push(("maxResults".into(), "100".into()));
        if !next_token.is_empty() {
            page_query.push(("nextToken".into(), next_token.clone()));
        }
        let answer = client.call::<Listed, _>(Method::GET, path, &page_query, RequestBody::None).await?;
        first_page.get_or_insert(answer.json);
        next_token = answer.body.page().next_token.clone();
        let total_count = answer.body.page().total_count;
        let page_items = answer.body.into_items();
        let last = page_items.is_empty() || next_token.is_empty() || !every_page;
        items.extend(page_items);
        if last {
            return Ok(Pages { items, total_count, first_page: first_page.unwrap_or(Value::Null) });
        }
    }
}
