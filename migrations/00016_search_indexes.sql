-- +goose Up

-- IMAP SEARCH is a case-insensitive substring match (RFC 3501 6.4.4). A
-- trigram index answers that without reading every message: the search
-- looks the needle's trigrams up and rechecks only the candidates.
-- pg_trgm is a trusted extension (PostgreSQL 13 and later), so a database
-- owner may create it; it ships with the PostgreSQL server packages.
--
-- The text indexed is the raw message in PostgreSQL's escape encoding, the
-- same expression the search compares (internal/imapd/search.go): every
-- byte string maps to it, valid UTF-8 or not. The decoded From and
-- Subject get their own, small indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX messages_text_trgm ON messages USING gin (encode(raw, 'escape') gin_trgm_ops);
CREATE INDEX messages_from_trgm ON messages USING gin ((from_name || ' <' || from_addr || '>') gin_trgm_ops);
CREATE INDEX messages_subject_trgm ON messages USING gin (subject gin_trgm_ops);

-- +goose Down
DROP INDEX messages_subject_trgm;
DROP INDEX messages_from_trgm;
DROP INDEX messages_text_trgm;
