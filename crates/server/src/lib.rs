//! keygate's HTTP layer: the gateway (native, OpenAI- and Anthropic-compatible model calls,
//! temporary keys, `/auth/verify`), the Model Studio-compatible management API
//! (`/modelstudio/...`), keygate's own JSON API (`/keygate/v1/...`), the web console
//! (`/console`), health endpoints, and the server that binds one listener per region.
//!
//! Only this crate knows JSON and HTML shapes; the rules come from `keygate-core` and the
//! data from `keygate-store`.

pub mod app;
pub mod bootstrap;
pub mod clock;
pub mod connection_front;
pub mod connection_runtimes;
pub mod connections;
pub mod console;
pub mod gateway;
pub mod key_budgets;
pub mod limiter;
pub mod logging;
pub mod management;
pub mod metrics;
pub mod metrics_registry;
pub mod operations;
pub mod planes;
pub mod provider_objects;
pub mod request_body;
pub mod request_context;
pub mod request_headers;
pub mod secrets;
pub mod settings;
pub mod state;
pub mod thread_clock;
pub mod thread_handles;
pub mod throttle;
pub mod tls;
pub mod upstream_client;
pub mod upstreams;
pub mod usage;

pub use app::{router, Server};
pub use settings::Settings;
pub use state::AppState;
