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

#[derive(Debug)]
pub struct Clock {
    offset_milliseconds: AtomicI64,
    /// When not [`NOT_FROZEN`], the system time the clock reads instead of the real one: a
    /// test that asserts a window's seconds left freezes it, so that a second cannot tick
    /// between two of its calls.
    frozen_system_milliseconds: AtomicI64,
}

const NOT_FROZEN: i64 = i64::MIN;

impl Default for Clock {
    fn default() -> Clock {
        Clock { offset_milliseconds: AtomicI64::new(0), frozen_system_milliseconds: AtomicI64::new(NOT_FROZEN) }
    }
}

impl Clock {
    /// Unix milliseconds.
    pub fn now_milliseconds(&self) -> i64 {
        let frozen = self.frozen_system_milliseconds.load(Ordering::Relaxed);
        let system = if frozen == NOT_FROZEN { now_millis() } else { frozen };
        system + self.offset_milliseconds.load(Ordering::Relaxed)
    }

    /// Stops the clock at its present time; [`Clock::advance_seconds`] still moves it (tests
    /// only).
    pub fn freeze(&self) {
        self.frozen_system_milliseconds.store(now_millis(), Ordering::Relaxed);
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
