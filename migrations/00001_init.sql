-- +goose Up

-- Domains parley serves. A list's domain is created with its first list;
-- mail to any other domain is refused at RCPT time (no open relay).
CREATE TABLE domains (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> '' AND name = lower(name)),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per list. local_part is restricted to what is also a safe IMAP
-- mailbox and file name. uidvalidity is fixed at creation and never changes;
-- next_article is the per-list counter whose values are the archive's
-- article numbers (IMAP UIDs): taken with UPDATE ... RETURNING inside the
-- archive transaction, so numbers are assigned in commit order without gaps.
CREATE TABLE lists (
    id             bigserial PRIMARY KEY,
    domain_id      bigint NOT NULL REFERENCES domains (id),
    local_part     text NOT NULL CHECK (local_part ~ '^[a-z0-9][a-z0-9._-]*$' AND length(local_part) <= 64),
    address        text NOT NULL UNIQUE,
    display_name   text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    post_policy    text NOT NULL DEFAULT 'members'
                   CHECK (post_policy IN ('open', 'members', 'moderated', 'announce')),
    archive        text NOT NULL DEFAULT 'public' CHECK (archive IN ('public', 'private')),
    subject_prefix text NOT NULL DEFAULT '',
    uidvalidity    bigint NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
    next_article   bigint NOT NULL DEFAULT 1 CHECK (next_article >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, local_part)
);

-- Subscriptions and roles. address is kept as the person gave it;
-- address_norm (local part as given, domain lower-cased) is what compares.
CREATE TABLE members (
    id           bigserial PRIMARY KEY,
    list_id      bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address      text NOT NULL,
    address_norm text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    role         text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator', 'owner')),
    delivery     text NOT NULL DEFAULT 'regular' CHECK (delivery IN ('regular', 'digest', 'nomail')),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    moderated    boolean NOT NULL DEFAULT false,
    joined_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (list_id, address_norm)
);

-- Fan-out reads the active, mail-receiving members of one list.
CREATE INDEX members_fanout ON members (list_id) WHERE status = 'active' AND delivery <> 'nomail';
-- "Which lists is this address on?" (commands, bounces).
CREATE INDEX members_by_address ON members (address_norm);

-- +goose Down
DROP TABLE members;
DROP TABLE lists;
DROP TABLE domains;
