-- +goose Up

-- Bounce events per member address and list. A member's score is the sum
-- of the weights of its events younger than the list's stale age, so old
-- trouble expires on its own. author_policy events (refusals because of
-- the author's DMARC/DKIM/SPF) are kept for the record with weight 0.
CREATE TABLE bounce_events (
    id           bigserial PRIMARY KEY,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address_norm text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('hard', 'soft', 'author_policy')),
    weight       numeric NOT NULL,
    status       text NOT NULL DEFAULT '',
    diagnostic   text NOT NULL DEFAULT '',
    source       text NOT NULL CHECK (source IN ('dsn', 'smtp')),
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bounce_events_member ON bounce_events (list_id, address_norm, at);

ALTER TABLE members ADD COLUMN disabled_reason text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE members DROP COLUMN disabled_reason;
DROP TABLE bounce_events;
