-- +goose Up

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- IMAP TEXT and header searches match the raw bytes of the header only.
-- The body is matched on search_text (00002), the text a reader sees, so
-- a trigram index over the whole raw message indexed every body twice:
-- once decoded, once as sent. Extracting and sorting those trigrams was
-- the largest single cost of archiving a post. What the whole-message
-- index found and this does not is only what no reader sees: MIME
-- boundaries, base64 and quoted-printable as encoded, HTML markup.
--
-- message_header_text, like message_text, is PL/pgSQL with its true cost
-- so that the planner asks the index instead of decoding every header.
-- +goose StatementBegin
CREATE FUNCTION message_header_text(raw bytea, header_len integer) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000
    AS $$ BEGIN RETURN encode(substring(raw FROM 1 FOR header_len), 'escape'); END $$;
-- +goose StatementEnd
CREATE INDEX messages_header_trgm ON messages USING gin (message_header_text(raw, header_len) gin_trgm_ops);
DROP INDEX messages_text_trgm;
-- message_text stays: search still asks it of the posts whose search_text
-- is not computed yet, and its cost is what tells the planner that
-- matching every post's text is dear (internal/imapd/search.go).

-- messages_by_msgid (list_id, message_id) is a prefix of the unique index
-- on (list_id, message_id, content_key), which answers every lookup it
-- did; it only cost every post one more index entry.
DROP INDEX messages_by_msgid;

-- A post's bytes, its search text and its stored IMAP form (which every
-- FETCH ENVELOPE reads) are compressed with LZ4 rather than
-- PostgreSQL's own pglz, where the server was built with LZ4 (PostgreSQL
-- 14 and later, as packaged by Debian, Ubuntu, Red Hat and the PGDG):
-- pglz compression was a tenth of the time spent archiving a post, and
-- LZ4 also decompresses several times faster for every IMAP, NNTP and
-- web read of a body. It applies to posts stored from now on; older ones
-- stay as they are and read as before. On a server without LZ4 this does
-- nothing.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE messages ALTER COLUMN raw SET COMPRESSION lz4, ALTER COLUMN search_text SET COMPRESSION lz4,
        ALTER COLUMN imap SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no LZ4; messages stay compressed with pglz';
END $$;
-- +goose StatementEnd
