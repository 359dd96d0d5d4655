-- archive_store writes one post as article p_article, with its thread,
-- and queues its delivery to the members when the post asks for it.
-- Owner: internal/archive. Only archive_posts calls it: the caller holds
-- the list row's lock and has checked for a duplicate.
--
-- The post is one record, p_post: a JSON object whose keys are the
-- messages columns (internal/archive's storedPost), plus two that are not
-- columns: subject_lookup (the base subject to thread by, '' for none)
-- and queue. jsonb_populate_record maps the keys onto the table's own row
-- type, so a new column needs a key in Go and nothing here. The bytes
-- come beside the record as bytea, not inside the JSON.
CREATE FUNCTION archive_store(p_article bigint, p_post jsonb, p_raw bytea, p_key bytea,
                              OUT id bigint, OUT thread_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m messages;
BEGIN
    m := jsonb_populate_record(NULL::messages, p_post);
    m.id := nextval(pg_get_serial_sequence('messages', 'id'));
    m.article := p_article;
    m.raw := p_raw;
    m.size := length(p_raw);
    m.content_key := p_key;
    m.thread_id := archive_thread(m.list_id, p_article, m.message_id, m.refs,
                                  coalesce(p_post->>'subject_lookup', ''));
    INSERT INTO messages VALUES (m.*);
    id := m.id;
    thread_id := m.thread_id;
    IF coalesce((p_post->>'queue')::boolean, false) THEN
        PERFORM outbound_post(m.list_id, m.id);
    END IF;
END $$;
