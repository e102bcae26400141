//! The server's clock: system time plus an offset that tests may advance, so that expiry
//! (temporary keys, throttling windows) is tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct Clock {
    offset_milliseconds: AtomicI64,
}

impl Clock {
    /// Unix milliseconds.
    pub fn now_milliseconds(&self) -> i64 {
        keygate_store::now_millis() + self.offset_milliseconds.load(Ordering::Relaxed)
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
