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
    subject_key   text NOT NULL DEFAULT '', -- mailmsg.BaseSubject: for subject-only threading
    in_reply_to   text,
    refs          text[] NOT NULL DEFAULT '{}', -- References (+In-Reply-To), oldest first, bounded
    parent_msgid  text,                     -- the reference this message replies to
    thread_id     bigint NOT NULL DEFAULT 0, -- smallest article of the thread: stable, rebuildable
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

-- archive_thread places article p_article (message id p_msgid, ancestors
-- p_refs oldest first) in a thread of list p_list and returns the thread
-- id. A post joins every thread that holds one of its ancestors (as a post
-- or a ghost) or a ghost of itself (replies that came first); threads it
-- connects are merged under the smallest id; its unseen ancestors become
-- ghosts. Only posts with a smaller article count as present: when posts
-- are placed as they arrive that is all of them, and when a rebuild places
-- them again in article order it hides the later ones, so both give the
-- same result. Nothing here follows a chain of references.
-- p_subject_key, when not empty (the list groups by subject and this is a
-- "Re:" without references), also joins the latest earlier post with that
-- base subject.
--
-- Its queries are planned for each call (force_custom_plan): a plan cached
-- while the archive was small (say, at the start of a long import on one
-- connection) may pick an index on list_id alone, which costs a scan of
-- the whole list per post once the list is large.
-- +goose StatementBegin
CREATE FUNCTION archive_thread(p_list bigint, p_article bigint, p_msgid text, p_refs text[], p_subject_key text)
RETURNS bigint LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    found bigint[];
    tid bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT t), '{}') INTO found FROM (
        SELECT thread_id AS t FROM messages
         WHERE list_id = p_list AND message_id = ANY (p_refs || p_msgid) AND article < p_article
        UNION
        SELECT thread_id FROM ghosts WHERE list_id = p_list AND message_id = ANY (p_refs || p_msgid)
        UNION
        (SELECT thread_id FROM messages
          WHERE p_subject_key <> '' AND list_id = p_list AND subject_key = p_subject_key AND article < p_article
          ORDER BY article DESC LIMIT 1)) x;
    SELECT least(p_article, min(f)) INTO tid FROM unnest(found) AS f;
    IF cardinality(found) > 1 OR (cardinality(found) = 1 AND found[1] <> tid) THEN
        UPDATE messages SET thread_id = tid WHERE list_id = p_list AND thread_id = ANY (found) AND thread_id <> tid;
        UPDATE ghosts SET thread_id = tid WHERE list_id = p_list AND thread_id = ANY (found) AND thread_id <> tid;
    END IF;
    DELETE FROM ghosts WHERE list_id = p_list AND message_id = p_msgid;
    INSERT INTO ghosts (list_id, message_id, thread_id)
    SELECT p_list, r, tid FROM unnest(p_refs) AS r
     WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.list_id = p_list AND m.message_id = r AND m.article < p_article)
    ON CONFLICT (list_id, message_id) DO UPDATE SET thread_id = EXCLUDED.thread_id;
    RETURN tid;
END $$;
-- +goose StatementEnd

