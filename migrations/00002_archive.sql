-- +goose Up

-- Per-list posting settings added with the intake path.
ALTER TABLE lists
    ADD COLUMN nonmember_action text NOT NULL DEFAULT 'hold'
        CHECK (nonmember_action IN ('hold', 'reject', 'discard')),
    ADD COLUMN max_message_bytes bigint NOT NULL DEFAULT 0 CHECK (max_message_bytes >= 0), -- 0: server limit
    ADD COLUMN subject_threading boolean NOT NULL DEFAULT false;

-- The archive. raw is canonical (CRLF line ends, exactly what readers and
-- members get). Everything else in the row is derived from raw and can be
-- rebuilt (parley archive rethread), except article, which is forever.
CREATE TABLE messages (
    id            bigserial PRIMARY KEY,
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    article       bigint NOT NULL CHECK (article >= 1),
    message_id    text NOT NULL,            -- without <>; synthesised when missing
    msgid_synth   boolean NOT NULL DEFAULT false,
    content_key   bytea NOT NULL,           -- sha256 over what makes two copies "the same post"
    raw           bytea NOT NULL,
    size          integer NOT NULL,
    header_len    integer NOT NULL,         -- bytes up to and including the blank line
    received_at   timestamptz NOT NULL,     -- archive time (IMAP INTERNALDATE)
    sent_at       timestamptz,              -- the Date: header, when it parses
    from_addr     text NOT NULL DEFAULT '',
    from_name     text NOT NULL DEFAULT '',
    subject       text NOT NULL DEFAULT '', -- decoded
    in_reply_to   text,
    refs          text[] NOT NULL DEFAULT '{}', -- References (+In-Reply-To), oldest first, bounded
    parent_msgid  text,                     -- the reference this message replies to
    thread_id     bigint NOT NULL,          -- smallest article of the thread: stable, rebuildable
    mime          jsonb NOT NULL DEFAULT '[]',
    source        text NOT NULL DEFAULT 'smtp' CHECK (source IN ('smtp', 'lmtp', 'approved', 'import')),
    UNIQUE (list_id, article),
    -- Idempotent intake: the same post again is a duplicate; a different
    -- post that reuses a Message-ID is stored as its own article.
    UNIQUE (list_id, message_id, content_key)
);
CREATE INDEX messages_by_msgid ON messages (list_id, message_id);
CREATE INDEX messages_by_thread ON messages (list_id, thread_id, article);
CREATE INDEX messages_by_date ON messages (list_id, received_at);

-- Message-IDs that posts refer to but that are not (yet) in the archive.
-- They hold threads together until the real message arrives, which then
-- joins the thread its replies already formed.
CREATE TABLE ghosts (
    list_id    bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    message_id text NOT NULL,
    thread_id  bigint NOT NULL,
    PRIMARY KEY (list_id, message_id)
);
CREATE INDEX ghosts_by_thread ON ghosts (list_id, thread_id);

-- Posts that did not go straight to the archive: held for a moderator, or
-- discarded (loops, auto-replies, ...) with the reason kept so nothing
-- vanishes without a trace.
CREATE TABLE moderation (
    id          bigserial PRIMARY KEY,
    list_id     bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('held', 'approved', 'rejected', 'discarded')),
    rule        text NOT NULL,
    reason      text NOT NULL,
    mail_from   text NOT NULL,             -- envelope sender ('' for <>)
    from_addr   text NOT NULL DEFAULT '',
    subject     text NOT NULL DEFAULT '',
    message_id  text NOT NULL,
    content_key bytea NOT NULL,
    raw         bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    decided_by  text,
    decision_note text
);
CREATE INDEX moderation_held ON moderation (list_id, id) WHERE state = 'held';
-- A retried post that was held is not held twice.
CREATE UNIQUE INDEX moderation_once ON moderation (list_id, message_id, content_key);

-- Mail to a list's service addresses (-request, -join, -leave, -confirm,
-- -owner, -bounces), kept for the command and bounce processors.
CREATE TABLE inbound (
    id          bigserial PRIMARY KEY,
    list_id     bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('request', 'join', 'leave', 'confirm', 'owner', 'bounce')),
    rcpt        text NOT NULL,
    detail      text NOT NULL DEFAULT '',  -- the +TOKEN or VERP part of the address
    mail_from   text NOT NULL,
    content_key bytea NOT NULL,
    raw         bytea NOT NULL,
    state       text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'done', 'failed')),
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (list_id, kind, rcpt, content_key)
);
CREATE INDEX inbound_new ON inbound (id) WHERE state = 'new';

-- Address patterns that may not post: per list, or server-wide (list_id
-- NULL). '*' matches any run of characters, '?' one; case-insensitive.
CREATE TABLE bans (
    id         bigserial PRIMARY KEY,
    list_id    bigint REFERENCES lists (id) ON DELETE CASCADE,
    pattern    text NOT NULL CHECK (pattern <> '' AND pattern = lower(pattern)),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bans_once ON bans (coalesce(list_id, 0), pattern);

-- Outbound work. A 'post' job stands for "send this archived post to the
-- list's members": one row per post, expanded to recipients by the
-- delivery workers, so intake writes one row however large the list.
-- A 'notice' job is a complete message (body) to explicit recipients
-- (moderator notifications, replies).
CREATE TABLE outbound (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('post', 'notice')),
    list_id         bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    message         bigint REFERENCES messages (id) ON DELETE CASCADE,
    rcpts           text[],
    mail_from       text NOT NULL DEFAULT '',
    body            bytea,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'post' OR message IS NOT NULL),
    CHECK (kind <> 'notice' OR (body IS NOT NULL AND rcpts IS NOT NULL))
);
CREATE INDEX outbound_due ON outbound (next_attempt_at) WHERE state = 'pending';

-- +goose Down
DROP TABLE outbound;
DROP TABLE bans;
DROP TABLE inbound;
DROP TABLE moderation;
DROP TABLE ghosts;
DROP TABLE messages;
ALTER TABLE lists DROP COLUMN nonmember_action, DROP COLUMN max_message_bytes, DROP COLUMN subject_threading;
