//! Integration tests of keygate's HTTP layer: one binary, each test with its own data
//! directory and random ports (see `helpers::spawn_app`).

// First: its macros (`on_both_stores!`) are visible only to the modules after it.
#[macro_use]
mod helpers;

mod audit_credentials;
mod auth_verify;
mod bad_input;
mod billing;
mod connection_limits;
mod connection_runtimes;
mod console;
mod console_audit_filters;
mod console_grants;
mod console_how_to_call;
mod console_key_search;
mod console_languages;
mod console_limits;
mod console_usage;
mod expectations;
mod gateway_calls;
mod gateway_errors;
mod gateway_forwarding;
mod gateway_revocation;
mod gateway_scope;
mod gateway_temporary_keys;
mod gateway_traversal;
mod internal_errors;
mod key_expiry;
mod key_import;
mod key_limits;
mod key_roles;
mod keygate_api;
mod leaks;
mod limits_across_nodes;
mod log_capture;
mod login_throttling;
mod metrics;
mod metrics_access;
mod model_calls_in_front;
mod model_catalog;
mod model_limits;
mod no_plaintext_in_errors;
mod openapi_answers;
mod password_change;
mod plan_keys;
mod postgres_nodes;
mod redis_limit_counter;
mod refusal_envelopes;
mod repeated_model;
mod rules;
mod signatures;
mod tls_listeners;
mod token_usage;
mod upstream_connections;
mod upstream_failover;
mod usage_api;
mod visibility_matrix;
