//! The operations layer: what the management surfaces do to keys, users, workspaces,
//! AccessKeys and sessions, written once.

pub mod keys;
