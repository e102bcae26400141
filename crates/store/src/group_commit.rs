//! Group commit of CreateApiKey on PostgreSQL.
//!
//! Every write that affects verification appends a change-feed row under one advisory lock,
//! held until its transaction commits, so one write at a time commits per database: one
//! commit (and one WAL flush) per write. A [`GroupCommitter`] runs the creates that queue
//! up on its node meanwhile in one transaction instead, and with a fixed number of
//! statements for the whole batch ([`crate::api_keys::insert_api_keys_together`]): the
//! accounts locked once, the owners' key counts read once and each request's limit checked
//! in order against them (a refused request writes nothing), then one multi-row statement
//! each for the keys, their audit rows and their change-feed rows, one read of what the
//! registry and the answers need, one NOTIFY, one commit.
//!
//! When one of those statements fails (a digest already stored, a workspace deleted
//! meanwhile), the transaction is rolled back and the batch runs again one request at a
//! time, each in a savepoint of its own ([`crate::api_keys::insert_api_key`]): the request
//! that fails is rolled back to its savepoint and answered with its own error, leaving
//! nothing; the others go on. Either way, each request is answered only after the commit,
//! its registry updates published in version order: an answered create is committed.
//! Versions stay MAX + 1 within the transaction, so a batch's changes take consecutive
//! versions, without gaps, and become visible to followers together, at commit.
//!
//! One committer per store, one batch at a time: while a batch commits, the next requests
//! queue, and the next batch takes them all (up to [`MAX_BATCH`]).

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

/// A queued request and where its answer goes.
type Job = (CreateRequest, oneshot::Sender<Result<ApiKeyRecord, StoreError>>);

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
        let (answer, answered) = oneshot::channel();
        self.queue.send((request, answer)).await.map_err(|_| StoreError::GroupCommit("the committer has stopped".into()))?;
        answered.await.unwrap_or_else(|_| Err(StoreError::GroupCommit("the committer stopped before answering".into())))
    }
}

async fn run(database: Database, registry: Arc<KeyRegistry>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (requests, answers): (Vec<CreateRequest>, Vec<_>) = jobs.drain(..).unzip();
        match commit_batch(&database, &requests).await {
            Ok(outcomes) => {
                for (outcome, answer) in outcomes.into_iter().zip(answers) {
                    let _ = answer.send(outcome.map(|committed| {
                        registry.apply(committed.version, committed.updates);
                        committed.value
                    }));
                }
            }
            Err(error) => {
                tracing::warn!(%error, writes = requests.len(), "a group commit failed");
                for answer in answers {
                    let _ = answer.send(Err(StoreError::GroupCommit(error.to_string())));
                }
            }
        }
    }
}

/// Runs `requests` in one transaction and commits: with the batch's statements, or, when
/// one of those fails, one request at a time in savepoints. Answers one outcome per
/// request, in order; the successes' versions ascend in that order.
async fn commit_batch(database: &Database, requests: &[CreateRequest]) -> Result<Vec<Outcome>, StoreError> {
    let mut transaction = database.begin_change().await?;
    transaction.set_grouped();
    match insert_api_keys_together(&mut transaction, requests).await {
        Ok(outcomes) => return finish(transaction, outcomes).await,
        Err(error) => {
            tracing::debug!(%error, writes = requests.len(), "a batch's statements failed; running its requests one at a time");
            transaction.rollback().await?;
        }
    }
    let mut transaction = database.begin_change().await?;
    transaction.set_grouped();
    let mut outcomes = Vec::with_capacity(requests.len());
    // One round trip between two requests: the last one's savepoint released (or, rolled
    // back to, emptied) and the next one's taken.
    let mut savepoint_open = false;
    for request in requests {
        transaction
            .execute_script(if savepoint_open {
                "RELEASE SAVEPOINT grouped_write; SAVEPOINT grouped_write"
            } else {
                "SAVEPOINT grouped_write"
            })
            .await?;
        savepoint_open = true;
        let outcome = insert_api_key(&mut transaction, &request.context, request.key.clone(), request.quota).await;
        if outcome.is_err() {
            transaction.execute_script("ROLLBACK TO SAVEPOINT grouped_write").await?;
        }
        outcomes.push(outcome);
    }
    finish(transaction, outcomes).await
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
