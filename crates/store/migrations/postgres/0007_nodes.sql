-- The nodes serving from this database, each writing a heartbeat (Unix ms by its clock) so
-- that every node can count the live ones and enforce its share of each limit when no
-- shared counter (Redis) is configured (docs/CONTRACT.md#model-limits, "Across nodes").
-- postgres 0006 is left for the per-key limits, built at the same time.
CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);
CREATE INDEX nodes_seen_at ON nodes (seen_at);
