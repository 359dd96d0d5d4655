-- +goose Up

-- DKIM signing keys per domain. They live in PostgreSQL, like all of
-- parley's state, so every parley process signs with the same keys. A
-- domain may have several (RSA and Ed25519): each copy gets a signature
-- from each.
CREATE TABLE dkim_keys (
    id          bigserial PRIMARY KEY,
    domain      text NOT NULL CHECK (domain = lower(domain)),
    selector    text NOT NULL CHECK (selector ~ '^[a-z0-9][a-z0-9-]*$'),
    algorithm   text NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    private_key text NOT NULL,          -- PKCS #8, PEM
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain, selector)
);

-- +goose Down
DROP TABLE dkim_keys;
