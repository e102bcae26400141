//! The bodies of keygate's own API (`/keygate/v1/...`): one type per request body and per
//! response body, used by the server to write them and by the CLI to read them, and
//! described by the API's OpenAPI document (their `schemars` schemas). A response type
//! holds an operation's own fields; the envelope around them ([`crate::envelope`],
//! docs/CONTRACT.md#management-errors) is the same for every route.
//!
//! Names and the difference between `null` and an absent field are part of the wire: a
//! field that is always sent is a plain or `Option` field (None is `null`); a field that
//! is sometimes left out says `skip_serializing_if`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod access_keys;
pub mod audit;
pub mod catalog;
pub mod key_import;
pub mod keys;
pub mod leaks;
pub mod sessions;
pub mod usage;
pub mod users;
pub mod workspaces;

pub use access_keys::*;
pub use audit::*;
pub use catalog::*;
pub use key_import::*;
pub use keys::*;
pub use leaks::*;
pub use sessions::*;
pub use usage::*;
pub use users::*;
pub use workspaces::*;

/// The answer of a deletion (of a RAM user or an AccessKey): `{"deleted": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub deleted: bool,
}
