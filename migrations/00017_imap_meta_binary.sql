-- +goose Up

-- The stored IMAP meta becomes parley's own binary form (imapmeta
-- version 2: a compact envelope, then the body structure as JSON), which
-- FETCH ENVELOPE decodes several times faster than JSON. It is derived
-- data: the column starts empty, FETCH computes what is missing from the
-- raw message, and `parley archive rethread` stores it again.
ALTER TABLE messages DROP COLUMN imap;
ALTER TABLE messages ADD COLUMN imap bytea;

DROP FUNCTION archive_posts(jsonb, bytea[], bytea[]);
DROP FUNCTION archive_store(bigint, bigint, text, boolean, bytea, bytea, integer, timestamptz, timestamptz, text, text, text, text, text, text, text[], text, jsonb, jsonb, text, boolean);

-- archive_store and archive_posts as in 00015_imap_meta, the meta as bytea
-- (base64 in the posts' JSON).
-- +goose StatementBegin
CREATE FUNCTION archive_store(
    p_list bigint, p_article bigint, p_msgid text, p_synth boolean, p_key bytea, p_raw bytea,
    p_header_len integer, p_received timestamptz, p_sent timestamptz, p_from text, p_from_name text,
    p_subject text, p_subject_key text, p_subject_lookup text, p_in_reply_to text, p_refs text[],
    p_parent text, p_mime jsonb, p_imap bytea, p_source text, p_queue boolean, OUT id bigint, OUT thread_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    thread_id := archive_thread(p_list, p_article, p_msgid, p_refs, p_subject_lookup);
    INSERT INTO messages (list_id, article, message_id, msgid_synth, content_key, raw, size, header_len,
                          received_at, sent_at, from_addr, from_name, subject, subject_key, in_reply_to,
                          refs, parent_msgid, thread_id, mime, imap, source)
    VALUES (p_list, p_article, p_msgid, p_synth, p_key, p_raw, length(p_raw), p_header_len, p_received, p_sent,
            p_from, p_from_name, p_subject, p_subject_key, p_in_reply_to, p_refs, p_parent, thread_id, p_mime,
            p_imap, p_source)
    RETURNING messages.id INTO id;
    IF p_queue THEN
        INSERT INTO outbound (kind, list_id, message) VALUES ('post', p_list, id);
    END IF;
END $$;
-- +goose StatementEnd


-- +goose StatementBegin
CREATE FUNCTION archive_posts(p_posts jsonb, p_raw bytea[], p_key bytea[])
RETURNS TABLE (id bigint, article bigint, thread_id bigint, duplicate boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    p jsonb;
    i integer := 0;
    l bigint;
    next jsonb := '{}';
BEGIN
    FOR p IN SELECT value FROM jsonb_array_elements(p_posts) LOOP
        i := i + 1;
        l := (p->>'list')::bigint;
        IF NOT next ? l::text THEN
            next := next || jsonb_build_object(l::text,
                (SELECT lists.next_article FROM lists WHERE lists.id = l FOR UPDATE));
        END IF;
        SELECT m.id, m.article, m.thread_id, true INTO id, article, thread_id, duplicate
          FROM messages m WHERE m.list_id = l AND m.message_id = p->>'msgid' AND m.content_key = p_key[i];
        IF NOT FOUND THEN
            article := (next->>l::text)::bigint;
            next := jsonb_set(next, ARRAY[l::text], to_jsonb(article + 1));
            duplicate := false;
            SELECT s.id, s.thread_id INTO id, thread_id FROM archive_store(
                l, article, p->>'msgid', (p->>'synth')::boolean, p_key[i], p_raw[i],
                (p->>'header_len')::integer, (p->>'received')::timestamptz, (p->>'sent')::timestamptz,
                p->>'from', p->>'from_name', p->>'subject', p->>'subject_key', p->>'subject_lookup',
                p->>'in_reply_to',
                ARRAY(SELECT jsonb_array_elements_text(p->'refs')), p->>'parent', p->'mime', decode(p->>'imap', 'base64'),
                p->>'source', (p->>'queue')::boolean) s;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE lists SET next_article = (next->>lists.id::text)::bigint
     WHERE lists.id IN (SELECT k::bigint FROM jsonb_object_keys(next) AS k);
END $$;
-- +goose StatementEnd


-- +goose Down
ALTER TABLE messages DROP COLUMN imap;
ALTER TABLE messages ADD COLUMN imap jsonb;
DROP FUNCTION archive_posts(jsonb, bytea[], bytea[]);
DROP FUNCTION archive_store(bigint, bigint, text, boolean, bytea, bytea, integer, timestamptz, timestamptz, text, text, text, text, text, text, text[], text, jsonb, bytea, text, boolean);

-- +goose StatementBegin
CREATE FUNCTION archive_store(
    p_list bigint, p_article bigint, p_msgid text, p_synth boolean, p_key bytea, p_raw bytea,
    p_header_len integer, p_received timestamptz, p_sent timestamptz, p_from text, p_from_name text,
    p_subject text, p_subject_key text, p_subject_lookup text, p_in_reply_to text, p_refs text[],
    p_parent text, p_mime jsonb, p_imap jsonb, p_source text, p_queue boolean, OUT id bigint, OUT thread_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    thread_id := archive_thread(p_list, p_article, p_msgid, p_refs, p_subject_lookup);
    INSERT INTO messages (list_id, article, message_id, msgid_synth, content_key, raw, size, header_len,
                          received_at, sent_at, from_addr, from_name, subject, subject_key, in_reply_to,
                          refs, parent_msgid, thread_id, mime, imap, source)
    VALUES (p_list, p_article, p_msgid, p_synth, p_key, p_raw, length(p_raw), p_header_len, p_received, p_sent,
            p_from, p_from_name, p_subject, p_subject_key, p_in_reply_to, p_refs, p_parent, thread_id, p_mime,
            p_imap, p_source)
    RETURNING messages.id INTO id;
    IF p_queue THEN
        INSERT INTO outbound (kind, list_id, message) VALUES ('post', p_list, id);
    END IF;
END $$;
-- +goose StatementEnd


-- +goose StatementBegin
CREATE FUNCTION archive_posts(p_posts jsonb, p_raw bytea[], p_key bytea[])
RETURNS TABLE (id bigint, article bigint, thread_id bigint, duplicate boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    p jsonb;
    i integer := 0;
    l bigint;
    next jsonb := '{}';
BEGIN
    FOR p IN SELECT value FROM jsonb_array_elements(p_posts) LOOP
        i := i + 1;
        l := (p->>'list')::bigint;
        IF NOT next ? l::text THEN
            next := next || jsonb_build_object(l::text,
                (SELECT lists.next_article FROM lists WHERE lists.id = l FOR UPDATE));
        END IF;
        SELECT m.id, m.article, m.thread_id, true INTO id, article, thread_id, duplicate
          FROM messages m WHERE m.list_id = l AND m.message_id = p->>'msgid' AND m.content_key = p_key[i];
        IF NOT FOUND THEN
            article := (next->>l::text)::bigint;
            next := jsonb_set(next, ARRAY[l::text], to_jsonb(article + 1));
            duplicate := false;
            SELECT s.id, s.thread_id INTO id, thread_id FROM archive_store(
                l, article, p->>'msgid', (p->>'synth')::boolean, p_key[i], p_raw[i],
                (p->>'header_len')::integer, (p->>'received')::timestamptz, (p->>'sent')::timestamptz,
                p->>'from', p->>'from_name', p->>'subject', p->>'subject_key', p->>'subject_lookup',
                p->>'in_reply_to',
                ARRAY(SELECT jsonb_array_elements_text(p->'refs')), p->>'parent', p->'mime', nullif(p->'imap', 'null'::jsonb),
                p->>'source', (p->>'queue')::boolean) s;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE lists SET next_article = (next->>lists.id::text)::bigint
     WHERE lists.id IN (SELECT k::bigint FROM jsonb_object_keys(next) AS k);
END $$;
-- +goose StatementEnd

