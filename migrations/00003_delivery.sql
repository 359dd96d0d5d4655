-- +goose Up

-- One row per copy to send: a recipient of an archived post (expanded from
-- its 'post' outbound job) or of a notice. Workers claim rows with a lease
-- (FOR UPDATE SKIP LOCKED), so any number of parley processes share the
-- queue, and a crashed worker's rows come back when the lease expires.
CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    job             bigint NOT NULL REFERENCES outbound (id) ON DELETE CASCADE,
    list_id         bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    rcpt            text NOT NULL,
    domain          text NOT NULL,             -- lower case, for per-domain limits and grouping
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_code       integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (job, rcpt)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'sending';

-- 'expanded' marks an outbound job whose deliveries rows exist.
ALTER TABLE outbound DROP CONSTRAINT outbound_state_check;
ALTER TABLE outbound ADD CONSTRAINT outbound_state_check
    CHECK (state IN ('pending', 'sending', 'expanded', 'done', 'failed'));

-- +goose Down
ALTER TABLE outbound DROP CONSTRAINT outbound_state_check;
ALTER TABLE outbound ADD CONSTRAINT outbound_state_check CHECK (state IN ('pending', 'sending', 'done', 'failed'));
DROP TABLE deliveries;
