-- +goose Up

-- parley's schema, as one baseline. Nothing had been released when it was
-- written (2026-12), so the pre-release chain of 18 migrations was squashed
-- into this file; a database still at that chain's last version is
-- converted to this layout by prerelease/from-18.sql (internal/db) before
-- goose runs. From here on every change is a new numbered file after this
-- one, forward only: parley never runs a Down migration.
--
-- Tables and indexes live in the numbered goose files. PL/pgSQL functions
-- live in functions/, one file each, and are replaced when their file
-- changes (internal/db); only a function an index depends on
-- (message_text) is defined here, with its index.
--
-- Each table has one owner, the Go package that writes it and that others
-- read it through (docs/architecture.md has the whole map); the owner is
-- named in each section's heading.

-- ─── lists (internal/lists) ──────────────────────────────────────────────

-- Domains parley serves. A list's domain is created with its first list;
-- mail to any other domain is refused at RCPT time (no open relay).
CREATE TABLE domains (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> '' AND name = lower(name)),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per list. local_part is restricted to what is also a safe IMAP
-- mailbox and file name. uidvalidity is fixed at creation and never
-- changes; next_article is the per-list counter whose values are the
-- archive's article numbers (IMAP UIDs), advanced inside the archiving
-- transaction under the row's lock, so numbers follow commit order without
-- gaps.
CREATE TABLE lists (
    id                 bigserial PRIMARY KEY,
    domain_id          bigint NOT NULL REFERENCES domains (id),
    local_part         text NOT NULL CHECK (local_part ~ '^[a-z0-9][a-z0-9._-]*$' AND length(local_part) <= 64),
    address            text NOT NULL UNIQUE,
    display_name       text NOT NULL DEFAULT '',
    description        text NOT NULL DEFAULT '',
    post_policy        text NOT NULL DEFAULT 'members'
                       CHECK (post_policy IN ('open', 'members', 'moderated', 'announce')),
    archive            text NOT NULL DEFAULT 'public' CHECK (archive IN ('public', 'private')),
    subject_prefix     text NOT NULL DEFAULT '',
    uidvalidity        bigint NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
    next_article       bigint NOT NULL DEFAULT 1 CHECK (next_article >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- What happens to a non-member's post to a members-only list.
    nonmember_action   text NOT NULL DEFAULT 'hold' CHECK (nonmember_action IN ('hold', 'reject', 'discard')),
    max_message_bytes  bigint NOT NULL DEFAULT 0 CHECK (max_message_bytes >= 0), -- 0: the server's limit
    -- A "Re:" without references joins the latest thread with its subject.
    subject_threading  boolean NOT NULL DEFAULT false,
    -- 'policy' rewrites From: for authors whose domain publishes
    -- p=quarantine or p=reject, 'always' for everyone, 'never' for no one.
    dmarc_mitigation   text NOT NULL DEFAULT 'policy' CHECK (dmarc_mitigation IN ('policy', 'always', 'never')),
    -- On, each copy has its own return path, so every bounce names its
    -- member; off, copies to one domain share SMTP transactions.
    verp               boolean NOT NULL DEFAULT true,
    -- The moderator password for the Approved: header (bcrypt; '' none).
    moderator_password text NOT NULL DEFAULT '',
    -- Who may see the member list with the "who" command.
    roster             text NOT NULL DEFAULT 'owners' CHECK (roster IN ('owners', 'members', 'public')),
    -- 'confirm': a confirmed subscription takes effect; 'approve': it then
    -- waits for an owner's approval too.
    subscribe_policy   text NOT NULL DEFAULT 'confirm' CHECK (subscribe_policy IN ('confirm', 'approve')),
    UNIQUE (domain_id, local_part)
);

-- ─── members (internal/members) ──────────────────────────────────────────

-- Subscriptions and roles. address is kept as the person gave it;
-- address_norm (local part as given, domain lower-cased) is what compares.
CREATE TABLE members (
    id               bigserial PRIMARY KEY,
    list_id          bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address          text NOT NULL,
    address_norm     text NOT NULL,
    display_name     text NOT NULL DEFAULT '',
    role             text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator', 'owner')),
    delivery         text NOT NULL DEFAULT 'regular' CHECK (delivery IN ('regular', 'digest', 'nomail')),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    moderated        boolean NOT NULL DEFAULT false,
    joined_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    disabled_reason  text NOT NULL DEFAULT '',
    -- A member may choose not to receive their own posts.
    self_copy        boolean NOT NULL DEFAULT true,
    -- The member's password for the private IMAP archive (bcrypt; '' none).
    archive_password text NOT NULL DEFAULT '',
    UNIQUE (list_id, address_norm)
);
-- Fan-out reads the active, mail-receiving members of one list.
CREATE INDEX members_fanout ON members (list_id) WHERE status = 'active' AND delivery <> 'nomail';
-- "Which lists is this address on?" (commands, bounces, IMAP logins).
CREATE INDEX members_by_address ON members (address_norm);

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- The archive. raw is canonical (CRLF line ends, exactly what readers and
-- members get). Everything else in the row is derived from raw and can be
-- rebuilt (parley archive rethread), except article, which is forever.
-- functions/archive_posts.sql writes it.
CREATE TABLE messages (
    id           bigserial PRIMARY KEY,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    article      bigint NOT NULL CHECK (article >= 1),
    message_id   text NOT NULL,            -- without <>; synthesised when missing
    msgid_synth  boolean NOT NULL DEFAULT false,
    content_key  bytea NOT NULL,           -- sha256 over what makes two copies "the same post"
    raw          bytea NOT NULL,
    size         integer NOT NULL,
    header_len   integer NOT NULL,         -- bytes up to and including the blank line
    received_at  timestamptz NOT NULL,     -- archive time (IMAP INTERNALDATE)
    sent_at      timestamptz,              -- the Date: header, when it parses
    from_addr    text NOT NULL DEFAULT '',
    from_name    text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '', -- decoded
    subject_key  text NOT NULL DEFAULT '', -- mailmsg.BaseSubject: for subject-only threading
    in_reply_to  text,
    refs         text[] NOT NULL DEFAULT '{}', -- References (+In-Reply-To), oldest first, bounded
    parent_msgid text,                     -- the reference this message replies to
    thread_id    bigint NOT NULL DEFAULT 0, -- smallest article of the thread: stable, rebuildable
    source       text NOT NULL DEFAULT 'smtp' CHECK (source IN ('smtp', 'lmtp', 'approved', 'import')),
    -- What IMAP FETCH needs besides the bytes (ENVELOPE and BODYSTRUCTURE,
    -- internal/imapmeta's binary form). NULL, or a form of another
    -- version, means the server computes it from raw; `parley archive
    -- rethread` stores it again.
    imap         bytea,
    UNIQUE (list_id, article),
    -- Idempotent intake: the same post again is a duplicate; a different
    -- post that reuses a Message-ID is stored as its own article.
    UNIQUE (list_id, message_id, content_key)
);
CREATE INDEX messages_by_msgid ON messages (list_id, message_id);
CREATE INDEX messages_by_thread ON messages (list_id, thread_id, article);
CREATE INDEX messages_by_date ON messages (list_id, received_at);
CREATE INDEX messages_by_subject ON messages (list_id, subject_key, article);

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

-- IMAP SEARCH is a case-insensitive substring match (RFC 3501 6.4.4). A
-- trigram index answers that without reading every message: the search
-- looks the needle's trigrams up and rechecks only the candidates.
-- pg_trgm is a trusted extension (PostgreSQL 13 and later), so a database
-- owner may create it; it ships with the PostgreSQL server packages.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- message_text is the text IMAP SEARCH matches (internal/imapd/search.go):
-- the raw message in PostgreSQL's escape encoding, which every byte string
-- maps to, valid UTF-8 or not. It is a function of our own so that the
-- planner knows what it costs: decoding a whole message and matching it
-- against a pattern is worth thousands of comparisons, not the one that
-- encode()'s built-in cost says. Misled by that, PostgreSQL read every
-- message of an archive of a few thousand (140 ms for 6,000) instead of
-- asking the trigram index (under 1 ms). plpgsql, because a SQL function
-- would be inlined and its cost forgotten. It lives here, not in
-- functions/, because an index is built on it: changing it means a new
-- migration that rebuilds the index.
-- +goose StatementBegin
CREATE FUNCTION message_text(raw bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000
    AS $$ BEGIN RETURN encode(raw, 'escape'); END $$;
-- +goose StatementEnd
CREATE INDEX messages_text_trgm ON messages USING gin (message_text(raw) gin_trgm_ops);
-- The decoded From and Subject get their own, small indexes.
CREATE INDEX messages_from_trgm ON messages USING gin ((from_name || ' <' || from_addr || '>') gin_trgm_ops);
CREATE INDEX messages_subject_trgm ON messages USING gin (subject gin_trgm_ops);

-- ─── moderation (internal/moderation) ────────────────────────────────────

-- Posts that did not go straight to the archive: held for a moderator, or
-- discarded (loops, auto-replies, ...) with the reason kept so nothing
-- vanishes without a trace.
CREATE TABLE moderation (
    id            bigserial PRIMARY KEY,
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    state         text NOT NULL CHECK (state IN ('held', 'approved', 'rejected', 'discarded')),
    rule          text NOT NULL,
    reason        text NOT NULL,
    mail_from     text NOT NULL,             -- envelope sender ('' for <>)
    from_addr     text NOT NULL DEFAULT '',
    subject       text NOT NULL DEFAULT '',
    message_id    text NOT NULL,
    content_key   bytea NOT NULL,
    raw           bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    decided_by    text,
    decision_note text
);
CREATE INDEX moderation_held ON moderation (list_id, id) WHERE state = 'held';
-- A retried post that was held is not held twice.
CREATE UNIQUE INDEX moderation_once ON moderation (list_id, message_id, content_key);

-- ─── inbound (internal/inbound) ──────────────────────────────────────────

-- Mail to a list's service addresses (-request, -join, -leave, -confirm,
-- -owner, -bounces), kept for the command and bounce processors. One that
-- keeps failing is set aside ('failed') after a few attempts instead of
-- blocking the ones behind it; its bytes stay for inspection.
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
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text NOT NULL DEFAULT '',
    UNIQUE (list_id, kind, rcpt, content_key)
);
CREATE INDEX inbound_new ON inbound (id) WHERE state = 'new';

-- ─── bans (internal/policy) ──────────────────────────────────────────────

-- Address patterns that may not post: per list, or server-wide (list_id
-- NULL). '*' matches any run of characters, '?' one; case-insensitive.
CREATE TABLE bans (
    id         bigserial PRIMARY KEY,
    list_id    bigint REFERENCES lists (id) ON DELETE CASCADE,
    pattern    text NOT NULL CHECK (pattern <> '' AND pattern = lower(pattern)),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bans_once ON bans (coalesce(list_id, 0), pattern);

-- ─── outbound queue (internal/outqueue) ──────────────────────────────────

-- Outbound work. A 'post' job stands for "send this archived post to the
-- list's members": one row per post, expanded to recipients by the
-- delivery workers, so intake writes one row however large the list
-- (functions/outbound_post.sql). A 'notice' job is a complete message
-- (body) to explicit recipients (moderator notifications, replies).
-- 'expanded' marks a job whose deliveries rows exist.
CREATE TABLE outbound (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('post', 'notice')),
    list_id         bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    message         bigint REFERENCES messages (id) ON DELETE CASCADE,
    rcpts           text[],
    mail_from       text NOT NULL DEFAULT '',
    body            bytea,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'expanded', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'post' OR message IS NOT NULL),
    CHECK (kind <> 'notice' OR (body IS NOT NULL AND rcpts IS NOT NULL))
);
CREATE INDEX outbound_due ON outbound (next_attempt_at) WHERE state = 'pending';

