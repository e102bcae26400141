-- keygate's SQLite schema. Times are Unix epoch milliseconds. A plaintext key or secret
-- never appears here: keys are SHA-256 digests, AccessKey secrets are AES-256-GCM
-- ciphertexts under the master key, passwords are argon2id hashes.

CREATE TABLE accounts (
    account_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE ram_users (
    user_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'key-manager', 'member')),
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash   TEXT,
    created_at      INTEGER NOT NULL,
    -- Deletion is final: the row stays so that names in the audit log resolve.
    deleted_at      INTEGER
);
CREATE UNIQUE INDEX ram_users_live_name ON ram_users(account_id, name) WHERE deleted_at IS NULL;

CREATE TABLE workspaces (
    workspace_id    TEXT PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    region          TEXT NOT NULL,
    name            TEXT NOT NULL,
    is_default      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces(account_id, region) WHERE is_default = 1;
CREATE UNIQUE INDEX workspaces_name ON workspaces(account_id, region, name);

CREATE TABLE workspace_members (
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES ram_users(user_id),
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE model_grants (
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    model           TEXT NOT NULL,
    inference       INTEGER NOT NULL DEFAULT 0,
    deploy          INTEGER NOT NULL DEFAULT 0,
    fine_tune       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, model)
);

CREATE TABLE applications (
    app_id          TEXT PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    -- AUTOINCREMENT: ids increase and are never reused, even after a delete.
    api_key_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    region          TEXT NOT NULL,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(workspace_id),
    creator_user_id INTEGER REFERENCES ram_users(user_id),
    created_by      TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    format          TEXT NOT NULL,
    key_digest      BLOB NOT NULL UNIQUE,
    masked_key      TEXT NOT NULL,
    auth_type       TEXT NOT NULL CHECK (auth_type IN ('All', 'Custom')),
    access_ips      TEXT NOT NULL DEFAULT '[]',
    allow_all_models INTEGER NOT NULL DEFAULT 1,
    accessible_models TEXT NOT NULL DEFAULT '[]',
    allow_all_apps  INTEGER NOT NULL DEFAULT 1,
    accessible_apps TEXT NOT NULL DEFAULT '[]',
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    request_count   INTEGER NOT NULL DEFAULT 0,
    -- Imported legacy keys only: the plaintext encrypted with the master key.
    legacy_ciphertext BLOB
);
CREATE INDEX api_keys_by_account ON api_keys(account_id, region);
CREATE INDEX api_keys_by_creator ON api_keys(creator_user_id);

CREATE TABLE access_keys (
    access_key_id   TEXT PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    user_id         INTEGER REFERENCES ram_users(user_id),
    secret_ciphertext BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);

CREATE TABLE sessions (
    token_digest    BLOB PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id),
    user_id         INTEGER REFERENCES ram_users(user_id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

-- ACS3 signature nonces seen within the clock window (replay protection).
CREATE TABLE signature_nonces (
    nonce           TEXT PRIMARY KEY,
    seen_at         INTEGER NOT NULL
);

CREATE TABLE audit_log (
    audit_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    account_id      INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT '',
    client_address  TEXT NOT NULL DEFAULT '',
    region          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_account ON audit_log(account_id, audit_id);

-- The change feed: every change that affects verification gets a version.
CREATE TABLE changes (
    version         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    at              INTEGER NOT NULL
);
