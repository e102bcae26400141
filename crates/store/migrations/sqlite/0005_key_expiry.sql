-- Expiry and reset with a grace period (docs/CONTRACT.md#expiry-and-grace-periods).
-- When the key stops working, Unix seconds; NULL: never.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
-- The secret a reset with a grace period replaced (its SHA-256 digest), still accepted
-- until previous_secret_ends_at (Unix seconds); both NULL outside a grace period.
ALTER TABLE api_keys ADD COLUMN previous_key_digest BLOB;
ALTER TABLE api_keys ADD COLUMN previous_secret_ends_at INTEGER;
