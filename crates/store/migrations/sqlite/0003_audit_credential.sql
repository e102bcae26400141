-- The credential an audited action was taken through (`accessKey:LTAI...`,
-- `session:<first characters of the token digest>`); empty for `keygate admin`.
ALTER TABLE audit_log ADD COLUMN credential TEXT NOT NULL DEFAULT '';
