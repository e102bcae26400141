//! Where accepted connections run: on a few single-threaded tokio runtimes, one per core
//! by default (`connection_runtimes`), or on the process's multi-threaded runtime.
//!
//! Why: on the multi-threaded runtime a forwarded call's client socket, its upstream
//! socket, its timers and its task are woken on whichever worker is free, so a call's
//! steps hop between cores, and the workers that run out of work spin looking for some
//! to steal. Measured against nginx (docs/PERFORMANCE.md, "A runtime per core"), that
//! was as large a part of the gap as the CPU the call itself takes, and most of the p99.
//! A connection handed to a runtime of its own thread stays there for its whole life, as
//! a connection stays on one nginx worker: the upstream connections it opens (the pool
//! is split by thread, `upstream_client`) and the tasks it spawns stay with it.
//!
//! The accept loops, the change feed, the usage flusher and the other background tasks
//! stay on the main runtime. A connection's socket is accepted there and registered again
//! on the runtime it is handed to. Connections are handed round-robin: keep-alive
//! clients (every SDK, a proxy in front) spread their load over the runtimes as they
//! open connections. What a connection's request does off the async path (password
//! hashing, SQLite's reads) goes to the blocking pool as on the main runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How many connection runtimes the settings ask for: `Some(0)`, none (the connections
/// share the main runtime); `None`, one per core the process may use.
pub fn runtime_count(setting: Option<usize>) -> usize {
    setting.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Running connection runtimes, each on a thread of its own.
pub struct ConnectionRuntimes {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping a sender ends its runtime's thread (its tasks dropped with it).
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ConnectionRuntimes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ConnectionRuntimes").field("count", &self.handles.len()).finish_non_exhaustive()
    }
}

impl ConnectionRuntimes {
    /// Starts `count` runtimes (at least one), named `keygate-conn-N`. Each marks its thread
    /// with its number for the upstream pool's shards.
    pub fn start(count: usize) -> std::io::Result<ConnectionRuntimes> {
        let count = count.max(1);
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for number in 0..count {
            // The thread keeps the time for its calls (`thread_clock`): read when it wakes
            // from waiting for work, and every tick while it works.
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().on_thread_unpark(crate::thread_clock::read_now).build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            let thread = std::thread::Builder::new().name(format!("keygate-conn-{number}")).spawn(move || {
                // Shard 0 is every other thread's (the main runtime's workers).
                crate::upstream_client::use_pool_shard_on_this_thread(number + 1);
                crate::thread_clock::read_now();
                runtime.block_on(async move {
                    tokio::spawn(crate::thread_clock::keep_the_time());
                    let _ = stopped.await;
                });
                crate::thread_clock::stop_keeping_the_time();
                // Dropping the runtime here drops the tasks still on it (connections past
                // the shutdown grace, the upstream pool's reaper).
                drop(runtime);
            })?;
            threads.push(thread);
        }
        Ok(ConnectionRuntimes { handles, next: AtomicUsize::new(0), stops, threads })
    }

    /// The runtime the next connection goes to (round-robin).
    pub fn next_runtime(&self) -> &Handle {
        let number = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[number]
    }

    /// Ends every runtime and waits for its thread, on the blocking pool (a thread's end
    /// drops the tasks left on it).
    pub async fn stop(mut self) {
        self.stops.clear();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// Where the connections of a listener are spawned.
#[derive(Clone, Debug)]
pub enum ConnectionPlacement {
    /// On the runtime the accept loop runs on (the main one).
    MainRuntime,
    /// On the connection runtimes, round-robin.
    Runtimes(Arc<ConnectionRuntimes>),
}

impl ConnectionPlacement {
    /// Runs `serve` with the accepted `stream` on the runtime the connection is placed on;
    /// the socket is registered with that runtime's reactor.
    pub fn spawn<Serve, Served>(&self, stream: tokio::net::TcpStream, serve: Serve)
    where
        Serve: FnOnce(tokio::net::TcpStream) -> Served + Send + 'static,
        Served: Future<Output = ()> + Send + 'static,
    {
        match self {
            ConnectionPlacement::MainRuntime => {
                tokio::spawn(serve(stream));
            }
            ConnectionPlacement::Runtimes(runtimes) => {
                // Taken off this runtime's reactor (it stays non-blocking) and put on the
                // other's when its task first runs there.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::debug!(%error, "an accepted connection could not be handed over; closed");
                        return;
                    }
                };
                runtimes.next_runtime().spawn(async move {
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => serve(stream).await,
                        Err(error) => tracing::warn!(%error, "registering a connection on its runtime failed; closed"),
                    }
                });
            }
        }
    }
}
