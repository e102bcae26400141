//! The nodes serving from one database: each writes a heartbeat, and counts the nodes seen
//! recently, so that without a shared counter every node enforces its share of each limit
//! (docs/CONTRACT.md#model-limits, "Across nodes"). Times are Unix milliseconds from the
//! callers' clocks, which must agree to within a heartbeat or so (they must agree for the
//! limits' windows anyway).

use crate::database::params;
use crate::{Store, StoreError};

impl Store {
    /// Records that `node_id` is alive at `now` (a node started at `started_at`), and
    /// forgets nodes not seen since `forget_before` (gone for good).
    pub async fn node_heartbeat(&self, node_id: &str, started_at: i64, now: i64, forget_before: i64) -> Result<(), StoreError> {
        self.database
            .execute(
                "INSERT INTO nodes (node_id, started_at, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (node_id) DO UPDATE SET seen_at = excluded.seen_at",
                &params![node_id, started_at, now],
            )
            .await?;
        self.database.execute("DELETE FROM nodes WHERE seen_at < $1", &params![forget_before]).await?;
        Ok(())
    }

    /// How many nodes were seen at or after `since` (this one included, once it has beaten).
    pub async fn count_live_nodes(&self, since: i64) -> Result<u64, StoreError> {
        let row = self.database.fetch_one("SELECT COUNT(*) AS live FROM nodes WHERE seen_at >= $1", &params![since]).await?;
        Ok(u64::try_from(row.i64("live")?).unwrap_or(0))
    }

    /// Removes `node_id` (a graceful stop): the others take its share at their next count.
    pub async fn node_departed(&self, node_id: &str) -> Result<(), StoreError> {
        self.database.execute("DELETE FROM nodes WHERE node_id = $1", &params![node_id]).await?;
        Ok(())
    }
}
