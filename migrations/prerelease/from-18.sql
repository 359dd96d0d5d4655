-- Converts a database of the pre-release migration chain, at its last
-- version (18), to the layout of 00001_baseline.sql. internal/db runs it
-- once, in one transaction, under the migration lock, before goose: it
-- finds such a database by goose's table holding versions above 1 and no
-- schema_functions table. The chain's tables and indexes were already
-- the baseline's; what differs is below. The SQL functions are then
-- created from functions/ like on any database.

-- messages.mime was written by intake and read by nothing.
ALTER TABLE messages DROP COLUMN mime;

-- The functions of the chain (archive_store took 21 positional
-- parameters); functions/ replaces them.
DROP FUNCTION archive_posts(jsonb, bytea[], bytea[]);
DROP FUNCTION archive_store(bigint, bigint, text, boolean, bytea, bytea, integer, timestamptz, timestamptz,
    text, text, text, text, text, text, text[], text, jsonb, bytea, text, boolean);
DROP FUNCTION archive_thread(bigint, bigint, text, text[], text);

CREATE TABLE schema_functions (
    name       text PRIMARY KEY,
    sha256     bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The baseline stands for versions 1 to 18: goose's version 1 is now it.
DELETE FROM goose_db_version WHERE version_id > 1;
