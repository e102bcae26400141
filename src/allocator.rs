//! What the binary asks of its allocator besides allocating: to give back to the operating
//! system, once the keys are loaded, the pages the load used and freed.
//!
//! Loading a million keys builds rows and batches that are freed as the registry fills;
//! jemalloc keeps freed pages for about ten seconds before it returns them, so a node that
//! had just started sat at 266 to 305 MiB resident for the same registry, depending on when
//! it was measured (docs/PERFORMANCE.md, "A million keys again"). Purging every arena once,
//! right after the load, makes the resident size the registry's from the first request on.
//!
//! And its options ([`OPTIONS`]): each thread's cache keeps at least 128 freed objects of a
//! small size class, where jemalloc kept as few as 20 of the larger ones. A connection
//! thread has many calls in flight (32 each in the benchmark against nginx), and each
//! holds a model call's future of about 2.6 KB: with 20 slots, the thread's frees overflowed
//! the cache and its next allocations refilled it, both through the arena's lock, about 3%
//! of the thread's user time (docs/PERFORMANCE.md, "A clock read per turn of a connection
//! thread").
//!
//! The only unsafe code in the workspace is here: jemalloc's control interface is a C call,
//! and its options a C symbol.
#![allow(unsafe_code)]

/// jemalloc's options: each thread's cache keeps at least 128 freed objects of each small
/// size class (the most it keeps is 200, for the smallest classes).
#[cfg(feature = "jemalloc")]
const OPTIONS: &[u8] = b"tcache_nslots_small_min:128\0";

/// jemalloc's options, which it reads when it starts (its `malloc_conf`, under the prefix
/// tikv-jemalloc-sys builds it with): a pointer to a NUL-terminated string. The
/// environment's `_RJEM_MALLOC_CONF`, read after it, can still change them.
#[cfg(feature = "jemalloc")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &u8 = &OPTIONS[0];

/// Returns the allocator's freed pages to the operating system (jemalloc's
/// `arena.<all>.purge`). Nothing to do for the other allocators: glibc's and mimalloc's
/// builds do not ask.
pub fn release_freed_memory() {
    #[cfg(feature = "jemalloc")]
    {
        // 4096 is MALLCTL_ARENAS_ALL: every arena.
        const PURGE_EVERY_ARENA: &[u8] = b"arena.4096.purge\0";
        // SAFETY: the name is NUL-terminated, and this control reads and writes no value,
        // so every pointer is null and the length zero.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_EVERY_ARENA.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        // A failure leaves the pages where they were, which costs memory, not correctness.
        if status != 0 {
            tracing::debug!(status, "jemalloc did not purge its arenas");
        }
    }
}

#[cfg(all(test, feature = "jemalloc", target_os = "linux"))]
mod tests {
    use super::*;

    /// VmRSS of this process, in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// jemalloc read the binary's options (the symbol was linked in and parsed).
    #[test]
    fn the_thread_caches_keep_the_slots_the_binary_asks_for() {
        let _ = JEMALLOC_OPTIONS;
        let mut slots: u32 = 0;
        let mut length = std::mem::size_of::<u32>();
        // SAFETY: the name is NUL-terminated, and the option is an `unsigned` read into a
        // `u32` whose size is passed.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.tcache_nslots_small_min".as_ptr(),
                (&raw mut slots).cast(),
                &raw mut length,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, 0);
        let asked = std::str::from_utf8(OPTIONS).unwrap().trim_end_matches('\0').rsplit(':').next().unwrap();
        assert_eq!(slots.to_string(), asked);
    }

    #[test]
    fn freed_pages_go_back_to_the_system_when_asked() {
        // 64 MiB in 1 MiB blocks, every page written, then freed: jemalloc keeps them.
        let blocks: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
        let with_blocks = resident_kib();
        drop(blocks);
        let freed = resident_kib();
        release_freed_memory();
        let released = resident_kib();
        // jemalloc may give some back when they are freed; after the purge, nearly all of
        // the 64 MiB are gone whatever it did at the free.
        assert!(
            with_blocks.saturating_sub(released) >= 48 * 1024,
            "resident {with_blocks} KiB with the blocks, {freed} KiB after freeing them, {released} KiB after the purge"
        );
    }
}
