-- Per-key limits (docs/CONTRACT.md#per-key-limits), each NULL when not set: requests and
-- tokens per minute, calls in flight, and a budget per UTC 'day' or 'month' of tokens
-- (input plus output) and/or cost in millionths of the price table's currency.
ALTER TABLE api_keys ADD COLUMN limit_requests_per_minute INTEGER;
ALTER TABLE api_keys ADD COLUMN limit_tokens_per_minute INTEGER;
ALTER TABLE api_keys ADD COLUMN limit_max_in_flight INTEGER;
ALTER TABLE api_keys ADD COLUMN budget_period TEXT;
ALTER TABLE api_keys ADD COLUMN budget_tokens INTEGER;
ALTER TABLE api_keys ADD COLUMN budget_cost_micros INTEGER;
