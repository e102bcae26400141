//! The OpenAPI document of keygate's own API, served at `/keygate/v1/openapi.json`.

use axum::Json;
use serde_json::Value;

/// The document, kept as a JSON file next to the code it describes.
pub const OPENAPI_DOCUMENT: &str = include_str!("keygate_api.openapi.json");

pub async fn openapi_document() -> Json<Value> {
    Json(serde_json::from_str(OPENAPI_DOCUMENT).unwrap_or(Value::Null))
}
