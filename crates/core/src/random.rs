//! The OS random source, the only source of entropy for keys, secrets and ids.

/// Fills `buffer` from the operating system's random source.
///
/// # Panics
/// When the OS refuses to give randomness: keygate must never fall back to a weaker source.
pub fn fill_random(buffer: &mut [u8]) {
    getrandom::getrandom(buffer).expect("the OS random source must be available");
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub fn random_string_from(alphabet: &[u8], length: usize) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    // Largest multiple of the alphabet size that fits in a byte: bytes above it are redrawn.
    let limit = 256 - (256 % alphabet.len());
    let mut output = String::with_capacity(length);
    let mut pool = [0u8; 64];
    while output.len() < length {
        fill_random(&mut pool);
        for &byte in &pool {
            if (byte as usize) < limit {
                output.push(alphabet[byte as usize % alphabet.len()] as char);
                if output.len() == length {
                    break;
                }
            }
        }
    }
    output
}

/// 32 random bytes, for master keys and session tokens.
pub fn random_bytes_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    bytes
}
