//! Property and volume tests of the core's key formats (one test binary).

mod key_formats;
