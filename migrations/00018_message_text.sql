-- +goose Up

-- message_text is the text IMAP SEARCH matches: the raw message in
-- PostgreSQL's escape encoding, as encode(raw, 'escape') in 00016. It is a
-- function of our own so that the planner knows what it costs: decoding a
-- whole message and matching it against a pattern is worth thousands of
-- comparisons, not the one that encode()'s built-in cost says. Misled by
-- that, PostgreSQL read every message of an archive of a few thousand
-- (140 ms for 6,000) instead of asking the trigram index (under 1 ms).
-- plpgsql, because a SQL function would be inlined and its cost forgotten.
-- +goose StatementBegin
CREATE FUNCTION message_text(raw bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000
    AS $$ BEGIN RETURN encode(raw, 'escape'); END $$;
-- +goose StatementEnd
DROP INDEX messages_text_trgm;
CREATE INDEX messages_text_trgm ON messages USING gin (message_text(raw) gin_trgm_ops);

-- +goose Down
DROP INDEX messages_text_trgm;
CREATE INDEX messages_text_trgm ON messages USING gin (encode(raw, 'escape') gin_trgm_ops);
DROP FUNCTION message_text(bytea);
