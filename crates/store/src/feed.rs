//! Following the change feed, so that every node's registry converges on the database.
//!
//! Every change that affects verification has a row in `changes` with a version. Versions
//! have no gaps and commit in order (SQLite: one writer at a time; PostgreSQL: assigned under
//! an advisory lock), so a node that has applied version N has seen everything up to N.
//! PostgreSQL `LISTEN/NOTIFY` is only the fast path that wakes a node; the table is the
//! truth, polled at a fixed interval as a safety net. On every (re)connect, and on any gap,
//! a node resynchronises fully from one snapshot, so a missed notification cannot keep a
//! revoked key alive. [`FeedHealth`] records when the node last confirmed its state, so the
//! gateway can fail closed when that is too long ago.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::access_keys::SESSION_CHANGE;
use crate::compile;
use crate::database::params;
use crate::{Store, StoreError};

/// The NOTIFY channel of the change feed.
pub const CHANGE_FEED_CHANNEL: &str = "keygate_changes";
/// The advisory lock that serializes version assignment on PostgreSQL.
pub const CHANGE_FEED_LOCK: i64 = 0x6b67_6665_6564; // "kgfeed"
/// Changes read per catch-up round.
const CATCH_UP_BATCH: i64 = 500;

/// How current this node's registry is known to be. Times are Unix milliseconds from the
/// caller's clock (see [`Store::follow_changes`]).
#[derive(Debug)]
pub struct FeedHealth {
    last_confirmed_milliseconds: AtomicI64,
    cursor: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl FeedHealth {
    /// Health as of `now`: confirmed then, at no version yet.
    pub fn new(now: i64) -> FeedHealth {
        FeedHealth { last_confirmed_milliseconds: AtomicI64::new(now), cursor: AtomicU64::new(0), last_error: Mutex::new(None) }
    }

    fn confirm(&self, cursor: u64, now: i64) {
        self.last_confirmed_milliseconds.store(now, Ordering::Relaxed);
        self.cursor.store(cursor, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn fail(&self, error: &StoreError) {
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
    }

    /// Milliseconds from the registry's last confirmation to `now`.
    pub fn staleness_milliseconds(&self, now: i64) -> i64 {
        (now - self.last_confirmed_milliseconds.load(Ordering::Relaxed)).max(0)
    }

    /// The last feed version this node has applied.
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Relaxed)
    }

    /// Why the last attempt to confirm failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// What one catch-up round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Applied everything up to this version.
    UpTo(u64),
    /// A version was missing after the cursor: resynchronise fully.
    Gap,
}

impl Store {
    /// Applies every change after `cursor`, each at its own version, from one snapshot.
    pub async fn catch_up(&self, cursor: u64) -> Result<CatchUp, StoreError> {
        let mut position = cursor;
        loop {
            let mut snapshot = self.database.begin_snapshot().await?;
            let rows = snapshot
                .fetch_all(
                    "SELECT version, kind, subject, revoked FROM changes WHERE version > $1 ORDER BY version LIMIT $2",
                    &params![i64::try_from(position).unwrap_or(i64::MAX), CATCH_UP_BATCH],
                )
                .await?;
            let fetched = rows.len();
            // The entries up to the first gap, read for the registry together.
            let mut versions = Vec::with_capacity(fetched);
            let mut entries = Vec::with_capacity(fetched);
            for row in &rows {
                let version = u64::try_from(row.i64("version")?).unwrap_or(0);
                if version != position + 1 + versions.len() as u64 {
                    break;
                }
                versions.push(version);
                let (kind, subject) = (row.string("kind")?, row.string("subject")?);
                let key_already_applied = kind == "api_key"
                    && subject
                        .parse::<i64>()
                        .ok()
                        .and_then(|key_id| self.registry.key_version(key_id))
                        .is_some_and(|applied| applied >= version);
                entries.push(compile::ChangeEntry { kind, subject, revoked: row.string("revoked")?, key_already_applied });
            }
            let gap = versions.len() < fetched;
            let updates = compile::updates_for_changes(&mut snapshot, &entries).await?;
            snapshot.commit().await?;
            if entries.iter().any(|entry| entry.kind == SESSION_CHANGE || entry.kind == "user") {
                self.sessions.forget_all();
            }
            for (version, updates) in versions.into_iter().zip(updates) {
                self.registry.apply(version, updates);
                position = version;
            }
            if gap {
                return Ok(CatchUp::Gap);
            }
            if fetched < usize::try_from(CATCH_UP_BATCH).unwrap_or(usize::MAX) {
                return Ok(CatchUp::UpTo(position));
            }
        }
    }

    /// Resynchronises, then follows the feed until `shutdown` turns true, recording in
    /// `health` when (by `now`, Unix ms) it last confirmed the registry. On PostgreSQL it
    /// listens for notifications and polls every `poll_interval`; on SQLite it polls (which
    /// also picks up changes made by other processes, such as `keygate admin`).
    pub async fn follow_changes(
        &self,
        health: Arc<FeedHealth>,
        now: impl Fn() -> i64,
        poll_interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut retry_delay = Duration::from_millis(200);
        // The first connection catches up from the snapshot loaded at open; every later one
        // (a reconnect) resynchronises fully, since notifications may have been missed.
        let mut start_from = Some(self.opened_at_version);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.follow_once(&health, &now, poll_interval, &mut shutdown, start_from.take()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "change feed interrupted; resynchronising when the database answers");
                    health.fail(&error);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry_delay) => {}
                _ = shutdown.changed() => return,
            }
            retry_delay = (retry_delay * 2).min(Duration::from_secs(2));
        }
    }

    /// One connection's life: resync (or catch up from `start_from`), then catch up on every
    /// notification or tick.
    async fn follow_once(
        &self,
        health: &FeedHealth,
        now: &impl Fn() -> i64,
        poll_interval: Duration,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        start_from: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut listener = match self.database.postgres_pool() {
            Some(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANGE_FEED_CHANNEL).await?;
                Some(listener)
            }
            None => None,
        };
        // Listening starts before the state is read, so no change falls between the two.
        let mut cursor = match start_from {
            Some(version) => match self.catch_up(version).await? {
                CatchUp::UpTo(position) => position,
                CatchUp::Gap => self.resync_registry().await?,
            },
            None => self.resync_registry().await?,
        };
        health.confirm(cursor, now());
        loop {
            let woken_by_notification = async {
                match listener.as_mut() {
                    // `None`: the connection was lost; a reconnect must resync.
                    Some(listener) => listener.try_recv().await.map(|notification| notification.is_some()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                outcome = woken_by_notification => {
                    if !outcome? {
                        return Err(StoreError::Refused("the change-feed connection was closed".into()));
                    }
                }
                _ = tokio::time::sleep(poll_interval) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            match self.catch_up(cursor).await? {
                CatchUp::UpTo(position) => cursor = position,
                CatchUp::Gap => {
                    tracing::warn!(cursor, "gap in the change feed; resynchronising");
                    cursor = self.resync_registry().await?;
                }
            }
            health.confirm(cursor, now());
        }
    }
}
