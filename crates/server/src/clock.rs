//! The one clock: system time plus an offset that tests may advance, so that expiry
//! (temporary keys, sessions, throttling windows, the change feed's staleness) is tested
//! without sleeping. Nothing else in keygate reads the system time: the store takes the
//! time of a change from its audit context, or `now` from its caller.

use std::sync::atomic::{AtomicI64, Ordering};

/// The system's wall clock in Unix milliseconds: what a [`Clock`] adds its offset to, and
/// what a client without one (the tests' HTTP client signing its requests) reads.
pub fn now_millis() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Default)]
pub struct Clock {
    offset_milliseconds: AtomicI64,
}

impl Clock {
    /// Unix milliseconds.
    pub fn now_milliseconds(&self) -> i64 {
        now_millis() + self.offset_milliseconds.load(Ordering::Relaxed)
    }

    /// Unix seconds.
    pub fn now_seconds(&self) -> i64 {
        self.now_milliseconds().div_euclid(1000)
    }

    /// Moves the clock forward (tests only need this; production never calls it).
    pub fn advance_seconds(&self, seconds: i64) {
        self.offset_milliseconds.fetch_add(seconds * 1000, Ordering::Relaxed);
    }
}
