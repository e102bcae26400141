//! A key's expiry and a reset's grace period (docs/CONTRACT.md#expiry-and-grace-periods):
//! the expiry as a client writes it, the bounds of a grace period, and the lifetime of a
//! temporary key minted from a key that does not live for ever.

use crate::civil_time::parse_rfc3339;

/// The longest grace period of a reset, in seconds (a day).
pub const MAX_GRACE_SECONDS: u32 = 86_400;

/// The latest expiry a key may have: the end of the year 9999, in Unix seconds. A larger
/// number is more likely milliseconds sent for seconds than a date.
pub const LATEST_EXPIRY: i64 = 253_402_300_799;

/// An expiry as sent: a time, or none (the key never expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryInput {
    /// Unix seconds.
    At(i64),
    Never,
}

/// Why an expiry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("must be an RFC 3339 time (2027-01-31T00:00:00Z), Unix seconds, or never")]
    Malformed,
    #[error("must be a time in the future")]
    InThePast,
}

/// Reads an expiry: an RFC 3339 time, Unix seconds, or `never` (any case), and refuses a
/// time that is not after `now` (Unix seconds).
pub fn parse_expiry(text: &str, now: i64) -> Result<ExpiryInput, ExpiryError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(ExpiryInput::Never);
    }
    let at = if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse::<i64>().ok().filter(|seconds| *seconds <= LATEST_EXPIRY).ok_or(ExpiryError::Malformed)?
    } else {
        parse_rfc3339(text).filter(|seconds| *seconds <= LATEST_EXPIRY).ok_or(ExpiryError::Malformed)?
    };
    if at <= now {
        return Err(ExpiryError::InThePast);
    }
    Ok(ExpiryInput::At(at))
}

/// A grace period in seconds, 0 to [`MAX_GRACE_SECONDS`]; 0 is none.
pub fn checked_grace_seconds(seconds: u64) -> Option<u32> {
    u32::try_from(seconds).ok().filter(|seconds| *seconds <= MAX_GRACE_SECONDS)
}

/// When a temporary key minted at `now` for `lifetime` seconds expires: never after the
/// secret it was minted from stops working (`works_until`, Unix seconds).
pub fn temporary_key_expiry(now: i64, lifetime: i64, works_until: i64) -> i64 {
    now.saturating_add(lifetime).min(works_until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_a_future_time_in_rfc_3339_or_unix_seconds_or_never() {
        let now = 1_800_000_000;
        assert_eq!(parse_expiry("2027-01-15T08:00:00Z", now - 1), Ok(ExpiryInput::At(1_800_000_000)));
        assert_eq!(parse_expiry("2027-01-15T16:00:00+08:00", now - 1), Ok(ExpiryInput::At(1_800_000_000)));
        assert_eq!(parse_expiry(" 1800000001 ", now), Ok(ExpiryInput::At(1_800_000_001)));
        assert_eq!(parse_expiry("NEVER", now), Ok(ExpiryInput::Never));
        assert_eq!(parse_expiry("1800000000", now), Err(ExpiryError::InThePast));
        assert_eq!(parse_expiry("2027-01-15T08:00:00Z", now), Err(ExpiryError::InThePast));
        for malformed in ["", "tomorrow", "1800000000000", "2027-01-15", "-5", "2027-02-30T00:00:00Z"] {
            assert_eq!(parse_expiry(malformed, now), Err(ExpiryError::Malformed), "{malformed}");
        }
    }

    #[test]
    fn grace_periods_and_temporary_keys_are_bounded() {
        assert_eq!(checked_grace_seconds(0), Some(0));
        assert_eq!(checked_grace_seconds(86_400), Some(86_400));
        assert_eq!(checked_grace_seconds(86_401), None);
        assert_eq!(temporary_key_expiry(1_000, 60, i64::MAX), 1_060);
        assert_eq!(temporary_key_expiry(1_000, 60, 1_030), 1_030);
    }
}
