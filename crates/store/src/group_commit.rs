//! Group commit of key writes on PostgreSQL.
//!
//! Every write that affects verification appends a change-feed row under one advisory lock,
//! held until its transaction commits, so one write at a time commits per database: one
//! commit (and one WAL flush) per write. A [`GroupCommitter`] runs the key writes that queue
//! up on its node meanwhile in one transaction instead: the creates first, with a fixed
//! number of statements for all of them ([`crate::api_keys::insert_api_keys_together`]):
//! the accounts locked once, the owners' key counts read once and each request's limit
//! checked in order against them (a refused request writes nothing), then one multi-row
//! statement each for the keys, their audit rows and their change-feed rows, one read of
//! what the registry and the answers need; then the changes to stored keys (disable,
//! enable, edit, reset, end of grace, delete: [`KeyChange`]), each in a savepoint of its
//! own, in key order; then one NOTIFY and one commit.
//!
//! Changes ride in the batch so that a change does not hold the feed's lock through a
//! commit (a WAL flush) of its own while the batches wait: the batch's one commit serves
//! it. (Measured with revocations beside a burst of creates, this did not change the
//! creates per second, docs/PERFORMANCE.md, "Changes to stored keys in the batch": the
//! drop there comes from elsewhere.) In key order, two changes of one key in the order they
//! came (a stable sort), because the usage flush locks the keys it counts in key order too
//! (`Store::flush_usage`), outside the feed's lock: two transactions that each lock several
//! keys in the same order cannot deadlock.
//!
//! When one of the creates' statements fails (a digest already stored, a workspace deleted
//! meanwhile), the transaction is rolled back and the creates run again one at a time,
//! each in a savepoint of its own ([`crate::api_keys::insert_api_key`]): the request that
//! fails is rolled back to its savepoint and answered with its own error, leaving nothing;
//! the others go on. A change that fails (a key not found, a conflict) is rolled back to
//! its savepoint and answered with its own error likewise. Either way, each request is
//! answered only after the commit, its registry updates published in version order: an
//! answered write is committed. Versions stay MAX + 1 within the transaction, so a batch's
//! changes take consecutive versions, without gaps, and become visible to followers
//! together, at commit.
//!
//! One committer per store, one batch at a time: while a batch commits, the next requests
//! queue, and the next batch takes them all (up to [`MAX_BATCH`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use keygate_core::verification::{KeyRegistry, RegistryUpdate};
use tokio::sync::{mpsc, oneshot};

use crate::api_keys::{insert_api_key, insert_api_keys_together, ApiKeyRecord, NewApiKey, QuotaRule};
use crate::audit::AuditContext;
use crate::database::{params, Database, Transaction};
use crate::{feed, StoreError};

/// Requests run in one transaction at most.
const MAX_BATCH: usize = 64;
/// Requests waiting for a batch at most; further requests wait to enqueue.
const QUEUE_LENGTH: usize = 1024;

/// What a request's statements produced: its answer, and the registry updates to publish
/// at its change version once the batch has committed.
pub(crate) struct Committed<T> {
    pub value: T,
    pub version: u64,
    pub updates: Vec<RegistryUpdate>,
}

/// One CreateApiKey, as the store was asked for it.
pub(crate) struct CreateRequest {
    pub context: AuditContext,
    pub key: NewApiKey,
    pub quota: QuotaRule,
}

/// What a batch answers each request: its key, or its own refusal.
pub(crate) type Outcome = Result<Committed<ApiKeyRecord>, StoreError>;

/// The statements of one change to a stored key, run in a transaction that holds the
/// change feed's lock; nothing committed. See [`change_statements`].
pub(crate) type ChangeStatements =
    Box<dyn for<'t> FnOnce(&'t mut Transaction) -> Pin<Box<dyn Future<Output = Outcome> + Send + 't>> + Send>;

/// Boxes a change's statements (the bound lets the closure borrow the transaction).
pub(crate) fn change_statements<F>(statements: F) -> ChangeStatements
where
    F: for<'t> FnOnce(&'t mut Transaction) -> Pin<Box<dyn Future<Output = Outcome> + Send + 't>> + Send + 'static,
{
    Box::new(statements)
}

/// One change to a stored key (disable, enable, edit, reset, end of grace, delete).
pub(crate) struct KeyChange {
    /// The key it changes: a batch runs its changes in key order.
    pub key_id: i64,
    pub statements: ChangeStatements,
}

/// A queued write.
// Most writes are creates: boxing them to shrink the rarer changes' slots would add an
// allocation to every create.
#[allow(clippy::large_enum_variant)]
enum Write {
    Create(CreateRequest),
    Change(KeyChange),
}

