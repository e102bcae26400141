//! Base62 (`0-9A-Za-z`), the alphabet of secure key bodies and their checksums.

pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// True when every byte is in the base62 alphabet.
pub fn is_base62(text: &str) -> bool {
    // Every key presented to the gateway passes here: a fold without early exit has no
    // data-dependent branch per byte and vectorises; a valid key is read whole anyway.
    text.bytes().fold(true, |all_valid, byte| all_valid & byte.is_ascii_alphanumeric())
}

/// Writes `value` in base62 into `digits`, left-padded with `0` to its whole length
/// (no allocation: used to check the checksum of every presented key).
pub fn encode_u64_into(mut value: u64, digits: &mut [u8]) {
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
}

/// `value` in base62, left-padded with `0` to exactly `width` characters.
pub fn encode_u64_fixed(value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    encode_u64_into(value, &mut digits);
    String::from_utf8(digits).expect("base62 is ASCII")
}

fn digit_value(byte: u8) -> Option<u64> {
    match byte {
        b'0'..=b'9' => Some(u64::from(byte - b'0')),
        b'A'..=b'Z' => Some(u64::from(byte - b'A') + 10),
        b'a'..=b'z' => Some(u64::from(byte - b'a') + 36),
        _ => None,
    }
}

/// Encodes arbitrary bytes (big-endian number) in base62; used for temporary tokens.
pub fn encode_bytes(bytes: &[u8]) -> String {
    // Leading zero bytes are kept as leading '0' characters so decoding restores length.
    let leading_zeros = bytes.iter().take_while(|&&byte| byte == 0).count();
    let mut number: Vec<u8> = bytes[leading_zeros..].to_vec();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        let mut quotient = Vec::with_capacity(number.len());
        for &byte in &number {
            let accumulator = (remainder << 8) | u32::from(byte);
            let digit = accumulator / 62;
            remainder = accumulator % 62;
            if !quotient.is_empty() || digit != 0 {
                quotient.push(digit as u8);
            }
        }
        digits.push(ALPHABET[remainder as usize]);
        number = quotient;
    }
    let mut text = "0".repeat(leading_zeros);
    text.extend(digits.iter().rev().map(|&byte| byte as char));
    text
}

/// Decodes what [`encode_bytes`] produced; `None` for a character outside the alphabet.
pub fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    let leading_zeros = text.bytes().take_while(|&byte| byte == b'0').count();
    let mut number: Vec<u8> = Vec::new();
    for byte in text.bytes().skip(leading_zeros) {
        let mut carry = u32::try_from(digit_value(byte)?).ok()?;
        for slot in number.iter_mut().rev() {
            let accumulator = u32::from(*slot) * 62 + carry;
            *slot = (accumulator & 0xff) as u8;
            carry = accumulator >> 8;
        }
        while carry > 0 {
            number.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut bytes = vec![0u8; leading_zeros];
    bytes.extend(number);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_encoding_pads_and_orders_digits() {
        assert_eq!(encode_u64_fixed(0, 6), "000000");
        assert_eq!(encode_u64_fixed(61, 6), "00000z");
        assert_eq!(encode_u64_fixed(62, 6), "000010");
        assert_eq!(encode_u64_fixed(u64::from(u32::MAX), 6), "4gfFC3");
        let mut digits = [0u8; 6];
        encode_u64_into(u64::from(u32::MAX), &mut digits);
        assert_eq!(&digits, b"4gfFC3");
    }

    #[test]
    fn base62_check_accepts_only_the_alphabet() {
        assert!(is_base62(std::str::from_utf8(ALPHABET).unwrap()));
        assert!(is_base62(""));
        for bad in ["ab-c", "ab c", "abc_", "é", "ab\0c"] {
            assert!(!is_base62(bad), "{bad:?}");
        }
    }

    #[test]
    fn bytes_round_trip_including_leading_zeros() {
        for sample in [vec![], vec![0], vec![0, 0, 1], vec![255; 40], vec![1, 2, 3, 0, 0]] {
            assert_eq!(decode_bytes(&encode_bytes(&sample)).unwrap(), sample);
        }
        assert_eq!(decode_bytes("ab-c"), None);
    }
}
