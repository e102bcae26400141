//! Integration tests of keygate's HTTP layer: one binary, each test with its own data
//! directory and random ports (see `helpers::spawn_app`).

mod helpers;
mod signatures;
