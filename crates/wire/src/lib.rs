//! keygate's wire formats, shared by the server and the CLI: how what a client sends is
//! read before any rule is applied to it. No IO; every parser here takes outside input
//! and is fuzzed (`fuzz/`).

pub mod form;
pub mod forwarding_path;
pub mod json_errors;
pub mod model_call_body;
