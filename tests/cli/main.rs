//! End-to-end tests of the `keygate` binary: a real `keygate serve` process on a random
//! port with its own data directory, driven by the client commands as a user would. And
//! `tidy`: the repository's own checks, which need no binary.

mod admin;
mod audit;
mod canary;
mod config_check;
mod env_doctor;
mod env_setup;
mod file_modes;
mod harness;
mod import;
mod install;
mod json_logs;
mod key_expiry;
mod key_limits;
mod management;
mod multinode;
mod password;
mod scan;
mod scenario;
mod tidy;
mod token;
mod usage;
