-- +goose Up

-- Confirmation tokens: random, stored only as a SHA-256 hash, single-use,
-- expiring, bound to a list, an address and an action.
CREATE TABLE tokens (
    id           bigserial PRIMARY KEY,
    hash         bytea NOT NULL UNIQUE,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address      text NOT NULL,           -- as given
    address_norm text NOT NULL,
    action       text NOT NULL CHECK (action IN ('subscribe', 'unsubscribe')),
    mode         text NOT NULL DEFAULT 'regular',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

-- Automatic replies sent per address per day, to cap them (no mail cannon,
-- no loop with an autoresponder).
CREATE TABLE reply_counts (
    address_norm text NOT NULL,
    day          date NOT NULL,
    count        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (address_norm, day)
);

-- +goose Down
DROP TABLE reply_counts;
DROP TABLE tokens;