-- archive_store writes a post as article p_article of list p_list, with
-- its thread, and queues its delivery to the members when p_queue. The
-- caller holds the list row's lock and has checked for a duplicate.
-- +goose StatementBegin
CREATE FUNCTION archive_store(
    p_list bigint, p_article bigint, p_msgid text, p_synth boolean, p_key bytea, p_raw bytea,
    p_header_len integer, p_received timestamptz, p_sent timestamptz, p_from text, p_from_name text,
    p_subject text, p_subject_key text, p_subject_lookup text, p_in_reply_to text, p_refs text[],
    p_parent text, p_mime jsonb, p_source text, p_queue boolean, OUT id bigint, OUT thread_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    thread_id := archive_thread(p_list, p_article, p_msgid, p_refs, p_subject_lookup);
    INSERT INTO messages (list_id, article, message_id, msgid_synth, content_key, raw, size, header_len,
                          received_at, sent_at, from_addr, from_name, subject, subject_key, in_reply_to,
                          refs, parent_msgid, thread_id, mime, source)
    VALUES (p_list, p_article, p_msgid, p_synth, p_key, p_raw, length(p_raw), p_header_len, p_received, p_sent,
            p_from, p_from_name, p_subject, p_subject_key, p_in_reply_to, p_refs, p_parent, thread_id, p_mime,
            p_source)
    RETURNING messages.id INTO id;
    IF p_queue THEN
        INSERT INTO outbound (kind, list_id, message) VALUES ('post', p_list, id);
    END IF;
END $$;
-- +goose StatementEnd

-- archive_posts archives a batch of posts in order, in one call (one round
-- trip): per-post fields come as a JSON array of objects, the bytes as
-- bytea arrays. Each list's row is locked on first use, which orders posts
-- to one list (numbers follow commit order, without gaps) and makes the
-- duplicate check exact: the same post again (same list, Message-ID and
-- content) changes nothing and comes back with duplicate = true. Article
-- counters are advanced in memory and written once per list at the end:
-- updating the same row once per post inside one transaction would leave
-- a chain of row versions that every later access has to walk.
--
-- No NOTIFY here: a notifying transaction holds a database-wide lock
-- through its commit, which would serialise every intake commit behind one
-- WAL flush at a time; parley notifies after commit (internal/notify).
-- +goose StatementBegin
CREATE FUNCTION archive_posts(p_posts jsonb, p_raw bytea[], p_key bytea[])
RETURNS TABLE (id bigint, article bigint, thread_id bigint, duplicate boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    p jsonb;
    i integer := 0;
    l bigint;
    next jsonb := '{}';
BEGIN
    FOR p IN SELECT value FROM jsonb_array_elements(p_posts) LOOP
        i := i + 1;
        l := (p->>'list')::bigint;
        IF NOT next ? l::text THEN
            next := next || jsonb_build_object(l::text,
                (SELECT lists.next_article FROM lists WHERE lists.id = l FOR UPDATE));
        END IF;
        SELECT m.id, m.article, m.thread_id, true INTO id, article, thread_id, duplicate
          FROM messages m WHERE m.list_id = l AND m.message_id = p->>'msgid' AND m.content_key = p_key[i];
        IF NOT FOUND THEN
            article := (next->>l::text)::bigint;
            next := jsonb_set(next, ARRAY[l::text], to_jsonb(article + 1));
            duplicate := false;
            SELECT s.id, s.thread_id INTO id, thread_id FROM archive_store(
                l, article, p->>'msgid', (p->>'synth')::boolean, p_key[i], p_raw[i],
                (p->>'header_len')::integer, (p->>'received')::timestamptz, (p->>'sent')::timestamptz,
                p->>'from', p->>'from_name', p->>'subject', p->>'subject_key', p->>'subject_lookup',
                p->>'in_reply_to',
                ARRAY(SELECT jsonb_array_elements_text(p->'refs')), p->>'parent', p->'mime',
                p->>'source', (p->>'queue')::boolean) s;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE lists SET next_article = (next->>lists.id::text)::bigint
     WHERE lists.id IN (SELECT k::bigint FROM jsonb_object_keys(next) AS k);
END $$;
-- +goose StatementEnd

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
DROP FUNCTION archive_posts(jsonb, bytea[], bytea[]);
DROP FUNCTION archive_store(bigint, bigint, text, boolean, bytea, bytea, integer, timestamptz, timestamptz, text, text, text, text, text, text, text[], text, jsonb, text, boolean);
DROP FUNCTION archive_thread(bigint, bigint, text, text[], text);
DROP TABLE outbound;
DROP TABLE bans;
DROP TABLE inbound;
DROP TABLE moderation;
DROP TABLE ghosts;
DROP TABLE messages;
ALTER TABLE lists DROP COLUMN nonmember_action, DROP COLUMN max_message_bytes, DROP COLUMN subject_threading;
