//! Integration tests of keygate's HTTP layer: one binary, each test with its own data
//! directory and random ports (see `helpers::spawn_app`).

mod bad_input;
mod expectations;
#[macro_use]
mod helpers;
mod keygate_api;
mod rules;
mod signatures;
mod verification;
mod visibility_matrix;
mod postgres_nodes;
