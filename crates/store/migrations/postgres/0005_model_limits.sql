-- Model limits per workspace and model (UpdateModelLimits, docs/CONTRACT.md#model-limits):
-- requests per period and tokens per period, each field absent until set. A workspace's
-- limits go with it. postgres 0004 is taken by key expiry.
CREATE TABLE model_limits (
    workspace_id          TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    model                 TEXT NOT NULL,
    request_limit         BIGINT,
    request_limit_period  BIGINT,
    usage_limit           BIGINT,
    usage_limit_period    BIGINT,
    PRIMARY KEY (workspace_id, model)
);
