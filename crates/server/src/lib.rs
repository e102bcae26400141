//! keygate's HTTP layer: the Model Studio-compatible management API (`/modelstudio/...`),
//! keygate's own JSON API (`/keygate/v1/...`), health endpoints, and the server that binds
//! one listener per region.
//!
//! Only this crate knows JSON and HTTP shapes; the rules come from `keygate-core` and the
//! data from `keygate-store`.

pub mod app;
pub mod bootstrap;
pub mod management;
pub mod request_context;
pub mod secrets;
pub mod settings;
pub mod state;

pub use app::{router, Server};
pub use settings::Settings;
pub use state::AppState;
