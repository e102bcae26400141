//! keygate's domain, with no IO and no async: key formats and digests, regions as data,
//! IP allowlists, identifiers, roles and who may do what, the compiled verification state
//! of a key and the authorization decision, and the ACS3-HMAC-SHA256 signature rules.
//!
//! Everything here is pure so that the store, the HTTP layer and the CLI agree on one
//! definition of each rule, and so that every rule can be tested without a database.

pub mod access;
pub mod acs3;
pub mod base62;
pub mod catalog;
pub mod civil_time;
pub mod client_address;
pub mod ids;
pub mod ip_allowlist;
pub mod key_expiry;
pub mod key_import;
pub mod key_limits;
pub mod keys;
pub mod leak_scan;
pub mod limits;
pub mod permissions;
pub mod random;
pub mod region;
pub mod temporary_keys;
pub mod usage;
pub mod verification;
