-- archive_thread places article p_article (message id p_msgid, ancestors
-- p_refs oldest first) in a thread of list p_list and returns the thread
-- id. Owner: internal/archive.
--
-- A post joins every thread that holds one of its ancestors (as a post or
-- a ghost) or a ghost of itself (replies that came first); threads it
-- connects are merged under the smallest id; its unseen ancestors become
-- ghosts. Only posts with a smaller article count as present: when posts
-- are placed as they arrive that is all of them, and when a rebuild places
-- them again in article order it hides the later ones, so both give the
-- same result. Nothing here follows a chain of references.
-- p_subject_key, when not empty (the list groups by subject and this is a
-- "Re:" without references), also joins the latest earlier post with that
-- base subject.
--
-- Plans. PL/pgSQL keeps a generic plan per statement for the session,
-- made without the parameters' values and from the statistics of the
-- moment, and a generic plan made while the archive was empty (at the
-- start of a long import) looks a message up by any index that starts
-- with list_id: a scan of the whole list per post once the list is large.
-- So each lookup by message id is EXECUTEd, which plans it for its
-- values every time; the other statements have only one sensible plan
-- and keep theirs. (Planning every statement of intake for every post,
-- plan_cache_mode = force_custom_plan, cost intake a quarter of its time.)
CREATE FUNCTION archive_thread(p_list bigint, p_article bigint, p_msgid text, p_refs text[], p_subject_key text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    ids text[] := p_refs || p_msgid;
    present text[];
    found bigint[];
    tid bigint;
BEGIN
    EXECUTE 'SELECT coalesce(array_agg(message_id) FILTER (WHERE post), ''{}''), coalesce(array_agg(thread_id), ''{}'')
               FROM (SELECT message_id, thread_id, true AS post FROM messages
                      WHERE list_id = $1 AND message_id = ANY ($2) AND article < $3
                     UNION ALL
                     SELECT message_id, thread_id, false FROM ghosts WHERE list_id = $1 AND message_id = ANY ($2)) x'
       INTO present, found USING p_list, ids, p_article;
    IF p_subject_key <> '' THEN
        EXECUTE 'SELECT $4 || ARRAY(SELECT thread_id FROM messages
                                     WHERE list_id = $1 AND subject_key = $2 AND article < $3
                                     ORDER BY article DESC LIMIT 1)'
           INTO found USING p_list, p_subject_key, p_article, found;
    END IF;
    SELECT least(p_article, min(f)) INTO tid FROM unnest(found) AS f;
    IF NOT (tid = ALL (found)) THEN
        EXECUTE 'UPDATE messages SET thread_id = $2 WHERE list_id = $1 AND thread_id = ANY ($3) AND thread_id <> $2'
          USING p_list, tid, found;
        EXECUTE 'UPDATE ghosts SET thread_id = $2 WHERE list_id = $1 AND thread_id = ANY ($3) AND thread_id <> $2'
          USING p_list, tid, found;
    END IF;
    EXECUTE 'DELETE FROM ghosts WHERE list_id = $1 AND message_id = $2' USING p_list, p_msgid;
    INSERT INTO ghosts (list_id, message_id, thread_id)
    SELECT p_list, r, tid FROM unnest(p_refs) AS r WHERE r <> ALL (present)
    ON CONFLICT (list_id, message_id) DO UPDATE SET thread_id = EXCLUDED.thread_id;
    RETURN tid;
END $$;
