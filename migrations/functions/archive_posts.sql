-- archive_posts archives a batch of posts in order, in one call (one round
-- trip), and returns what became of each. Owner: internal/archive.
--
-- Each post is a record as archive_store takes it (p_posts is a JSON
-- array of them); their bytes and content keys come as bytea arrays in the
-- same order. Each list's row is locked on first use, which orders posts
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
CREATE FUNCTION archive_posts(p_posts jsonb, p_raw bytea[], p_key bytea[])
RETURNS TABLE (id bigint, article bigint, thread_id bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
    i integer := 0;
    l bigint;
    next jsonb := '{}';
BEGIN
    FOR p IN SELECT value FROM jsonb_array_elements(p_posts) LOOP
        i := i + 1;
        l := (p->>'list_id')::bigint;
        IF NOT next ? l::text THEN
            next := next || jsonb_build_object(l::text,
                (SELECT lists.next_article FROM lists WHERE lists.id = l FOR UPDATE));
        END IF;
        -- EXECUTEd, so planned for its values: see archive_thread's "Plans".
        EXECUTE 'SELECT m.id, m.article, m.thread_id, true FROM messages m
                  WHERE m.list_id = $1 AND m.message_id = $2 AND m.content_key = $3'
           INTO id, article, thread_id, duplicate USING l, p->>'message_id', p_key[i];
        IF duplicate IS NULL THEN -- no row (EXECUTE leaves FOUND alone)
            article := (next->>l::text)::bigint;
            next := jsonb_set(next, ARRAY[l::text], to_jsonb(article + 1));
            duplicate := false;
            SELECT s.id, s.thread_id INTO id, thread_id FROM archive_store(article, p, p_raw[i], p_key[i]) s;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE lists SET next_article = (next->>lists.id::text)::bigint
     WHERE lists.id IN (SELECT k::bigint FROM jsonb_object_keys(next) AS k);
END $$;
