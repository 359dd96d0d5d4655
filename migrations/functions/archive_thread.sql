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
-- Its queries are planned for each call (force_custom_plan): a plan cached
-- while the archive was small (say, at the start of a long import on one
-- connection) may pick an index on list_id alone, which costs a scan of
-- the whole list per post once the list is large.
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
