//! keygate's wire formats, shared by the server and the CLI: how what a client sends is
//! read before any rule is applied to it (and the usage a provider reports), and the typed
//! requests and answers of the management APIs. No IO; every parser here takes outside
//! input and is fuzzed (`fuzz/`); every request and answer type derives serde's traits and
//! `schemars::JsonSchema`, so that one type says what goes on the wire and what its schema
//! is.

pub mod data_plane;
pub mod envelope;
pub mod form;
pub mod forwarding_path;
pub mod json_errors;
pub mod keygate_api;
pub mod model_call_body;
pub mod model_studio;
pub mod provider_usage;
pub mod token_plan;
