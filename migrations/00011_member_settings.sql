-- +goose Up

-- A member may choose not to receive their own posts.
ALTER TABLE members ADD COLUMN self_copy boolean NOT NULL DEFAULT true;
-- The member's password for the private IMAP archive (bcrypt; '' none).
ALTER TABLE members ADD COLUMN archive_password text NOT NULL DEFAULT '';
-- Who may see the member list with the "who" command.
ALTER TABLE lists ADD COLUMN roster text NOT NULL DEFAULT 'owners' CHECK (roster IN ('owners', 'members', 'public'));
-- Tokens also confirm a member's own setting changes.
ALTER TABLE tokens DROP CONSTRAINT tokens_action_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_action_check
    CHECK (action IN ('subscribe', 'unsubscribe', 'command', 'held', 'settings'));

-- +goose Down
ALTER TABLE tokens DROP CONSTRAINT tokens_action_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_action_check CHECK (action IN ('subscribe', 'unsubscribe', 'command', 'held'));
ALTER TABLE lists DROP COLUMN roster;
ALTER TABLE members DROP COLUMN archive_password;
ALTER TABLE members DROP COLUMN self_copy;
