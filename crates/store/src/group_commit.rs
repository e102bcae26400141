//! Group commit of change-feed writes on PostgreSQL.
//!
//! Every write that affects verification appends a change-feed row under one advisory lock,
//! held until its transaction commits, so one write at a time commits per database: one
//! commit (and one WAL flush) per write. A [`GroupCommitter`] runs the writes that queue up
//! on its node meanwhile in one transaction instead: it takes the feed's lock first, runs
//! each request's statements inside a savepoint of its own (a request that fails, a 4xx
//! or a database error, is rolled back to its savepoint and answered at once, leaving
//! nothing; the others go on), notifies the followers once and commits. Only then does it
//! publish each request's updates to the registry, in version order, and answer it: an
//! answered write is committed. Versions stay MAX + 1 within the transaction, so a batch's
//! changes take consecutive versions, without gaps (a rolled-back request's row goes with
//! its savepoint), and become visible to followers together, at commit.
//!
//! One committer per store, one batch at a time: while a batch commits, the next requests
//! queue, and the next batch takes them all (up to [`MAX_BATCH`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use keygate_core::verification::{KeyRegistry, RegistryUpdate};
use tokio::sync::{mpsc, oneshot};

use crate::database::{params, Database, Transaction};
use crate::{feed, StoreError};

/// Requests run in one transaction at most.
const MAX_BATCH: usize = 64;
/// Requests waiting for a batch at most; further requests wait to enqueue.
const QUEUE_LENGTH: usize = 1024;

/// A request's statements, run in a batch's transaction.
pub(crate) type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<Committed<T>, StoreError>> + Send + 't>>;

/// What a request's statements produced: its answer, and the registry updates to publish
/// at its change version once the batch has committed.
pub(crate) struct Committed<T> {
    pub value: T,
    pub version: u64,
    pub updates: Vec<RegistryUpdate>,
}

/// Publishes a request's updates and answers it (the batch committed), or answers the
/// batch's failure.
type Completion = Box<dyn FnOnce(&KeyRegistry, Result<(), &StoreError>) + Send>;

/// A queued request: runs its statements and answers with its completion, or answers its
/// own failure and gives none.
type Job = Box<dyn for<'t> FnOnce(&'t mut Transaction) -> Pin<Box<dyn Future<Output = Option<Completion>> + Send + 't>> + Send>;

/// The queue to this store's committer task.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommitter {
    queue: mpsc::Sender<Job>,
}

impl GroupCommitter {
    /// Starts the committer task, which ends when the last clone of the committer is dropped.
    pub(crate) fn start(database: Database, registry: Arc<KeyRegistry>) -> GroupCommitter {
        let (queue, receiver) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(run(database, registry, receiver));
        GroupCommitter { queue }
    }

    /// Runs `work` in the next batch and answers its value once the batch has committed
    /// and its updates are published; or its own error (nothing of it is stored), or the
    /// batch's.
    pub(crate) async fn write<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: for<'t> FnOnce(&'t mut Transaction) -> WriteFuture<'t, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |transaction| {
            Box::pin(async move {
                match work(transaction).await {
                    Ok(committed) => {
                        let completion: Completion = Box::new(move |registry, outcome| {
                            let _ = answer.send(match outcome {
                                Ok(()) => {
                                    registry.apply(committed.version, committed.updates);
                                    Ok(committed.value)
                                }
                                Err(error) => Err(StoreError::GroupCommit(error.to_string())),
                            });
                        });
                        Some(completion)
                    }
                    Err(error) => {
                        let _ = answer.send(Err(error));
                        None
                    }
                }
            })
        });
        self.queue.send(job).await.map_err(|_| StoreError::GroupCommit("the committer has stopped".into()))?;
        // A job dropped unrun (its batch failed before reaching it) drops its sender.
        answered.await.unwrap_or_else(|_| Err(StoreError::GroupCommit("the batch failed before this write ran".into())))
    }
}

async fn run(database: Database, registry: Arc<KeyRegistry>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut completions = Vec::with_capacity(jobs.len());
        let outcome = commit_batch(&database, jobs.drain(..), &mut completions).await;
        if let Err(error) = &outcome {
            tracing::warn!(%error, writes = completions.len(), "a group commit failed");
        }
        for completion in completions {
            completion(&registry, outcome.as_ref().map(|_| ()));
        }
    }
}

/// Runs `jobs` in one transaction, each in a savepoint, and commits; the completions of
/// the jobs that succeeded are left in `completions`, in version order. On an error the
/// jobs not yet run are dropped (which answers them).
async fn commit_batch(database: &Database, jobs: impl Iterator<Item = Job>, completions: &mut Vec<Completion>) -> Result<(), StoreError> {
    let mut transaction = database.begin_change().await?;
    transaction.set_grouped();
    // One round trip between two requests: the last one's savepoint released (or, rolled
    // back to, emptied) and the next one's taken.
    let mut savepoint_open = false;
    for job in jobs {
        transaction
            .execute_script(if savepoint_open {
                "RELEASE SAVEPOINT grouped_write; SAVEPOINT grouped_write"
            } else {
                "SAVEPOINT grouped_write"
            })
            .await?;
        savepoint_open = true;
        match job(&mut transaction).await {
            Some(completion) => completions.push(completion),
            None => transaction.execute_script("ROLLBACK TO SAVEPOINT grouped_write").await?,
        }
    }
    if !completions.is_empty() {
        // Followers read the table; the notification only wakes them.
        transaction.execute("SELECT pg_notify($1, $2)", &params![feed::CHANGE_FEED_CHANNEL, "batch"]).await?;
    }
    transaction.commit().await
}
