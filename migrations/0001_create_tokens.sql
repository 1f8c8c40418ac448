-- Tokens: only a keyed BLAKE2b-256 digest of each secret is stored, never the secret.
CREATE TABLE tokens (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        text        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 128),
    scopes         text[]      NOT NULL DEFAULT '{}',
    secret_hash    bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    hash_key_id    integer     NOT NULL,
    display_prefix text        NOT NULL,
    name           text        CHECK (char_length(name) <= 100),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    created_by     text        NOT NULL
);

-- Verification looks a token up by digest; no two tokens may share one.
CREATE UNIQUE INDEX tokens_secret_hash_key ON tokens (secret_hash);
-- Listing pages through one user's tokens newest first.
CREATE INDEX tokens_user_created_idx ON tokens (user_id, created_at DESC, id DESC);
-- Expiry sweeps and purges select by expiry.
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);