/// A queued write and where its answer goes.
type Job = (Write, oneshot::Sender<Result<ApiKeyRecord, StoreError>>);

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

    /// Creates the key in the next batch and answers its record once the batch has
    /// committed and its updates are published; or its own error (nothing of it is
    /// stored), or the batch's.
    pub(crate) async fn create(&self, request: CreateRequest) -> Result<ApiKeyRecord, StoreError> {
        self.queue_write(Write::Create(request)).await
    }

    /// Runs the change in the next batch and answers the key's record once the batch has
    /// committed and its updates are published; or its own error (nothing of it is
    /// stored), or the batch's.
    pub(crate) async fn change(&self, change: KeyChange) -> Result<ApiKeyRecord, StoreError> {
        self.queue_write(Write::Change(change)).await
    }

    async fn queue_write(&self, write: Write) -> Result<ApiKeyRecord, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue.send((write, answer)).await.map_err(|_| StoreError::GroupCommit("the committer has stopped".into()))?;
        answered.await.unwrap_or_else(|_| Err(StoreError::GroupCommit("the committer stopped before answering".into())))
    }
}

async fn run(database: Database, registry: Arc<KeyRegistry>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // The creates in their order of arrival, then the changes in key order (a stable
        // sort); the answers in the same order as the writes.
        jobs.sort_by_key(|(write, _)| match write {
            Write::Create(_) => None,
            Write::Change(change) => Some(change.key_id),
        });
        let (writes, answers): (Vec<Write>, Vec<_>) = jobs.drain(..).unzip();
        let (mut creates, mut changes) = (Vec::new(), Vec::new());
        for write in writes {
            match write {
                Write::Create(request) => creates.push(request),
                Write::Change(change) => changes.push(change),
            }
        }
        let writes = answers.len();
        match commit_batch(&database, &creates, changes).await {
            Ok(outcomes) => {
                for (outcome, answer) in outcomes.into_iter().zip(answers) {
                    let _ = answer.send(outcome.map(|committed| {
                        registry.apply(committed.version, committed.updates);
                        committed.value
                    }));
                }
            }
            Err(error) => {
                tracing::warn!(%error, writes, "a group commit failed");
                for answer in answers {
                    let _ = answer.send(Err(StoreError::GroupCommit(error.to_string())));
                }
            }
        }
    }
}

/// Runs the creates and then the changes in one transaction and commits: the creates with
/// the batch's statements, or, when one of those fails, one at a time in savepoints; the
/// changes each in a savepoint. Answers one outcome per write, the creates' first, in
/// order; the successes' versions ascend in that order.
async fn commit_batch(database: &Database, creates: &[CreateRequest], changes: Vec<KeyChange>) -> Result<Vec<Outcome>, StoreError> {
    let mut transaction = database.begin_change().await?;
    transaction.set_grouped();
    let mut savepoints = Savepoints::default();
    let mut outcomes = Vec::with_capacity(creates.len() + changes.len());
    if !creates.is_empty() {
        match insert_api_keys_together(&mut transaction, creates).await {
            Ok(together) => outcomes = together,
            Err(error) => {
                tracing::debug!(%error, writes = creates.len(), "a batch's statements failed; running its creates one at a time");
                transaction.rollback().await?;
                transaction = database.begin_change().await?;
                transaction.set_grouped();
                for request in creates {
                    savepoints.take(&mut transaction).await?;
                    let outcome = insert_api_key(&mut transaction, &request.context, request.key.clone(), request.quota).await;
                    savepoints.settle(&mut transaction, &outcome).await?;
                    outcomes.push(outcome);
                }
            }
        }
    }
    for change in changes {
        savepoints.take(&mut transaction).await?;
        let outcome = (change.statements)(&mut transaction).await;
        savepoints.settle(&mut transaction, &outcome).await?;
        outcomes.push(outcome);
    }
    finish(transaction, outcomes).await
}

/// The savepoint of the write running in a batch, so that a write that fails leaves
/// nothing while the others go on.
#[derive(Default)]
struct Savepoints {
    open: bool,
}

impl Savepoints {
    /// Takes the next write's savepoint: one round trip between two writes, the last one's
    /// savepoint released (or, rolled back to, emptied) and the next one's taken.
    async fn take(&mut self, transaction: &mut Transaction) -> Result<(), StoreError> {
        transaction
            .execute_script(if self.open { "RELEASE SAVEPOINT grouped_write; SAVEPOINT grouped_write" } else { "SAVEPOINT grouped_write" })
            .await?;
        self.open = true;
        Ok(())
    }

    /// After a write: what it did is undone when it failed.
    async fn settle(&self, transaction: &mut Transaction, outcome: &Outcome) -> Result<(), StoreError> {
        if outcome.is_err() {
            transaction.execute_script("ROLLBACK TO SAVEPOINT grouped_write").await?;
        }
        Ok(())
    }
}

/// Notifies the followers once (when anything was written) and commits.
async fn finish(mut transaction: Transaction, outcomes: Vec<Outcome>) -> Result<Vec<Outcome>, StoreError> {
    if outcomes.iter().any(Result::is_ok) {
        // Followers read the table; the notification only wakes them.
        transaction.execute("SELECT pg_notify($1, $2)", &params![feed::CHANGE_FEED_CHANNEL, "batch"]).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}
