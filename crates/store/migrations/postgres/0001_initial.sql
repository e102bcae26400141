-- keygate's PostgreSQL schema: the same tables as the SQLite schema, for many nodes.
-- Times are Unix epoch milliseconds. A plaintext key or secret never appears here: keys are
-- SHA-256 digests, AccessKey secrets AES-256-GCM ciphertexts, passwords argon2id hashes.

CREATE TABLE accounts (
    account_id      BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE ram_users (
    user_id         BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'key-manager', 'member')),
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash   TEXT,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);
CREATE UNIQUE INDEX ram_users_live_name ON ram_users(account_id, name) WHERE deleted_at IS NULL;

CREATE TABLE workspaces (
    workspace_id    TEXT PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    region          TEXT NOT NULL,
    name            TEXT NOT NULL,
    is_default      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces(account_id, region) WHERE is_default;
CREATE UNIQUE INDEX workspaces_name ON workspaces(account_id, region, name);

CREATE TABLE workspace_members (
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL REFERENCES ram_users(user_id),
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE model_grants (
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    model           TEXT NOT NULL,
    inference       BOOLEAN NOT NULL DEFAULT FALSE,
    deploy          BOOLEAN NOT NULL DEFAULT FALSE,
    fine_tune       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (workspace_id, model)
);

CREATE TABLE applications (
    app_id          TEXT PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE api_keys (
    -- A sequence: ids increase and are never reused, even after a delete.
    api_key_id      BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    region          TEXT NOT NULL,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id),
    creator_user_id BIGINT REFERENCES ram_users(user_id),
    created_by      TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    format          TEXT NOT NULL,
    key_digest      BYTEA NOT NULL UNIQUE,
    masked_key      TEXT NOT NULL,
    auth_type       TEXT NOT NULL CHECK (auth_type IN ('All', 'Custom')),
    access_ips      TEXT NOT NULL DEFAULT '[]',
    allow_all_models BOOLEAN NOT NULL DEFAULT TRUE,
    accessible_models TEXT NOT NULL DEFAULT '[]',
    allow_all_apps  BOOLEAN NOT NULL DEFAULT TRUE,
    accessible_apps TEXT NOT NULL DEFAULT '[]',
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    request_count   BIGINT NOT NULL DEFAULT 0,
    legacy_ciphertext BYTEA
);
CREATE INDEX api_keys_by_account ON api_keys(account_id, region);
CREATE INDEX api_keys_by_creator ON api_keys(creator_user_id);

CREATE TABLE access_keys (
    access_key_id   TEXT PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    user_id         BIGINT REFERENCES ram_users(user_id),
    secret_ciphertext BYTEA NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);

CREATE TABLE sessions (
    token_digest    BYTEA PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(account_id),
    user_id         BIGINT REFERENCES ram_users(user_id),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE TABLE signature_nonces (
    nonce           TEXT PRIMARY KEY,
    seen_at         BIGINT NOT NULL
);

CREATE TABLE audit_log (
    audit_id        BIGSERIAL PRIMARY KEY,
    at              BIGINT NOT NULL,
    account_id      BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT '',
    client_address  TEXT NOT NULL DEFAULT '',
    region          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_account ON audit_log(account_id, audit_id);

-- The change feed. Versions are assigned under a transaction-scoped advisory lock as
-- MAX + 1, so they have no gaps and commit in order: a follower that has applied version N
-- has seen every change up to N.
CREATE TABLE changes (
    version         BIGINT PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    revoked         TEXT NOT NULL DEFAULT '',
    at              BIGINT NOT NULL
);
