//! What this deployment offers: the model catalog and the regions it knows, with each
//! region's policy and whether a listener serves it.

use keygate_core::region::{LimitScope, RegionPolicy};
use keygate_wire::keygate_api::{ListModelsResponse, ListRegionsResponse, Model, Region};

use crate::management::call::{Answer, Call};

pub(super) async fn list_models(call: Call) -> Answer<ListModelsResponse> {
    let models = call
        .state
        .shared
        .catalog
        .iter()
        .map(|model| Model { model: model.name.to_string(), name: model.display_name.to_string(), demo: model.demo })
        .collect();
    call.answer(ListModelsResponse { models })
}

fn region(policy: &RegionPolicy, served: bool) -> Region {
    Region {
        region_id: policy.id.as_str().to_string(),
        name: policy.name.clone(),
        key_limit: policy.key_limit,
        limit_scope: match policy.limit_scope {
            LimitScope::Account => "account",
            LimitScope::Creator => "creator",
        }
        .to_string(),
        custom_permissions: policy.custom_permissions,
        disable_and_reset: policy.disable_and_reset,
        new_key_format: policy.new_key_format.as_str().to_string(),
        workspace_limit: policy.workspace_limit,
        served,
    }
}

pub(super) async fn list_regions(call: Call) -> Answer<ListRegionsResponse> {
    let served_regions = &call.state.shared.served_regions;
    let regions = call
        .state
        .shared
        .settings
        .regions
        .iter()
        .map(|policy| region(policy, served_regions.iter().any(|served| served == policy.id.as_str())))
        .collect();
    call.answer(ListRegionsResponse { regions })
}
