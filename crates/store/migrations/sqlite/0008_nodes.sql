-- The nodes serving from this database with their heartbeats (Unix ms). One SQLite file is
-- served by one node, which counts only itself; the table exists so that both stores have
-- the same schema (docs/CONTRACT.md#model-limits, "Across nodes"). sqlite 0007 is left for
-- the per-key limits, built at the same time.
CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL
);
CREATE INDEX nodes_seen_at ON nodes (seen_at);
