-- +goose Up

-- ─── members (internal/members) ──────────────────────────────────────────

-- Subscriptions waiting for an owner's approval (lists.subscribe_policy =
-- 'approve'): one pending request per address and list; a decided one is
-- kept, with who decided and when, so that a second owner acting on it is
-- told, and the requester is told once.
CREATE TABLE sub_requests (
    id           bigserial PRIMARY KEY,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address      text NOT NULL,
    address_norm text NOT NULL,
    delivery     text NOT NULL DEFAULT 'regular',
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'refused')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    decided_by   text NOT NULL DEFAULT '',
    reason       text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX sub_requests_pending ON sub_requests (list_id, address_norm) WHERE state = 'pending';
CREATE INDEX sub_requests_list ON sub_requests (list_id, id);

-- ─── lists (internal/lists) ──────────────────────────────────────────────

-- goodbye: tell a member who is removed (by an owner, the CLI, or a
-- one-click unsubscribe) that they are off the list.
ALTER TABLE lists ADD COLUMN goodbye boolean NOT NULL DEFAULT true;

-- Joins and leaves, for the figures an owner reports (parley list stats):
-- the members table holds who is on a list now, not who left.
CREATE TABLE member_events (
    id           bigserial PRIMARY KEY,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address_norm text NOT NULL,
    event        text NOT NULL CHECK (event IN ('joined', 'left')),
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_events_list ON member_events (list_id, at);

-- The members there are joined when they joined.
INSERT INTO member_events (list_id, address_norm, event, at)
SELECT list_id, address_norm, 'joined', joined_at FROM members;

-- A member's secret feed URL for a private list's archive (the web
-- archive's /LIST/feed/TOKEN/atom.xml): feed readers cannot log in.
-- '' none; `parley member feed-url` makes or revokes it.
ALTER TABLE members ADD COLUMN feed_token text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX members_feed_token ON members (feed_token) WHERE feed_token <> '';

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- Posts may come by news (internal/nntpd's POST).
ALTER TABLE messages DROP CONSTRAINT messages_source_check,
    ADD CONSTRAINT messages_source_check CHECK (source IN ('smtp', 'lmtp', 'nntp', 'approved', 'import'));

-- A list's newsgroup name when it is not the one derived from its
-- address (internal/nntpd's GroupName); '' derived.
ALTER TABLE lists ADD COLUMN newsgroup text NOT NULL DEFAULT ''
    CHECK (newsgroup = '' OR newsgroup ~ '^[a-z0-9][a-z0-9+_-]*(\.[a-z0-9][a-z0-9+_-]*)+$');
CREATE UNIQUE INDEX lists_newsgroup ON lists (newsgroup) WHERE newsgroup <> '';
