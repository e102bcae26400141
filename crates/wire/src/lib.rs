//! keygate's wire formats, shared by the server and the CLI: how what a client sends is
//! read before any rule is applied to it (no IO; every parser here takes outside input
//! and is fuzzed, `fuzz/`), and the typed bodies of the management APIs, which the server
//! writes and the CLI reads (`keygate_api`, `model_studio_client`).

pub mod form;
pub mod forwarding_path;
pub mod json_errors;
pub mod keygate_api;
pub mod model_call_body;
pub mod model_studio_client;
pub mod temporary_keys;
