-- Model limits per workspace and model (UpdateModelLimits, docs/CONTRACT.md#model-limits):
-- requests per period and tokens per period, each field absent until set. A workspace's
-- limits go with it. sqlite 0005 is taken by key expiry.
CREATE TABLE model_limits (
    workspace_id          TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    model                 TEXT NOT NULL,
    request_limit         INTEGER,
    request_limit_period  INTEGER,
    usage_limit           INTEGER,
    usage_limit_period    INTEGER,
    PRIMARY KEY (workspace_id, model)
);
