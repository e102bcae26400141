//! `POST /keygate/v1/keys/{apiKeyId}/end-grace`: the old secret of a key reset with a grace
//! period stops working now (docs/CONTRACT.md#expiry-and-grace-periods;
//! [`crate::operations::keys::end_key_grace`] has the rules).

use keygate_wire::keygate_api::EndGraceResponse;

use crate::management::call::{Answer, Call};
use crate::operations::keys::{end_key_grace, parse_key_id};
use crate::planes::Path;

pub(super) async fn end_grace(call: Call, Path(api_key_id): Path<String>) -> Answer<EndGraceResponse> {
    let key_id = parse_key_id(&api_key_id)?;
    let record = end_key_grace(call.operations(), &call.actor(), key_id).await?;
    call.answer(EndGraceResponse { api_key_id: record.api_key_id, masked_key: record.masked_key })
}
