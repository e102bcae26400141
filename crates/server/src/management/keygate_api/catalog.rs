//! What this deployment offers: the model catalog and the regions it knows, with each
//! region's policy and whether a listener serves it.

use axum::extract::State;
use axum::response::Response;
use keygate_core::region::{LimitScope, RegionPolicy};
use serde_json::{json, Value};

use super::{respond, Result};
use crate::management::authentication::Authenticated;
use crate::state::AppState;

pub(super) async fn list_models(State(state): State<AppState>, auth: Authenticated) -> Result<Response> {
    let models: Vec<Value> =
        state.shared.catalog.iter().map(|model| json!({"model": model.name, "name": model.display_name, "demo": model.demo})).collect();
    respond(&auth, Ok(json!({"models": models})))
}

fn region_json(policy: &RegionPolicy, served: bool) -> Value {
    json!({
        "regionId": policy.id.as_str(),
        "name": policy.name,
        "keyLimit": policy.key_limit,
        "limitScope": match policy.limit_scope {
            LimitScope::Account => "account",
            LimitScope::Creator => "creator",
        },
        "customPermissions": policy.custom_permissions,
        "disableAndReset": policy.disable_and_reset,
        "newKeyFormat": policy.new_key_format.as_str(),
        "workspaceLimit": policy.workspace_limit,
        "served": served,
    })
}

pub(super) async fn list_regions(State(state): State<AppState>, auth: Authenticated) -> Result<Response> {
    let served_regions = &state.shared.served_regions;
    let regions: Vec<Value> = state
        .shared
        .settings
        .regions
        .iter()
        .map(|policy| region_json(policy, served_regions.iter().any(|served| served == policy.id.as_str())))
        .collect();
    respond(&auth, Ok(json!({"regions": regions})))
}
