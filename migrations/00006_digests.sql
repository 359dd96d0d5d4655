-- +goose Up

-- ─── lists (internal/lists) ──────────────────────────────────────────────

-- Digests. An issue is cut when the posts waiting for it pass
-- digest_threshold bytes (0: no size trigger) or at digest_schedule
-- ('daily HH:MM', 'weekly DAY HH:MM' or 'none') in the time zone
-- digest_tz; never empty. The volume number goes up each digest_volume
-- period and the issue number starts again at 1, as Mailman numbers them.
-- digest_formats are the formats members may choose.
ALTER TABLE lists
    ADD COLUMN digest_threshold bigint NOT NULL DEFAULT 30720 CHECK (digest_threshold >= 0),
    ADD COLUMN digest_schedule  text NOT NULL DEFAULT 'daily 06:00'
        CHECK (digest_schedule ~ '^(none|daily ([01][0-9]|2[0-3]):[0-5][0-9]|weekly (mon|tue|wed|thu|fri|sat|sun) ([01][0-9]|2[0-3]):[0-5][0-9])$'),
    ADD COLUMN digest_tz        text NOT NULL DEFAULT 'UTC' CHECK (digest_tz <> ''),
    ADD COLUMN digest_volume    text NOT NULL DEFAULT 'yearly' CHECK (digest_volume IN ('yearly', 'monthly', 'never')),
    ADD COLUMN digest_formats   text[] NOT NULL DEFAULT '{mime,plain,summary}'
        CHECK (cardinality(digest_formats) > 0 AND digest_formats <@ '{mime,plain,summary}'),
    -- A text added to every copy and digest ('' none); internal/deliver's
    -- footer.go says where and how, and which {placeholders} it fills.
    ADD COLUMN footer           text NOT NULL DEFAULT '',
    -- Where replies go: 'author' (Reply-To as the author left it), 'list',
    -- or an address.
    ADD COLUMN reply_to         text NOT NULL DEFAULT 'author'
        CHECK (reply_to IN ('author', 'list') OR reply_to ~ '^[^@\s]+@[^@\s]+$');

-- ─── members (internal/members) ──────────────────────────────────────────

-- 'digest' is the MIME digest; 'digest-plain' the RFC 1153 one; 'summary'
-- one line per thread.
ALTER TABLE members DROP CONSTRAINT members_delivery_check;
ALTER TABLE members ADD CONSTRAINT members_delivery_check
    CHECK (delivery IN ('regular', 'digest', 'digest-plain', 'summary', 'nomail'));

-- The stretches of a list's articles a member takes in digests: from the
-- first article numbered after they chose a digest, until (not including)
-- the first numbered after they left it (NULL while they still take
-- one). A post's copy goes to the members none of whose spans holds its
-- article, and a digest issue to the members whose spans meet its range,
-- with the articles their spans hold: so switching modes mid-period loses
-- no post and doubles none, whenever the post's delivery is expanded.
-- Spans wholly before the last issue are dropped when an issue is cut.
CREATE TABLE digest_spans (
    id            bigserial PRIMARY KEY,
    member_id     bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    format        text NOT NULL CHECK (format IN ('mime', 'plain', 'summary')),
    from_article  bigint NOT NULL CHECK (from_article >= 1),
    until_article bigint CHECK (until_article > from_article),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX digest_spans_open ON digest_spans (member_id) WHERE until_article IS NULL;
CREATE INDEX digest_spans_member ON digest_spans (member_id, from_article);
CREATE INDEX digest_spans_list ON digest_spans (list_id, from_article);

-- Members who chose a digest before digests were sent take them from the
-- next post on.
INSERT INTO digest_spans (member_id, list_id, format, from_article)
SELECT m.id, m.list_id, 'mime', l.next_article
  FROM members m JOIN lists l ON l.id = m.list_id
 WHERE m.delivery = 'digest';

-- ─── digests (internal/digest) ───────────────────────────────────────────

-- One row per digest issue: a range of the list's articles (posts that
-- were distributed; imported ones are left out), so an issue can be
-- rendered again at any time and is the same. Issues never overlap: each
-- starts after the last one, and (list_id, first_article) is unique, so
-- two processes cannot cut the same issue.
CREATE TABLE digest_issues (
    id            bigserial PRIMARY KEY,
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    volume        integer NOT NULL CHECK (volume >= 1),
    number        integer NOT NULL CHECK (number >= 1),
    first_article bigint NOT NULL CHECK (first_article >= 1),
    last_article  bigint NOT NULL CHECK (last_article >= first_article),
    posts         integer NOT NULL CHECK (posts >= 1),
    bytes         bigint NOT NULL,
    -- Articles too large to go in any digest: listed in the table of
    -- contents with their archive link, not inlined.
    listed        bigint[] NOT NULL DEFAULT '{}',
    -- 'size', 'schedule' or 'manual' (parley digest send).
    cause         text NOT NULL CHECK (cause IN ('size', 'schedule', 'manual')),
    cut_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (list_id, volume, number),
    UNIQUE (list_id, first_article)
);

-- ─── outbound queue (internal/outqueue) ──────────────────────────────────

-- A 'digest' job sends one issue to the members who take digests; each
-- copy's variant (deliveries.variant) says in which format and which of
-- the issue's articles, for the few members who switched mid-period.
ALTER TABLE outbound DROP CONSTRAINT outbound_kind_check;
ALTER TABLE outbound ADD CONSTRAINT outbound_kind_check CHECK (kind IN ('post', 'notice', 'digest'));
ALTER TABLE outbound ADD COLUMN digest bigint REFERENCES digest_issues (id) ON DELETE CASCADE;
ALTER TABLE outbound ADD CONSTRAINT outbound_digest_check CHECK (kind <> 'digest' OR digest IS NOT NULL);
ALTER TABLE deliveries ADD COLUMN variant text NOT NULL DEFAULT '';
