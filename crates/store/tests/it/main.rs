//! The store's behaviour, on SQLite and on PostgreSQL, through its public API only (one
//! test binary). `support` gives each test a database of its own; `on_both_databases!` runs
//! a test on each (the PostgreSQL half needs `KEYGATE_TEST_DATABASE_URL`).

// First: its macro (`on_both_databases!`) is visible only to the modules after it.
#[macro_use]
mod support;

mod access_keys;
mod api_keys;
mod audit;
mod change_feed;
mod compile;
mod key_expiry;
mod key_import;
mod postgres_plans;
mod quotas;
mod usage;
mod users;
mod verification;
mod workspaces;
