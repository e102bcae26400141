//! The token counts of a provider's `usage` object (`keygate_wire::provider_usage`): the
//! small reader the gateway tries first, against serde_json's reading of the same bytes.
//!
//! Invariants:
//! - whenever the small reader answers (is not unsure), its answer is serde_json's: the same
//!   fields, or nothing where serde_json reads no usage object;
//! - the reader the gateway uses (the small one, serde_json when it is unsure) always
//!   answers what serde_json answers;
//! - the same holds with the input wrapped as a provider writes it (`{"usage":` before it),
//!   read from where its value starts.

#![no_main]

use keygate_wire::provider_usage::{read_plain_usage_object, read_usage_object, read_usage_object_with_serde, PlainRead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    let wrapped = [b"{\"usage\": ".as_slice(), data].concat();
    check(&wrapped[9..]);
});

fn check(value: &[u8]) {
    let reference = read_usage_object_with_serde(value);
    if let PlainRead::Read(read) = read_plain_usage_object(value) {
        assert_eq!(read, reference, "the small reader disagrees with serde_json on {:?}", String::from_utf8_lossy(value));
    }
    assert_eq!(read_usage_object(value), reference);
}
