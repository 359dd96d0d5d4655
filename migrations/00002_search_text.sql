-- +goose Up

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- The text a reader sees in each post, for IMAP SEARCH BODY and TEXT
-- (mailmsg.SearchText): text parts with their transfer encodings undone
-- and their charsets converted to UTF-8, HTML reduced to text when there is
-- no plain text, case-folded in Go so that matching is case-insensitive in
-- every script whatever the database's locale. SEARCH used to match the
-- raw message only, and so never found a word in a quoted-printable or
-- base64 body, which is how most mail with non-ASCII text is sent.
--
-- Derived data: intake writes it; NULL means not computed yet (posts
-- archived before this migration), which parley serve fills in the
-- background and `parley archive rethread` recomputes.
ALTER TABLE messages ADD COLUMN search_text text;
CREATE INDEX messages_search_trgm ON messages USING gin (search_text gin_trgm_ops);
-- The posts whose search text is still to be computed (none, normally).
CREATE INDEX messages_search_missing ON messages (id) WHERE search_text IS NULL;
