-- +goose Up

-- Tokens also confirm an owner's commands (challenge-response) and
-- decisions on held posts (replies to a moderator notice).
ALTER TABLE tokens DROP CONSTRAINT tokens_action_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_action_check
    CHECK (action IN ('subscribe', 'unsubscribe', 'command', 'held'));
ALTER TABLE tokens ADD COLUMN payload text NOT NULL DEFAULT '';

-- The per-list moderator password for the Approved: header (bcrypt); ''
-- means none is set.
ALTER TABLE lists ADD COLUMN moderator_password text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE lists DROP COLUMN moderator_password;
ALTER TABLE tokens DROP COLUMN payload;
ALTER TABLE tokens DROP CONSTRAINT tokens_action_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_action_check CHECK (action IN ('subscribe', 'unsubscribe'));
