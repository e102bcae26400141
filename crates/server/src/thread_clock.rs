//! The time as a connection thread last read it, for the steps of a call that need only a
//! coarse time: a connection's phase deadlines (seconds), the upstream pool's idle ages
//! (seconds), an upstream's first-byte deadline (seconds), the `Date` header (a second).
//!
//! Why: a forwarded call read the clock about ten times, and a read costs about as much as
//! a header lookup (docs/PERFORMANCE.md, "A clock read per turn of a connection thread").
//! nginx reads its clock once per turn of its event loop and every request of that turn
//! uses the time it read; a connection runtime does the same here: its thread reads the
//! clock when it wakes from waiting for work (the runtime's unpark hook) and every
//! [`TICK`] while it works (a task of the runtime's, [`keep_the_time`]), and the calls it
//! serves take the time from there. The time is never ahead, and behind by at most a
//! `TICK` while the runtime turns; a deadline made from it comes at most that much early.
//!
//! What must be exact reads the clock itself: a key's expiry and the limits' windows
//! (`crate::clock`), the verification histogram, a log line's durations. So does every
//! thread that does not keep the time (the main runtime's workers, tests): there [`now`]
//! is `tokio::time::Instant::now()`, paused time included.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

/// How often a working connection thread reads the clock: the most its time can lag.
pub const TICK: Duration = Duration::from_millis(50);

thread_local! {
    /// The time this thread last read, and the Unix second then; `None` on a thread that
    /// does not keep the time.
    static LAST_READ: Cell<Option<(Instant, i64)>> = const { Cell::new(None) };
}

/// Reads the clock for this thread's calls to use until the next read; from then on,
/// this thread keeps the time (see [`keep_the_time`]).
pub fn read_now() {
    LAST_READ.with(|last| last.set(Some((Instant::now(), system_unix_seconds()))));
}

/// The time: this thread's last read when it keeps the time, else the clock's.
pub fn now() -> Instant {
    LAST_READ.with(Cell::get).map_or_else(Instant::now, |(instant, _)| instant)
}

/// The current Unix second (for the `Date` header): as of this thread's last read when it
/// keeps the time, else the system clock's.
pub fn unix_seconds() -> i64 {
    LAST_READ.with(Cell::get).map_or_else(system_unix_seconds, |(_, seconds)| seconds)
}

/// The system clock's Unix second, as `crate::clock` reads the system time.
fn system_unix_seconds() -> i64 {
    crate::clock::now_millis().div_euclid(1000)
}

/// Keeps this thread's time: reads the clock now and every [`TICK`], for as long as the
/// runtime it runs on turns. Spawned once on each connection runtime, whose unpark hook
/// ([`read_now`]) reads the clock after each wait for work.
pub async fn keep_the_time() {
    let mut ticks = tokio::time::interval(TICK);
    // A runtime held up longer than a tick reads the clock once when it is free again,
    // not once per missed tick.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        read_now();
    }
}

/// Stops keeping the time on this thread (the next reads are the clock's own).
pub fn stop_keeping_the_time() {
    LAST_READ.with(|last| last.set(None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_keeps_the_time_answers_its_last_read_until_it_reads_again() {
        std::thread::spawn(|| {
            // Not kept: each answer is the clock's.
            let before = now();
            std::thread::sleep(Duration::from_millis(5));
            assert!(now() > before, "a thread that does not keep the time reads the clock");

            read_now();
            let kept = now();
            let second = unix_seconds();
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(now(), kept, "no clock read between two of the thread's reads");
            assert_eq!(unix_seconds(), second);

            read_now();
            assert!(now() > kept, "the next read moves it on");
            stop_keeping_the_time();
            let after_stop = now();
            std::thread::sleep(Duration::from_millis(5));
            assert!(now() > after_stop, "once stopped, the clock's own again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_working_runtime_moves_its_time_on_without_waiting_for_work() {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                tokio::spawn(keep_the_time());
                tokio::task::yield_now().await;
                let first = now();
                // Busy (yielding to the runtime, never waiting for work) for several ticks.
                let started = std::time::Instant::now();
                while started.elapsed() < TICK * 4 {
                    tokio::task::yield_now().await;
                }
                assert!(now() > first, "the time stood still while the runtime worked");
                let unix = system_unix_seconds();
                assert!((unix - unix_seconds()).abs() <= 1, "the Unix second is the system's");
            });
            stop_keeping_the_time();
        })
        .join()
        .unwrap();
    }
}
