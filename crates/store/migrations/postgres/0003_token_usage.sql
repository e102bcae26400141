-- Token accounting (docs/CONTRACT.md#usage): calls and tokens per key, model and period.
-- Each node adds its deltas with an upsert, so rows are sums over every node. Minute rows
-- (period_seconds 60) are rolled up into hours (3600) and days (86400) as they age, and
-- pruned after the retention. No foreign key: usage outlives a deleted key or workspace.
CREATE TABLE token_usage (
    key_id           BIGINT NOT NULL,
    model            TEXT NOT NULL,
    period_seconds   BIGINT NOT NULL,
    period_start     BIGINT NOT NULL, -- Unix seconds, a multiple of period_seconds
    account_id       BIGINT NOT NULL,
    workspace_id     TEXT NOT NULL,
    requests         BIGINT NOT NULL DEFAULT 0,
    input_tokens     BIGINT NOT NULL DEFAULT 0,
    output_tokens    BIGINT NOT NULL DEFAULT 0,
    cached_tokens    BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, model, period_seconds, period_start)
);
CREATE INDEX token_usage_by_account_time ON token_usage(account_id, period_start);
CREATE INDEX token_usage_by_age ON token_usage(period_seconds, period_start);
