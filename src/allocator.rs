//! What the binary asks of its allocator besides allocating: to give back to the operating
//! system, once the keys are loaded, the pages the load used and freed.
//!
//! Loading a million keys builds rows and batches that are freed as the registry fills;
//! jemalloc keeps freed pages for about ten seconds before it returns them, so a node that
//! had just started sat at 266 to 305 MiB resident for the same registry, depending on when
//! it was measured (docs/PERFORMANCE.md, "A million keys again"). Purging every arena once,
//! right after the load, makes the resident size the registry's from the first request on.
//! The only unsafe code in the workspace is here: jemalloc's control interface is a C call.
#![allow(unsafe_code)]

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
