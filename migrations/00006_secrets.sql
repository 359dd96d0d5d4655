-- +goose Up

-- Server-wide secrets, made once and shared by every parley process
-- (e.g. the key that signs one-click unsubscribe links).
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE secrets;