-- One row per copy to send: a recipient of an archived post (expanded from
-- its 'post' job) or of a notice. Workers claim rows with a lease (FOR
-- UPDATE SKIP LOCKED), so any number of parley processes share the queue,
-- and a crashed worker's rows come back when the lease expires.
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

-- ─── tokens (internal/tokens) ────────────────────────────────────────────

-- Confirmation tokens: random, stored only as a SHA-256 hash, single-use,
-- expiring, bound to a list, an address and an action: a subscription or
-- unsubscription, an owner's command (challenge-response), a decision on a
-- held post (a reply to a moderator notice), a member's setting change.
CREATE TABLE tokens (
    id           bigserial PRIMARY KEY,
    hash         bytea NOT NULL UNIQUE,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address      text NOT NULL,           -- as given
    address_norm text NOT NULL,
    action       text NOT NULL CHECK (action IN ('subscribe', 'unsubscribe', 'command', 'held', 'settings')),
    mode         text NOT NULL DEFAULT 'regular',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    payload      text NOT NULL DEFAULT ''
);

-- ─── command mail (internal/commands) ────────────────────────────────────

-- Automatic replies sent per address per day, to cap them (no mail cannon,
-- no loop with an autoresponder).
CREATE TABLE reply_counts (
    address_norm text NOT NULL,
    day          date NOT NULL,
    count        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (address_norm, day)
);

-- Per-list overrides of the reply texts (Go text/template).
CREATE TABLE list_templates (
    list_id    bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    name       text NOT NULL,
    body       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, name)
);

-- ─── bounces (internal/bounce) ───────────────────────────────────────────

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

-- ─── DKIM keys (internal/dkimkeys) ───────────────────────────────────────

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

-- ─── secrets (internal/unsub) ────────────────────────────────────────────

-- Server-wide secrets, made once and shared by every parley process (the
-- key that signs one-click unsubscribe links).
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- ─── schema (internal/db) ────────────────────────────────────────────────

-- The SQL functions of functions/ as last applied: one row per file, with
-- the hash of its text, so a function is replaced only when its file
-- changed (and dropped when its file is gone).
CREATE TABLE schema_functions (
    name       text PRIMARY KEY,
    sha256     bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
