//! Per-thread handles on objects that every core's calls share: the deployment's state, a
//! key, its workspace's grants, an upstream.
//!
//! Why: a forwarded call keeps such objects until its answer has been relayed, and an
//! `Arc` clone and drop write the object's one reference count, a cache line that the other
//! cores' calls of the same key (or of any key, for the deployment's state) write too. Each
//! write by one core takes the line from the others: with these handles and the other
//! lines no longer passed between the cores, keygate spends about 5% less CPU per
//! forwarded call (docs/PERFORMANCE.md, "Cache lines the cores pass to each other"). A
//! [`ThreadHandle`] is an `Arc` of its own around one
//! clone of the shared `Arc`, made once per thread and object and kept in a small cache of
//! the thread's: cloning and dropping it writes only the handle's count, which only the
//! thread that made it writes while the cache holds it.
//!
//! What a handle keeps alive: the object it was made from, as long as the handle or the
//! cache holds it. The cache holds at most [`CACHED_PER_THREAD`] handles per thread, and a
//! newer one takes the place of the oldest: an object replaced (a key reset, revoked or
//! changed) may outlive its replacement by that long in memory, never in a decision, since
//! every call still looks its key up in the registry and takes a handle of what it found.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

/// How many objects a thread keeps handles on.
const CACHED_PER_THREAD: usize = 8;

/// A handle on a shared `T`: dereferences to it, and clones without writing the object's
/// own reference count.
#[derive(Debug)]
pub struct ThreadHandle<T>(Arc<ThreadsClone<T>>);

/// The one clone of the shared `Arc` that a thread's handles on an object share.
#[derive(Debug)]
struct ThreadsClone<T>(Arc<T>);

impl<T> Clone for ThreadHandle<T> {
    fn clone(&self) -> ThreadHandle<T> {
        ThreadHandle(self.0.clone())
    }
}

impl<T> std::ops::Deref for ThreadHandle<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0 .0
    }
}

/// One cached handle: the address of the object (which cannot be reused while the handle
/// holds the object) and the handle, typed when looked up.
type Cached = (usize, Arc<dyn Any + Send + Sync>);

thread_local! {
    static CACHE: RefCell<ThreadCache> = const { RefCell::new(ThreadCache { entries: Vec::new(), next: 0 }) };
}

struct ThreadCache {
    entries: Vec<Cached>,
    /// Where the next new handle goes once the cache is full (the oldest first).
    next: usize,
}

/// This thread's handle on `shared`: the cached one, or a new one (one write of the
/// object's count) that the cache then keeps.
pub fn thread_handle<T: Send + Sync + 'static>(shared: &Arc<T>) -> ThreadHandle<T> {
    let address = Arc::as_ptr(shared).cast::<()>() as usize;
    let found = CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, handle)) = cache.entries.iter().find(|(cached, _)| *cached == address) {
            // The address could have held an object of another type only if that one had
            // been dropped, which its cached handle prevents; the check costs a compare.
            if let Ok(handle) = Arc::clone(handle).downcast::<ThreadsClone<T>>() {
                return ThreadHandle(handle);
            }
        }
        let handle = Arc::new(ThreadsClone(Arc::clone(shared)));
        let entry: Cached = (address, handle.clone());
        if cache.entries.len() < CACHED_PER_THREAD {
            cache.entries.push(entry);
        } else {
            let next = cache.next;
            cache.entries[next] = entry;
            cache.next = (next + 1) % CACHED_PER_THREAD;
        }
        ThreadHandle(handle)
    });
    // A thread whose cache is gone (it is ending) gets a handle of its own.
    found.unwrap_or_else(|_| ThreadHandle(Arc::new(ThreadsClone(Arc::clone(shared)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reuses_its_handle_and_another_thread_makes_its_own() {
        let shared = Arc::new(String::from("state"));
        let first = thread_handle(&shared);
        let second = thread_handle(&shared);
        assert!(Arc::ptr_eq(&first.0, &second.0), "the cached handle is handed out again");
        assert_eq!(Arc::strong_count(&shared), 2, "one clone of the object for this thread, whatever the handles");
        assert_eq!(&*first, "state");
        let elsewhere = std::thread::scope(|scope| scope.spawn(|| thread_handle(&shared)).join().unwrap());
        assert!(!Arc::ptr_eq(&first.0, &elsewhere.0), "another thread's handle is its own");
        assert!(Arc::ptr_eq(&first.0 .0, &shared), "the handle holds the object itself, not a copy");
    }

    #[test]
    fn the_cache_keeps_a_bounded_number_of_objects_alive() {
        let objects: Vec<Arc<u64>> = (0..CACHED_PER_THREAD as u64 + 3).map(Arc::new).collect();
        for object in &objects {
            assert_eq!(*thread_handle(object), **object);
        }
        let still_held = objects.iter().filter(|object| Arc::strong_count(object) > 1).count();
        assert_eq!(still_held, CACHED_PER_THREAD, "the oldest handles made room for the newest");
        assert_eq!(Arc::strong_count(&objects[0]), 1, "the first object is no longer kept alive");
        // Objects of another type at other addresses are told apart.
        let text = Arc::new("text");
        assert_eq!(*thread_handle(&text), "text");
        assert_eq!(*thread_handle(&objects[CACHED_PER_THREAD + 2]), CACHED_PER_THREAD as u64 + 2);
    }
}
