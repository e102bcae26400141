-- The digests a change revoked (deleted keys, the old secret of a reset key), as
-- comma-separated hex, so that a node following the feed can revoke them too.
ALTER TABLE changes ADD COLUMN revoked TEXT NOT NULL DEFAULT '';
